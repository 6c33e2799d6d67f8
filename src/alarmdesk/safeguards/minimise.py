"""Minimisation: the one step every intake adapter runs before a signal is stored.

docs/architecture.md, "What never enters": no field anywhere holds racial or ethnic origin,
religion, political opinion, union membership, sexual life, biometric templates or face
identities. Adapters keep to allow-lists of the fields an alarm needs; this step is the net
under them, applied to every payload whatever its source:

- a key that names special-category data is dropped with its whole value, at any depth
  (``face``, ``face_id``, ``faceName``, ``sub_label``, ``biometric_template``, ``ethnicity``,
  ``religion``, ``political_party``, ``union_member``, ``sexual_orientation``...);
- an object that *describes* such data is dropped whole, wherever it sits: a dict whose
  ``label``/``type``/``kind``/``attribute``/``class``/``category``/``object`` value (key in
  lower, Capitalised or UPPER case) is such a term: Frigate's ``{"label": "face", ...}``,
  a ``{"type": "face", "name": ...}`` update.

Key names are compared case-insensitively, split into words at ``_``, ``-``, ``.``, spaces
and camelCase humps, so ``FaceID``, ``face-id`` and ``face_id`` are the same. A term matches
a whole word (``face`` does not match ``surface``); multi-word terms match consecutive words.

Pure: no I/O. The count of dropped items is returned so adapters can count them in metrics
and tests can prove the step ran (never *what* was dropped: that would store it again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from alarmdesk.domain.signal import SignalIn
from alarmdesk.safeguards.special_category import is_special

# Keys whose *value* says what an object is: {"label": "face", ...} is a face, dropped whole.
_CLASSIFIER_KEYS = ("label", "type", "kind", "attribute", "class", "category", "object")
_CLASSIFIER_LOOKUP = tuple(
    dict.fromkeys(k for key in _CLASSIFIER_KEYS for k in (key, key.capitalize(), key.upper()))
)

_MAX_DEPTH = 32  # deeper structures are cut off (payloads are small; this bounds recursion)


_SCALARS = (str, int, float, bool, type(None))


def minimise_value(value: Any, depth: int = 0) -> tuple[Any, int]:
    """A copy of ``value`` without special-category keys and objects; and how many went."""
    if type(value) in _SCALARS:  # the common case, first: no copy, nothing to look at
        return value, 0
    if depth >= _MAX_DEPTH:
        return None, 1
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        dropped = 0
        for key, item in value.items():
            k = key if type(key) is str else str(key)
            if is_special(k):
                dropped += 1
                continue
            if type(item) in _SCALARS:
                out[k] = item
                continue
            kept, n = minimise_value(item, depth + 1)
            dropped += n
            out[k] = kept
        return out, dropped
    if isinstance(value, list | tuple):
        items: list[Any] = []
        dropped = 0
        for item in value:
            if _describes_special(item):
                dropped += 1
                continue
            kept, n = minimise_value(item, depth + 1)
            dropped += n
            items.append(kept)
        return items, dropped
    return value, 0


def _describes_special(item: Any) -> bool:
    if not isinstance(item, Mapping):
        return False
    for key in _CLASSIFIER_LOOKUP:  # a few dict lookups, not a walk over every item
        value = item.get(key)
        if type(value) is str and is_special(value):
            return True
    return False


def minimise_payload(payload: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The payload without special-category data, and the number of keys/objects dropped."""
    if _describes_special(payload):
        return {}, 1
    out, dropped = minimise_value(payload)
    assert isinstance(out, dict)
    return out, dropped


def minimise(signal: SignalIn) -> tuple[SignalIn, int]:
    """The signal with a minimised payload, and how many keys/objects were dropped.

    The signal is returned unchanged (the same object) when nothing was dropped.
    """
    payload, dropped = minimise_payload(signal.payload)
    if not dropped:
        return signal, 0
    return msgspec.structs.replace(signal, payload=payload), dropped
