"""Routing rules: a tree that decides which desks see a new incident, as a pure function.

The tree reads like an alarm-receiving centre's routing sheet, and evaluates as
Prometheus Alertmanager's route tree does (same idea, written here):

- the top-level rules are tried in order; the first whose ``match`` holds routes the incident,
  unless it says ``continue: true``, in which case the next ones are tried too (every matching
  rule then adds its desks);
- a rule with child ``routes`` hands the incident to its children the same way; only when no
  child matches does the rule's own ``desks`` apply;
- a ``match`` is a conjunction of its conditions; a condition left out matches everything.

The incident records the ids of the rules that routed it (``routed_by``). An incident no rule
routes goes to the fallback desk: an alarm that nobody sees is the one failure a control room
cannot have.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from fnmatch import fnmatchcase
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.geo import Area, area_of
from alarmdesk.domain.prefilter import Prefilter
from alarmdesk.domain.signal import Location, SourceKind

__all__ = [
    "DAYS",
    "FALLBACK",
    "Facts",
    "MatchSpec",
    "Route",
    "RouteSpec",
    "Routes",
    "compile_routes",
    "evaluate",
    "in_hours",
    "parse_hours",
    "time_zone",
]

FALLBACK = "fallback"  # the rule id an incident no rule routed records
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$"
RuleId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]


class MatchSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """What a rule matches; every condition given must hold. Lists are "any of"."""

    categories: list[str] = msgspec.field(default_factory=list)
    types: list[str] = msgspec.field(default_factory=list)  # incident type codes
    priorities: list[Annotated[int, msgspec.Meta(ge=1, le=5)]] = msgspec.field(default_factory=list)
    sources: list[str] = msgspec.field(default_factory=list)  # source kinds
    devices: list[str] = msgspec.field(default_factory=list)  # source ids, * and ? patterns
    sites: list[str] = msgspec.field(default_factory=list)  # site names, patterns, any case
    area: dict[str, Any] | None = None  # GeoJSON Polygon/MultiPolygon the incident lies in
    within_desk: str | None = None  # inside that desk's jurisdiction
    days: list[str] = msgspec.field(default_factory=list)  # mon … sun
    hours: Annotated[str, msgspec.Meta(pattern=_HOURS)] | None = None  # "18:00-07:00"
    timezone: str | None = None  # IANA name for days and hours; default UTC


class RouteSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """One rule of the routing tree, as written in a set-up file."""

    id: RuleId
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    match: MatchSpec = msgspec.field(default_factory=MatchSpec)
    desks: list[str] = msgspec.field(default_factory=list)
    continue_: bool = msgspec.field(default=False, name="continue")
    routes: list[RouteSpec] = msgspec.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Facts:
    """What routing may look at: never who the people involved are."""

    category: HarmCategory
    type_code: str
    priority: int
    source_kind: SourceKind
    source_id: str
    location: Location | None
    at: datetime  # when the centre received it (aware)


@dataclass(frozen=True, slots=True)
class Route:
    """A compiled rule: areas parsed, sets built, the clock window resolved."""

    id: str
    desks: tuple[str, ...]
    cont: bool
    children: tuple[Route, ...]
    categories: frozenset[str]
    types: frozenset[str]
    priorities: frozenset[int]
    sources: frozenset[str]
    devices: tuple[str, ...]
    sites: tuple[str, ...]  # case-folded
    raw_sites: tuple[str, ...]  # as written (the prefilter folds them itself)
    area: Area | None
    days: frozenset[int]
    hours: tuple[time, time] | None
    zone: ZoneInfo | None

    def matches(self, f: Facts) -> bool:
        if self.categories and f.category.value not in self.categories:
            return False
        if self.types and f.type_code not in self.types:
            return False
        if self.priorities and f.priority not in self.priorities:
            return False
        if self.sources and f.source_kind.value not in self.sources:
            return False
        if self.devices and not any(fnmatchcase(f.source_id, p) for p in self.devices):
            return False
        if self.sites:
            site = (f.location.site if f.location is not None else None) or ""
            if not any(fnmatchcase(site.casefold(), p) for p in self.sites):
                return False
        if self.area is not None:
            loc = f.location
            if loc is None or loc.lat is None or loc.lon is None:
                return False  # a rule for an area cannot claim what has no point
            if not self.area.contains(loc.lat, loc.lon):
                return False
        if self.days or self.hours:
            local = f.at.astimezone(self.zone) if self.zone is not None else f.at
            if self.days and local.weekday() not in self.days:
                return False
            if self.hours is not None and not in_hours(local.time(), *self.hours):
                return False
        return True


def in_hours(now: time, start: time, end: time) -> bool:
    """``start`` inclusive, ``end`` exclusive; a window past midnight wraps (18:00-07:00)."""
    if start <= end:
        return start <= now < end
    return now >= start or now < end


def _clock(text: str) -> time:
    hh, mm = text.split(":")
    return time(23, 59, 59, 999999) if hh == "24" else time(int(hh), int(mm))


def time_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``.

    Raises:
        InvalidField: no such zone (``invalid_value``).
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(
            f"unknown time zone '{name}'", field="timezone", code="invalid_value"
        ) from None


def parse_hours(text: str) -> tuple[time, time]:
    """``"18:00-07:00"`` as (start, end); ``24:00`` is the end of the day."""
    start, end = text.split("-")
    return _clock(start), _clock(end)


class Routes:
    """A compiled routing tree: its top-level rules, prefiltered by device and site."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.index: Prefilter[Route] = Prefilter(routes, lambda r: r.devices, lambda r: r.raw_sites)

    def __len__(self) -> int:
        return len(self.index)

    def candidates(self, facts: Facts) -> list[Route]:
        site = facts.location.site if facts.location is not None else None
        return self.index.candidates(facts.source_id, site)


