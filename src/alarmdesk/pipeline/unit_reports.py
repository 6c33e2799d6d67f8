"""Unit reports: a unit's own status or position, from its crew or an AVL feed, and what it
does to the incident the unit is on.

Operators move units with commands on an incident (dispatch, arrived, resolve: the
:class:`~alarmdesk.pipeline.engine.Pipeline`'s state machine); a unit report comes from the
unit, names no incident, and moves the incident's timeline with it. Pure and synchronous
like the rest of the pipeline: it raises before changing anything when a report is refused.
"""

from __future__ import annotations

from datetime import datetime

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import Forbidden, InvalidField, InvalidTransition, UnknownUnit
from alarmdesk.domain.events import EventType
from alarmdesk.domain.incident import FINAL
from alarmdesk.domain.units import UNIT_MOVES, Unit, UnitStatus
from alarmdesk.pipeline.engine import Pipeline
from alarmdesk.pipeline.results import PipelineResult, incident_event

__all__ = ["unit_report"]


def unit_report(pipeline: Pipeline, report: c.UnitReport, now: datetime) -> PipelineResult:
    """A unit's status or position: the incident's timeline moves with its units.

    En route stamps the incident's first en-route time; on scene is an arrival at the
    incident (as the operator's "arrived"); returning or available clears the unit from
    it. A position only moves the unit.

    Raises:
        UnknownUnit: no such unit; InvalidTransition: a status it cannot go to from its
        own (dispatched only by an operator's dispatch); Forbidden: a status that would
        move an incident of none of the reporter's desks.
    """
    unit = pipeline.units.get(report.unit_id)
    if unit is None:
        raise UnknownUnit(f"unit {report.unit_id!r} does not exist", field="unit_id")
    wanted = _wanted_status(unit, report)
    inc = pipeline.incidents.get(unit.incident_id) if unit.incident_id is not None else None
    if (
        wanted is not None
        and inc is not None
        and report.desks is not None
        and "*" not in report.desks
        and report.desks.isdisjoint(inc.desks)
    ):
        raise Forbidden(
            f"unit {unit.id} is on incident {inc.id}, which is not routed to your desks",
            field="unit_id",
        )
    result = PipelineResult()
    if report.lat is not None and report.lon is not None:  # checked before anything moves
        unit.lat, unit.lon = report.lat, report.lon
        result.units[unit.id] = unit
    if wanted is None:
        return result
    if wanted is UnitStatus.ON_SCENE and inc is not None and inc.is_open:
        arrived = pipeline.handle(c.Arrive(inc.id, report.actor, units=(unit.id,)), now)
        arrived.units[unit.id] = unit
        return arrived
    unit.status, unit.status_at = wanted, now
    result.units[unit.id] = unit
    if inc is not None:
        if wanted in (UnitStatus.RETURNING, UnitStatus.AVAILABLE):
            unit.incident_id = None
        if wanted is UnitStatus.EN_ROUTE and inc.en_route_at is None:
            inc.en_route_at = now
        if inc.status not in FINAL:
            inc.version += 1
            detail: dict[str, object] = {"unit": unit.id, "status": wanted.value}
            result.events.append(
                incident_event(EventType.UNIT_STATUS, inc, now, report.actor, detail)
            )
            result.incidents[inc.id] = inc
            result.incident_id = inc.id
    return result


def _wanted_status(unit: Unit, report: c.UnitReport) -> UnitStatus | None:
    """The status a report moves the unit to; None when it reports none, or its own.

    Raises:
        InvalidField: not a unit status; InvalidTransition: not one the unit can go to.
    """
    if report.status is None or report.status == unit.status.value:
        return None
    try:
        wanted = UnitStatus(report.status)
    except ValueError:
        raise InvalidField(
            f"unknown unit status {report.status!r}", field="status", code="invalid_value"
        ) from None
    if wanted not in UNIT_MOVES[unit.status]:
        allowed = ", ".join(sorted(s.value for s in UNIT_MOVES[unit.status]))
        raise InvalidTransition(
            f"unit {unit.id} is {unit.status.value}; it can report {allowed}",
            field="status",
        )
    return wanted
