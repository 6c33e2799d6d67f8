"""Which units to send: response plans, and the nearest fitting available units by travel time.

A **response plan** says what a type of incident needs ("structure fire: 2 engines, 1 truck,
1 medic"); a need is a unit kind, or a capability any kind may have ("first responder" is
``medical``). Without a configured plan the need is read from the type's procedure, so the
recommendation follows what the operator reads: "Dispatch ALS medic and nearest first
responder" asks for a medic and a unit able to give medical care, not an engine because the
category says so.

The **recommendation** fills each need, in order, with the available unit that can be there
first. Travel time is estimated from the straight-line distance, a detour factor and a speed
per unit kind (:data:`SPEEDS_KMH`). That is the simple model to start with; a road graph plugs
in as another :data:`TravelTime` (unit, incident location → seconds), for example a routing
engine's table service queried once per incident for every candidate (docs/dispatch.md).

The operator decides: the recommendation is shown with ETAs, and the dispatch records what
was recommended, so accepting and overriding are both on the record.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated

import msgspec

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.geo import haversine_m
from alarmdesk.domain.signal import Location
from alarmdesk.domain.units import Unit, UnitStatus

__all__ = [
    "DETOUR",
    "SPEEDS_KMH",
    "Need",
    "NeedSpec",
    "Pick",
    "ResponsePlanSpec",
    "needs_for",
    "recommend",
    "short",
    "straight_line",
]

# Average speeds on an emergency run, by unit kind, km/h (urban). Tune per centre.
SPEEDS_KMH: dict[str, float] = {
    "engine": 35.0,
    "truck": 30.0,
    "ladder": 30.0,
    "rescue": 35.0,
    "medic": 45.0,
    "private": 40.0,
    "chief": 50.0,
    "patrol": 45.0,
    "police": 45.0,
}
DEFAULT_SPEED_KMH = 35.0
DETOUR = 1.35  # roads are longer than the straight line (about 1.2-1.5 in cities)

Count = Annotated[int, msgspec.Meta(ge=1, le=20)]
Word = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class NeedSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """So many units of a kind, or with a capability."""

    kind: Word | None = None
    capability: Word | None = None
    count: Count = 1


class ResponsePlanSpec(
    msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True
):
    """What incidents of these types need, as written in the set-up files."""

    id: Annotated[
        str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    ]
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    types: list[Annotated[str, msgspec.Meta(max_length=32)]]
    units: list[NeedSpec]


@dataclass(frozen=True, slots=True)
class Need:
    kind: str | None = None
    capability: str | None = None
    count: int = 1

    def fits(self, unit: Unit) -> bool:
        if self.kind is not None and unit.kind != self.kind:
            return False
        return self.capability is None or self.capability in unit.capabilities

    @property
    def label(self) -> str:
        return self.kind or f"any unit with {self.capability}"


@dataclass(frozen=True, slots=True)
class Pick:
    unit_id: str
    kind: str
    need: str  # which need it fills
    distance_m: float | None
    eta_s: float | None  # None: the unit's position is unknown


# Words of a procedure's dispatch step → the need they name (first match wins per phrase).
_PROCEDURE_WORDS: tuple[tuple[re.Pattern[str], Need], ...] = tuple(
    (re.compile(rf"\b{pattern}\b", re.IGNORECASE), need)
    for pattern, need in (
        (r"(als |bls )?medics?|ambulances?", Need(kind="medic")),
        (r"first responders?", Need(capability="medical")),
        (r"engines?( company)?", Need(kind="engine")),
        (r"(ladder|truck)s?( company)?", Need(kind="truck")),
        (r"rescue( unit| squad)?", Need(kind="rescue")),
        (r"police|patrols?", Need(kind="patrol")),
    )
)
# What a category needs when neither a plan nor the procedure says.
_BY_CATEGORY: dict[HarmCategory, Need] = {
    HarmCategory.FIRE: Need(kind="engine"),
    HarmCategory.MEDICAL: Need(capability="medical"),
    HarmCategory.RESCUE: Need(capability="rescue"),
    HarmCategory.HAZARD: Need(kind="engine"),
}


def needs_for(
    type_code: str,
    category: HarmCategory,
    procedure: Sequence[str],
    plans: Iterable[ResponsePlanSpec] = (),
) -> tuple[Need, ...]:
    """What an incident needs: its type's response plan, else what its procedure's dispatch
    steps name, else one unit able to handle its category."""
    for plan in plans:
        if type_code in {t.upper() for t in plan.types}:
            return tuple(Need(n.kind, n.capability, n.count) for n in plan.units)
    found: list[Need] = []
    for step in procedure:
        if "dispatch" not in step.casefold() and "send" not in step.casefold():
            continue
        for phrase in re.split(r",|;| and | or ", step):
            for pattern, need in _PROCEDURE_WORDS:
                if pattern.search(phrase):
                    if need not in found:
                        found.append(need)
                    break
    if found:
        return tuple(found)
    fallback = _BY_CATEGORY.get(category, Need(capability=category.value))
    return (fallback,)


TravelTime = Callable[[Unit, Location], tuple[float, float] | None]


def straight_line(unit: Unit, where: Location) -> tuple[float, float] | None:
    """(metres, seconds) by the straight line, the detour factor and the kind's speed."""
    if None in (unit.lat, unit.lon, where.lat, where.lon):
        return None
    assert unit.lat is not None and unit.lon is not None
    assert where.lat is not None and where.lon is not None
    metres = haversine_m(unit.lat, unit.lon, where.lat, where.lon) * DETOUR
    speed = SPEEDS_KMH.get(unit.kind, DEFAULT_SPEED_KMH) / 3.6
    return metres, metres / speed


def recommend(
    needs: Sequence[Need],
    units: Iterable[Unit],
    where: Location | None,
    travel: TravelTime = straight_line,
) -> list[Pick]:
    """For each need in order, the available fitting units that can be there first.

    A unit fills one need only; units with no known position come after those with one (an
    operator may still know where they are). Needs that no available unit fits are left
    unfilled: the caller shows them as short.
    """
    candidates: list[tuple[float, float | None, float | None, Unit]] = []
    for u in units:
        if u.status is not UnitStatus.AVAILABLE:
            continue
        t = travel(u, where) if where is not None else None
        distance, eta = t if t is not None else (None, None)
        candidates.append((eta if eta is not None else float("inf"), distance, eta, u))
    candidates.sort(key=lambda c: (c[0], c[3].id))
    taken: set[str] = set()
    picks: list[Pick] = []
    for need in needs:
        filled = 0
        for _, distance, eta, u in candidates:
            if filled == need.count:
                break
            if u.id in taken or not need.fits(u):
                continue
            taken.add(u.id)
            filled += 1
            picks.append(Pick(u.id, u.kind, need.label, distance, eta))
    return picks


def short(needs: Sequence[Need], picks: Sequence[Pick]) -> list[dict[str, object]]:
    """The needs the picks leave unfilled: ``[{"need", "missing"}]`` (where resources are short)."""
    out: list[dict[str, object]] = []
    for need in needs:
        got = sum(1 for p in picks if p.need == need.label)
        if got < need.count:
            out.append({"need": need.label, "missing": need.count - got})
    return out
