"""Reading the times of a CAD export: strptime formats, ISO 8601, and a faster equivalent.

A mapping lists its time formats (``times.formats``): strptime patterns, or ``"iso"`` for
ISO 8601. ``datetime.strptime`` is slow (tens of microseconds a value, most of it locale
look-ups), and an export has several times in each of millions of rows; so a pattern made
only of numeric fields (``%Y %m %d %H %I %M %S %f``, ``%p`` with ``%I``) and literal text is
compiled to one regular expression that builds the datetime directly. It reads what strptime
reads and refuses what strptime refuses (tests/unit/test_history_mapping.py checks both on
generated times); any other pattern goes to strptime itself.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

__all__ = ["ISO_FORMAT", "TimeFormat"]

# The time format that reads ISO 8601 (datetime.fromisoformat) instead of a strptime pattern.
ISO_FORMAT: Final = "iso"

# strptime's own patterns for the numeric fields (CPython _strptime.TimeRE).
_FIELDS: Final = {
    "Y": r"(?P<Y>\d\d\d\d)",
    "m": r"(?P<m>1[0-2]|0[1-9]|[1-9])",
    "d": r"(?P<d>3[01]|[12]\d|0[1-9]|[1-9]| [1-9])",
    "H": r"(?P<H>2[0-3]|[0-1]\d|\d)",
    "I": r"(?P<I>1[0-2]|0[1-9]|[1-9])",
    "M": r"(?P<M>[0-5]\d|\d)",
    "S": r"(?P<S>6[0-1]|[0-5]\d|\d)",
    "f": r"(?P<f>[0-9]{1,6})",
    "p": r"(?P<p>am|pm)",
}


def _compile(fmt: str) -> re.Pattern[str] | None:
    """One regular expression for a pattern of numeric fields, or None if it has others."""
    pieces = re.split(r"(%.)", fmt)
    out: list[str] = []
    used: set[str] = set()
    for piece in pieces:
        if len(piece) == 2 and piece.startswith("%"):
            name = piece[1]
            if name not in _FIELDS or name in used:
                return None
            used.add(name)
            out.append(_FIELDS[name])
        else:
            # as strptime does: a run of whitespace in the pattern matches any whitespace
            out.append(r"\s+".join(re.escape(part) for part in re.split(r"\s+", piece)))
    if not {"Y", "m", "d"} <= used or ("p" in used) != ("I" in used) or {"H", "I"} <= used:
        return None
    return re.compile("".join(out), re.IGNORECASE)


class TimeFormat:
    """One entry of ``times.formats``: ``parse`` gives a datetime (naive unless the text
    carries an offset) or None when the text is not in this format."""

    __slots__ = ("fmt", "regex")

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.regex = None if fmt == ISO_FORMAT else _compile(fmt)

    def parse(self, text: str) -> datetime | None:
        try:
            if self.fmt == ISO_FORMAT:
                return datetime.fromisoformat(text)
            if self.regex is None:
                return datetime.strptime(text, self.fmt)  # noqa: DTZ007 (the mapping's zone)
            return self._fast(text)
        except ValueError:
            return None

    def _fast(self, text: str) -> datetime | None:
        # as strptime: the first match from the start, and nothing may be left over
        match = self.regex.match(text) if self.regex else None
        if match is None or match.end() != len(text):
            return None
        g = match.groupdict()
        if g.get("I") is not None:
            hour = int(g["I"]) % 12 + (12 if g["p"].lower() == "pm" else 0)
        else:
            hour = int(g.get("H") or 0)
        return datetime(  # noqa: DTZ001 (naive: the mapping's zone is applied by the caller)
            int(g["Y"]),
            int(g["m"]),
            int(g["d"]),
            hour,
            int(g.get("M") or 0),
            int(g.get("S") or 0),
            int((g.get("f") or "0").ljust(6, "0")),
        )