def compile_routes(
    specs: Sequence[RouteSpec], desk_areas: dict[str, Area | None] | None = None
) -> Routes:
    """Compiles rules as written into :class:`Route` objects.

    ``desk_areas`` gives the jurisdiction of each desk for ``within_desk``.

    Raises:
        InvalidField: an area that is not a polygon, an unknown time zone, day, category or
            source kind, a desk without a jurisdiction.
    """
    areas = desk_areas or {}
    return Routes([_compile(s, areas) for s in specs])


def _compile(spec: RouteSpec, areas: dict[str, Area | None]) -> Route:
    m = spec.match
    for c in m.categories:
        if c not in {h.value for h in HarmCategory}:
            raise InvalidField(
                f"unknown category '{c}'", field="categories", code="unknown_category"
            )
    for s in m.sources:
        if s not in {k.value for k in SourceKind}:
            raise InvalidField(f"unknown source kind '{s}'", field="sources", code="invalid_value")
    for d in m.days:
        if d not in DAYS:
            raise InvalidField(f"unknown day '{d}' (mon … sun)", field="days", code="invalid_value")
    area: Area | None = None
    if m.area is not None and m.within_desk is not None:
        raise InvalidField("give area or within_desk, not both", field="area", code="invalid_value")
    if m.area is not None:
        area = area_of(m.area, "area")
    if m.within_desk is not None:
        if m.within_desk not in areas:
            raise InvalidField(
                f"within_desk names desk '{m.within_desk}', which no file defines",
                field="within_desk",
                code="unknown_reference",
            )
        area = areas[m.within_desk]
        if area is None:
            raise InvalidField(
                f"desk '{m.within_desk}' has no jurisdiction to be within",
                field="within_desk",
                code="invalid_value",
            )
    zone = time_zone(m.timezone) if m.timezone is not None else None
    hours = parse_hours(m.hours) if m.hours is not None else None
    return Route(
        id=spec.id,
        desks=tuple(spec.desks),
        cont=spec.continue_,
        children=tuple(_compile(c, areas) for c in spec.routes),
        categories=frozenset(m.categories),
        types=frozenset(t.upper() for t in m.types),
        priorities=frozenset(m.priorities),
        sources=frozenset(m.sources),
        devices=tuple(m.devices),
        sites=tuple(p.casefold() for p in m.sites),
        raw_sites=tuple(m.sites),
        area=area,
        days=frozenset(DAYS.index(d) for d in m.days),
        hours=hours,
        zone=zone,
    )


def _walk(routes: Iterable[Route], facts: Facts, out: list[Route]) -> bool:
    matched = False
    for r in routes:
        if not r.matches(facts):
            continue
        matched = True
        if not _walk(r.children, facts, out):
            out.append(r)
        if not r.cont:
            break
    return matched


def evaluate(
    routes: Routes | Sequence[Route], facts: Facts, fallback: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The desks that see an incident, and the ids of the rules that chose them.

    With no rule routing it (nothing matched, or the matching rules name no desk), the
    fallback desk sees it and the incident records :data:`FALLBACK`.
    """
    handled: list[Route] = []
    _walk(routes.candidates(facts) if isinstance(routes, Routes) else routes, facts, handled)
    desks: list[str] = []
    for r in handled:
        desks += [d for d in r.desks if d not in desks]
    if not desks:
        return (fallback,), (FALLBACK,)
    return tuple(desks), tuple(r.id for r in handled if r.desks)


def rule_ids(specs: Iterable[RouteSpec]) -> Iterable[tuple[RouteSpec, str]]:
    """Every rule of a tree with its path (``parent/child``), depth first."""
    for s in specs:
        yield s, s.id
        for child, path in rule_ids(s.routes):
            yield child, f"{s.id}/{path}"
