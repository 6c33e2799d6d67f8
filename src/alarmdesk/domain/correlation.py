"""The correlation key: which open incident a keyed source's signal folds into.

One value object for every place that needs a key (docs/architecture.md, "Correlation"):
the pipeline builds it from a signal, reclassification re-keys it, supervision builds the key
of its own incidents, and the store keeps its text form. Panels group by (account, zone,
category), cameras and sensors that name what they saw by (device, zone, type/label), feeds
by (source, type, zone) — or, for CAP alerts, by (sender, thread): an Update or Cancel
folds into the incident of the alert it references.

The text form is stable (it is stored in ``incidents.correlation_key``):
``eq|<source>|<zone>|<what>`` and ``feed|<source>|<what>|<zone>``. Parsing accepts the
source id containing ``|`` only where it is unambiguous (it is the second field).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from alarmdesk.domain.categories import HarmCategory

__all__ = ["NEAR", "CorrelationKey", "KeyKind", "fold_scope", "scope_of_incident"]

_CATEGORIES = frozenset(c.value for c in HarmCategory)


class KeyKind(enum.StrEnum):
    EQUIPMENT = "eq"  # a panel, camera or sensor
    FEED = "feed"  # another system's alert stream (HTTP feed, CAP)


class CorrelationKey(NamedTuple):
    """A tuple, so it hashes and compares at C speed (it is a dict key on the hot path).

    ``what`` is the harm category for keys grouped by category (panels), or what the sender
    named (``TYPE/label`` of a camera or sensor, the type code of a feed).
    """

    kind: KeyKind
    source_id: str
    zone: str
    what: str
    by_category: bool = False  # ``what`` is a category: it follows a reclassification

    @classmethod
    def equipment(
        cls,
        source_id: str,
        zone: str | None,
        category: HarmCategory,
        label: str | None = None,
        type_code: str = "",
    ) -> CorrelationKey:
        """A device's key: by category, or by type and label when the device names what it
        saw (a camera's "person", a sensor's "smoke")."""
        if label:
            return cls(KeyKind.EQUIPMENT, source_id, zone or "", f"{type_code}/{label}")
        return cls(KeyKind.EQUIPMENT, source_id, zone or "", category.value, by_category=True)

    @classmethod
    def feed(cls, source_id: str, type_code: str, zone: str | None) -> CorrelationKey:
        return cls(KeyKind.FEED, source_id, zone or "", type_code)

    @classmethod
    def thread(cls, source_id: str, thread: str) -> CorrelationKey:
        """A feed whose messages say which earlier one they update (CAP's ``references``):
        the thread, whatever the type of each message, so an Update that changes the event
        or its severity still folds into the incident of the alert it updates."""
        return cls(KeyKind.FEED, source_id, "", thread)

    def reclassified(self, category: HarmCategory) -> CorrelationKey:
        """The key after an operator reclassified its incident.

        A key grouped by category follows the new category (a panel zone reclassified from
        burglary to fire takes up that zone's fire signals); a key built from what the sender
        named stays, so the sender's repeats keep folding into the same incident.
        """
        if self.by_category:
            return self._replace(what=category.value)
        return self

    def __str__(self) -> str:
        if self.kind is KeyKind.FEED:
            return f"feed|{self.source_id}|{self.what}|{self.zone}"
        return f"eq|{self.source_id}|{self.zone}|{self.what}"

    @classmethod
    def parse(cls, text: str) -> CorrelationKey:
        """The key of its text form. Raises ValueError for a text no key writes."""
        kind, _, rest = text.partition("|")
        if kind == KeyKind.FEED.value:
            source, what, zone = _split3(rest, text)
            return cls(KeyKind.FEED, source, zone, what)
        if kind == KeyKind.EQUIPMENT.value:
            source, zone, what = _split3(rest, text)
            by_category = what in _CATEGORIES
            return cls(KeyKind.EQUIPMENT, source, zone, what, by_category=by_category)
        raise ValueError(f"not a correlation key: {text!r}")


# -- fold scopes: what several nodes partition the intake by -------------------------------

NEAR = "near"
"""The scope of calls and duty reports: they fold by place (any distance under ``radius_m``,
across any grid line) or by address text, which no finite split of the map can keep
together, so they share one scope. They come from people, at a rate one node takes easily."""


def fold_scope(source_kind: str, source_id: str) -> str:
    """The scope of a signal: every signal that may fold into one incident has the same.

    A device's signals fold only into incidents keyed by that device (its zones, categories
    and labels, the intruder alarm another zone confirms, a reclassification: the key keeps
    its source), a feed's only into incidents keyed by that feed (its types and CAP threads).
    So the source is the scope, and the key's other parts, which may change, are left out.
    A call-taker's ``join`` names an incident of any scope: that signal takes the scope of
    the incident it joins (:func:`scope_of_incident`).
    """
    if source_kind == "equipment":
        return f"{KeyKind.EQUIPMENT.value}|{source_id}"
    if source_kind == "feed":
        return f"{KeyKind.FEED.value}|{source_id}"
    return NEAR


def scope_of_incident(correlation_key: str | None) -> str:
    """The scope of an incident, from its stored key (None: folded by place)."""
    if correlation_key is None:
        return NEAR
    key = CorrelationKey.parse(correlation_key)
    return f"{key.kind.value}|{key.source_id}"


def _split3(rest: str, text: str) -> tuple[str, str, str]:
    # The source id may contain "|"; the last two fields never do.
    parts = rest.rsplit("|", 2)
    if len(parts) != 3:
        raise ValueError(f"not a correlation key: {text!r}")
    return parts[0], parts[1], parts[2]
