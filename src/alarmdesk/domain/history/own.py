"""alarmdesk's own finished incidents as call records: each unit's times read off the
incident's timeline, so a KPI of alarmdesk's own work times every unit as a CAD export would.

An incident's timeline holds, in order, the operator's dispatches (``incident.transitioned``
with the action ``dispatch``, ``incident.units_assigned`` for more units later), arrivals
(``arrive``, as a transition or as an update once the scene is held) and the units' own
status reports (``incident.unit_status``: en route, on scene, returning, available). A unit's
time of a phase is the first time it reached it, except ``cleared``: the last time it
reported returning or available. A unit that never reported clear was cleared when the
incident was resolved (or closed): that is when the operator let it go.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from alarmdesk.domain.events import EventType
from alarmdesk.domain.history.records import UnitResponse
from alarmdesk.domain.incident import Action
from alarmdesk.domain.units import UnitStatus

__all__ = ["TIMELINE_EVENTS", "unit_responses"]

# The event types that time a unit; the others say nothing about units.
TIMELINE_EVENTS: tuple[str, ...] = (
    EventType.TRANSITIONED.value,
    EventType.UNITS_ASSIGNED.value,
    EventType.UPDATED.value,
    EventType.UNIT_STATUS.value,
)

_CLEAR = frozenset({UnitStatus.RETURNING.value, UnitStatus.AVAILABLE.value})


def _named(detail: Mapping[str, Any]) -> list[str]:
    units = detail.get("units")
    return [str(u) for u in units] if isinstance(units, list) else []


def unit_responses(
    timeline: Iterable[tuple[str, datetime, Mapping[str, Any] | None]],
    *,
    ended: datetime | None,
    kinds: Mapping[str, str | None],
) -> tuple[UnitResponse, ...]:
    """Each unit sent to one incident with its own times, in the order they were sent.

    Args:
        timeline: the incident's events as (type, at, detail), in the order they happened.
        ended: when the incident was resolved (or closed); the clear time of a unit that
            never reported clear.
        kinds: each unit's kind (engine, medic…), None when unknown.
    """
    times: dict[str, dict[str, datetime]] = {}

    def first(unit: str, phase: str, at: datetime) -> None:
        if unit in times:
            times[unit].setdefault(phase, at)

    for kind, at, raw in timeline:
        detail = raw or {}
        action = detail.get("action")
        if kind == EventType.UNITS_ASSIGNED or (
            kind == EventType.TRANSITIONED and action == Action.DISPATCH
        ):
            for unit in _named(detail):
                times.setdefault(unit, {}).setdefault("dispatched", at)
        elif action == Action.ARRIVE and kind in (EventType.TRANSITIONED, EventType.UPDATED):
            for unit in _named(detail):
                first(unit, "on_scene", at)
        elif kind == EventType.UNIT_STATUS:
            unit, status = str(detail.get("unit", "")), detail.get("status")
            if status == UnitStatus.EN_ROUTE:
                first(unit, "en_route", at)
            elif status == UnitStatus.ON_SCENE:
                first(unit, "on_scene", at)
            elif status in _CLEAR and unit in times:
                times[unit]["cleared"] = at  # the last report of clear counts
    out = []
    for unit, phases in times.items():
        cleared = phases.get("cleared", ended)
        out.append(
            UnitResponse(
                unit_id=unit,
                kind=kinds.get(unit),
                dispatched=phases.get("dispatched"),
                en_route=phases.get("en_route"),
                on_scene=phases.get("on_scene"),
                cleared=cleared,
            )
        )
    return tuple(out)
