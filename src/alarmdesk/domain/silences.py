"""Silences: maintenance windows and known faults during which signals are stored, not alarmed.

A silence matches signals by account or device, site, type, category or area (every
condition given must hold), and is in force from ``starts_at`` until ``ends_at`` (or until it
is ended), optionally only inside weekly windows ("every Tuesday 06:00-08:00 Europe/London"
for a panel's weekly maintenance). A silenced signal is stored and counted with the silence
that held it, and opens or updates no incident: nothing rings, but nothing is lost, and the
"silenced" view shows what came in meanwhile.

Pure: the writer asks :func:`silencing` for every signal, with the silences it holds in
memory; whether a silence is in force is a function of the signal's time only, so expiry
(of a one-off silence or of each weekly window) needs no timer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.geo import Area, area_of
from alarmdesk.domain.prefilter import Prefilter
from alarmdesk.domain.routing import DAYS, Facts, in_hours, parse_hours, time_zone
from alarmdesk.domain.signal import SourceKind, check_text, check_time, visible_length

__all__ = [
    "MAX_ONE_OFF",
    "NEVER_SILENCED",
    "Silence",
    "SilenceMatch",
    "SilenceSpec",
    "Silences",
    "Window",
    "check_new_silence",
    "compile_silence",
    "silencing",
]

Pattern = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]

# A silence is for equipment (maintenance, known faults) and the feeds of other systems: a
# person calling about a fire at a school whose sprinkler test is silenced, or staff on duty
# reporting one, always alarms.
NEVER_SILENCED = frozenset({SourceKind.CALL, SourceKind.DUTY})
# A one-off silence lasts this long at most: a fault that outlasts it is silenced again on
# purpose, or the device taken out of the set-up; only weekly windows stand until ended.
MAX_ONE_OFF = timedelta(days=90)
# What a pattern matches besides its own characters: * ? and [sets].
_WILDCARDS = re.compile(r"\[[^\]]*\]|[*?]")


class SilenceMatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """What a silence holds back; at least one condition, every one given must hold."""

    devices: list[Pattern] = msgspec.field(default_factory=list)  # source ids, * ? patterns
    accounts: list[Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Fa-f]{3,16}$")]] = msgspec.field(
        default_factory=list
    )  # DC-09 accounts (their panels' signals)
    sites: list[Pattern] = msgspec.field(default_factory=list)  # patterns, any case
    types: list[Annotated[str, msgspec.Meta(max_length=32)]] = msgspec.field(default_factory=list)
    categories: list[str] = msgspec.field(default_factory=list)
    area: dict[str, Any] | None = None  # GeoJSON Polygon/MultiPolygon


class Window(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A weekly window: these days, these hours, in this time zone."""

    days: list[str]
    hours: Annotated[
        str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$")
    ]
    timezone: str = "UTC"


class SilenceSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A silence as asked for (API body, CLI)."""

    match: SilenceMatch
    reason: Annotated[str, msgspec.Meta(min_length=3, max_length=500)]
    starts_at: datetime | None = None  # default: now
    ends_at: datetime | None = None  # None: until ended (only with weekly windows)
    weekly: list[Window] = msgspec.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Window:
    days: frozenset[int]
    start: time
    end: time
    zone: ZoneInfo

    def holds(self, at: datetime) -> bool:
        local = at.astimezone(self.zone)
        if not in_hours(local.time(), self.start, self.end):
            return False
        # A window past midnight (22:00-02:00) belongs to the day it starts on.
        day = local.weekday()
        if self.start > self.end and local.time() < self.end:
            day = (day - 1) % 7
        return day in self.days


@dataclass(frozen=True, slots=True)
class Silence:
    """A silence in force or to come (compiled), as the writer holds it."""

    id: int
    starts_at: datetime
    ends_at: datetime | None
    devices: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    types: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    area: Area | None = field(default=None, compare=False)
    windows: tuple[_Window, ...] = ()

    def in_force(self, at: datetime) -> bool:
        if at < self.starts_at or (self.ends_at is not None and at >= self.ends_at):
            return False
        return not self.windows or any(w.holds(at) for w in self.windows)

    def matches(self, f: Facts) -> bool:
        if self.devices and not any(fnmatchcase(f.source_id, p) for p in self.devices):
            return False
        if self.sites:
            site = ((f.location.site if f.location is not None else None) or "").casefold()
            if not any(fnmatchcase(site, p) for p in self.sites):
                return False
        if self.types and f.type_code not in self.types:
            return False
        if self.categories and f.category.value not in self.categories:
            return False
        if self.area is not None:
            loc = f.location
            if loc is None or loc.lat is None or loc.lon is None:
                return False
            if not self.area.contains(loc.lat, loc.lon):
                return False
        return True


def compile_silence(
    silence_id: int, spec: SilenceSpec, now: datetime, categories: Iterable[str]
) -> Silence:
    """Checks a silence and compiles it.

    Raises:
        InvalidField: no condition, a time without an offset, an end before the start, an
            open end without weekly windows, an unknown category, day or time zone, an area
            that is not a polygon, control characters in the reason.
    """
    m = spec.match
    check_text(spec.reason, "reason", multiline=True)
    if not (m.devices or m.accounts or m.sites or m.types or m.categories or m.area):
        raise InvalidField(
            "a silence needs at least one condition (devices, accounts, sites, types, "
            "categories or area): it never silences everything",
            field="match",
            code="invalid_value",
        )
    known = set(categories)
    for c in m.categories:
        if c not in known:
            raise InvalidField(
                f"unknown category '{c}'", field="categories", code="unknown_category"
            )
    starts = spec.starts_at or now
    for name, value in (("starts_at", starts), ("ends_at", spec.ends_at)):
        if value is not None and value.tzinfo is None:
            raise InvalidField(f"{name} needs a UTC offset", field=name, code="invalid_value")
    if spec.ends_at is not None and spec.ends_at <= starts:
        raise InvalidField("ends_at is not after starts_at", field="ends_at", code="invalid_value")
    if spec.ends_at is None and not spec.weekly:
        raise InvalidField(
            "a one-off silence needs ends_at (only weekly windows may stand until ended)",
            field="ends_at",
            code="invalid_value",
        )
    area = area_of(m.area, "area") if m.area is not None else None
    windows = []
    for w in spec.weekly:
        if not w.days or any(d not in DAYS for d in w.days):
            raise InvalidField(
                f"weekly days are some of {', '.join(DAYS)}", field="weekly", code="invalid_value"
            )
        zone = time_zone(w.timezone)
        start, end = parse_hours(w.hours)
        windows.append(_Window(frozenset(DAYS.index(d) for d in w.days), start, end, zone))
    return Silence(
        id=silence_id,
        starts_at=starts,
        ends_at=spec.ends_at,
        devices=tuple(m.devices) + tuple(f"panel-{a.upper()}" for a in m.accounts),
        sites=tuple(p.casefold() for p in m.sites),
        types=frozenset(t.upper() for t in m.types),
        categories=frozenset(m.categories),
        area=area,
        windows=tuple(windows),
    )


def check_new_silence(spec: SilenceSpec, now: datetime) -> None:
    """What a new silence must also be (those stored before these rules still load and hold):
    its times in the range every time a client gives must keep (``check_time``: one such as
    ``9999-12-31T23:59:59-14:00`` cannot even be made UTC); no pattern that matches every
    device or site (one with no character of its own: ``*``, ``?*``, ``[a-z]*``); no control
    character in a pattern or a type; a reason that is more than blanks; and a one-off
    silence of :data:`MAX_ONE_OFF` at most.

    Raises:
        InvalidField: ``invalid_value``, naming the field.
    """
    m = spec.match
    for name, value in (("starts_at", spec.starts_at), ("ends_at", spec.ends_at)):
        if value is not None:
            check_time(value, name)  # an offset, and a time that can be made UTC
    if visible_length(spec.reason) < 3:  # spaces and zero-width characters say nothing
        raise InvalidField("reason says nothing", field="reason", code="invalid_value")
    if spec.ends_at is not None and spec.ends_at.tzinfo is not None and spec.ends_at <= now:
        raise InvalidField(
            "ends_at is past: such a silence would hold nothing",
            field="ends_at",
            code="invalid_value",
        )
    for w in spec.weekly:
        start, end = parse_hours(w.hours)  # as compile_silence read it
        if start == end:  # "18:00-18:00": an empty window, listed as active, holding nothing
            raise InvalidField(
                f"the weekly window {w.hours} is empty (a whole day is 00:00-24:00)",
                field="weekly",
                code="invalid_value",
            )
    for name, patterns in (("devices", m.devices), ("sites", m.sites)):
        for p in patterns:
            check_text(p, name)
            if not _WILDCARDS.sub("", p).strip():
                raise InvalidField(
                    f"the pattern '{p}' matches every {name[:-1]}: a silence never holds back "
                    "everything (name the devices or sites, as in 'panel-03*')",
                    field=name,
                    code="invalid_value",
                )
    for code in m.types:
        check_text(code, "types")
    starts = spec.starts_at or now
    if (
        not spec.weekly
        and spec.ends_at is not None
        and spec.ends_at.tzinfo is not None
        and starts.tzinfo is not None
        and spec.ends_at - starts > MAX_ONE_OFF
    ):
        raise InvalidField(
            f"a one-off silence lasts {MAX_ONE_OFF.days} days at most (silence again when "
            "it ends, or use weekly windows)",
            field="ends_at",
            code="invalid_value",
        )


class Silences:
    """The silences the writer holds, prefiltered by device and site."""

    def __init__(self, silences: Sequence[Silence]) -> None:
        self.index: Prefilter[Silence] = Prefilter(silences, lambda s: s.devices, lambda s: s.sites)

    def __len__(self) -> int:
        return len(self.index)

    def candidates(self, facts: Facts) -> list[Silence]:
        site = facts.location.site if facts.location is not None else None
        return self.index.candidates(facts.source_id, site)


def silencing(silences: Silences | Sequence[Silence], facts: Facts) -> Silence | None:
    """The first silence in force at ``facts.at`` that matches the signal, or None (always
    for a call or a duty report: :data:`NEVER_SILENCED`)."""
    if facts.source_kind in NEVER_SILENCED:
        return None
    found = silences.candidates(facts) if isinstance(silences, Silences) else silences
    for s in found:
        if s.matches(facts) and s.in_force(facts.at):
            return s
    return None
