"""Operator commands on an incident (acknowledge, dispatch, arrive, notes, procedure steps,
reclassify, verify, resolve, cancel, close): each moves one incident of the
:class:`~alarmdesk.pipeline.engine.Pipeline`'s state and says what it did in events. Pure and
synchronous like the rest of the pipeline: a refused command raises before changing anything.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import (
    InvalidField,
    SopIncomplete,
    UnitUnavailable,
    UnknownIncidentType,
    UnknownUnit,
)
from alarmdesk.domain.escalation import EscalationSpec
from alarmdesk.domain.events import EventType
from alarmdesk.domain.incident import (
    Action,
    Incident,
    Status,
    Verdict,
    next_status,
    parse_cancel_reason,
    parse_disposition,
    parse_verdict,
)
from alarmdesk.domain.procedure import Procedure, steps_of
from alarmdesk.domain.signal import is_blank
from alarmdesk.domain.taxonomy import Taxonomy
from alarmdesk.domain.units import DISPATCHABLE, Unit, UnitStatus
from alarmdesk.pipeline.confirm import confirm
from alarmdesk.pipeline.correlate import CorrelationIndex
from alarmdesk.pipeline.escalate import Timers, escalated, start
from alarmdesk.pipeline.results import MAX_NOTE, PipelineResult, incident_event


class Pipeline(Protocol):
    """What a command needs of the :class:`~alarmdesk.pipeline.engine.Pipeline`'s state."""

    taxonomy: Taxonomy
    policies: tuple[EscalationSpec, ...]
    timers: Timers
    index: CorrelationIndex
    units: dict[str, Unit]

    def route(self, inc: Incident, at: datetime) -> tuple[tuple[str, ...], tuple[str, ...]]: ...


def _transition(
    p: Pipeline,
    inc: Incident,
    action: Action,
    cmd: c.Command,
    now: datetime,
    result: PipelineResult,
    detail: dict[str, object],
) -> None:
    before, after = inc.move(action, now)
    if not inc.is_open:
        p.index.remove(inc)
    if after is before:
        return
    detail = {"action": action.value, "from": before.value, "to": after.value, **detail}
    result.events.append(incident_event(EventType.TRANSITIONED, inc, now, cmd.actor, detail))


def acknowledge(
    p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
) -> None:
    _transition(p, inc, Action.ACKNOWLEDGE, cmd, now, result, {})


def dispatch(
    p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
) -> None:
    assert isinstance(cmd, c.Dispatch)
    if not cmd.units:
        raise InvalidField("dispatch needs at least one unit", field="units", code="missing_field")
    units: list[Unit] = []
    for uid in dict.fromkeys(cmd.units):
        unit = p.units.get(uid)
        if unit is None:
            raise UnknownUnit(f"unit {uid!r} does not exist", field="units")
        if unit.incident_id == inc.id:
            continue
        if unit.status not in DISPATCHABLE:
            where = f" (on incident {unit.incident_id})" if unit.incident_id else ""
            raise UnitUnavailable(f"unit {uid} is {unit.status.value}{where}", field="units")
        units.append(unit)
    if not units:
        raise InvalidField(
            "every unit named is already assigned to this incident",
            field="units",
            code="invalid_value",
        )
    recommended: list[str] | None = None
    if cmd.recommended is not None:  # what the operator was shown: units, as `units` are
        if len(cmd.recommended) > c.Dispatch.MAX_RECOMMENDED:
            raise InvalidField(
                f"recommended names at most {c.Dispatch.MAX_RECOMMENDED} units",
                field="recommended",
                code="invalid_value",
            )
        # Only units that exist are kept: the detail and the override figures hold unit
        # ids, never a client's text; and a unit removed from the set-up since the
        # recommendation was shown never stands in the way of the dispatch itself.
        recommended = [u for u in dict.fromkeys(cmd.recommended) if u in p.units]
    status_before = inc.status
    detail: dict[str, object] = {"units": [u.id for u in units]}
    if recommended is not None:  # the operator's choice against the recommendation
        detail["recommended"] = recommended
        detail["override"] = set(cmd.units) != set(recommended)
    _transition(p, inc, Action.DISPATCH, cmd, now, result, detail)
    for unit in units:
        unit.status, unit.incident_id, unit.status_at = UnitStatus.DISPATCHED, inc.id, now
        result.units[unit.id] = unit
    inc.units = tuple(dict.fromkeys((*inc.units, *(u.id for u in units))))  # sent again
    if inc.status is status_before:  # more units, same status
        result.events.append(incident_event(EventType.UNITS_ASSIGNED, inc, now, cmd.actor, detail))


def arrive(
    p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
) -> None:
    assert isinstance(cmd, c.Arrive)
    next_status(inc.status, Action.ARRIVE)  # not now (before a dispatch): that first
    for uid in cmd.units:
        if uid not in inc.units:
            raise InvalidField(
                f"unit {uid!r} is not assigned to incident {inc.id}",
                field="units",
                code="invalid_value",
            )
    # Only a unit still committed here arrives: one that cleared (its crew reported
    # returning or available) and went elsewhere would put this incident on scene with
    # nobody there, and itself on scene at an incident it has not reached.
    committed = [u for u in inc.units if _committed(p, u, inc)]
    named = cmd.units or tuple(committed)
    if not named:
        raise UnitUnavailable(
            f"no unit is committed to incident {inc.id}: each has cleared it",
            field="units",
        )
    for uid in named:
        if uid not in committed:
            unit = p.units.get(uid)
            where = f" (on incident {unit.incident_id})" if unit and unit.incident_id else ""
            status = unit.status.value if unit else "gone"
            raise UnitUnavailable(
                f"unit {uid} has cleared incident {inc.id}: it is {status}{where}",
                field="units",
            )
    status_before = inc.status
    _transition(p, inc, Action.ARRIVE, cmd, now, result, {"units": list(named)})
    if inc.status is status_before:  # more units arriving at a scene already held
        result.events.append(
            incident_event(
                EventType.UPDATED,
                inc,
                now,
                cmd.actor,
                {"action": "arrive", "units": list(named)},
            )
        )
    for uid in named:
        unit = p.units.get(uid)
        if unit is not None:
            unit.status, unit.status_at = UnitStatus.ON_SCENE, now
            result.units[uid] = unit


def _committed(p: Pipeline, uid: str, inc: Incident) -> bool:
    """Whether unit ``uid`` is still committed to ``inc`` (not cleared from it)."""
    unit = p.units.get(uid)
    return unit is not None and unit.incident_id == inc.id


def note(p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult) -> None:
    assert isinstance(cmd, c.AddNote)
    text = cmd.text.strip()
    if is_blank(text):  # white space and invisible characters say nothing
        raise InvalidField("a note needs text", field="text", code="missing_field")
    if len(text) > MAX_NOTE:
        raise InvalidField(
            f"a note is at most {MAX_NOTE} characters", field="text", code="invalid_value"
        )
    inc.move(Action.NOTE, now)
    result.events.append(incident_event(EventType.NOTED, inc, now, cmd.actor, {"text": text}))


def step_done(
    p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
) -> None:
    assert isinstance(cmd, c.CompleteStep)
    if inc.procedure is None:
        inc.procedure = Procedure(inc.type_code, steps_of(_sop(p, inc.type_code)))
    inc.move(Action.STEP, now)
    inc.procedure.tick(cmd.step, cmd.actor, now)
    step = inc.procedure.steps[cmd.step]
    detail: dict[str, object] = {"step": cmd.step, "text": step.text}
    result.events.append(incident_event(EventType.STEP_DONE, inc, now, cmd.actor, detail))


def _sop(p: Pipeline, code: str) -> tuple[str, ...]:
    t = p.taxonomy.get(code)
    return t.sop if t is not None else ()


def reclassify(
    p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
) -> None:
    assert isinstance(cmd, c.Reclassify)
    t = p.taxonomy.get(cmd.type_code)
    if t is None:
        raise UnknownIncidentType(f"no incident type {cmd.type_code!r}", field="type_code")
    if t.code == inc.type_code:
        raise InvalidField(
            f"incident {inc.id} is already {t.code}", field="type_code", code="invalid_value"
        )
    old_desks, old_priority = inc.desks, inc.priority
    detail: dict[str, object] = {"from": inc.type_code, "to": t.code}
    inc.move(Action.RECLASSIFY, now)
    p.index.remove(inc)
    raised, added = escalated(inc)  # what escalation did stays done
    inc.type_code, inc.category = t.code, t.category
    inc.priority = max(1, t.priority - raised)
    routed, inc.routed_by = p.route(inc, now)
    inc.desks = tuple(dict.fromkeys((*routed, *added)))
    if inc.escalation is None and inc.status is Status.NEW:
        # Not acknowledged and no policy yet (a burglar alarm found to be a fire): the
        # new type's policy, counted from now, as if the incident opened as it is.
        policy = start(inc, p.policies, now, p.timers)
        if policy is not None:
            detail["escalation"] = policy.id
    detail["priority"] = {"from": old_priority, "to": inc.priority}
    inc.procedure = Procedure(t.code, steps_of(t.sop))  # the new type's checklist
    if inc.correlation_key is not None:
        inc.correlation_key = inc.correlation_key.reclassified(t.category)
    p.index.add(inc)
    ev = incident_event(EventType.RECLASSIFIED, inc, now, cmd.actor, detail)
    # Desks that lose the incident hear of it too, so it leaves their queue.
    ev.desks = tuple(dict.fromkeys((*old_desks, *inc.desks)))
    result.events.append(ev)


def _finish(
    p: Pipeline,
    inc: Incident,
    action: Action,
    cmd: c.Command,
    now: datetime,
    result: PipelineResult,
    detail: dict[str, object],
) -> None:
    _transition(p, inc, action, cmd, now, result, detail)
    for uid in inc.units:
        unit = p.units.get(uid)
        if unit is not None and unit.incident_id == inc.id:
            unit.status, unit.incident_id = UnitStatus.AVAILABLE, None
            unit.status_at = now
            result.units[uid] = unit


def resolve(
    p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
) -> None:
    assert isinstance(cmd, c.Resolve)
    disposition = parse_disposition(cmd.disposition)
    detail: dict[str, object] = {"disposition": disposition.value}
    missing = inc.procedure.open_mandatory() if inc.procedure is not None else []
    if missing and is_blank(cmd.override_reason):
        assert inc.procedure is not None
        raise SopIncomplete(
            f"incident {inc.id}: mandatory procedure step(s) not done: "
            # numbered from 1, as the console's checklist shows them
            + "; ".join(f"{i + 1}. {inc.procedure.steps[i].text}" for i in missing)
            + " (a supervisor may resolve with a reason)",
            field="procedure",
        )
    if missing:
        detail["sop_override"] = {
            "reason": cmd.override_reason.strip()[:MAX_NOTE],
            "open": missing,
        }
    if cmd.note.strip():
        detail["note"] = cmd.note.strip()[:MAX_NOTE]
    _finish(p, inc, Action.RESOLVE, cmd, now, result, detail)
    inc.disposition = disposition.value


def cancel(
    p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
) -> None:
    assert isinstance(cmd, c.Cancel)
    reason = parse_cancel_reason(cmd.reason)
    detail: dict[str, object] = {"reason": reason.value}
    if cmd.note.strip():
        detail["note"] = cmd.note.strip()[:MAX_NOTE]
    _finish(p, inc, Action.CANCEL, cmd, now, result, detail)
    inc.disposition = f"cancelled:{reason.value}"


def verify(
    p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
) -> None:
    """A video verdict. ``verified`` confirms the alarm as a second zone would (BS 8243
    video confirmation); ``false`` is recorded and changes nothing else: the operator
    then resolves or cancels it. A later verdict replaces the earlier one; both stay in
    the timeline."""
    assert isinstance(cmd, c.Verify)
    verdict = parse_verdict(cmd.verdict)
    note = cmd.note.strip()
    if len(note) > MAX_NOTE:
        raise InvalidField(
            f"a note is at most {MAX_NOTE} characters", field="note", code="invalid_value"
        )
    inc.move(Action.VERIFY, now)
    detail: dict[str, object] = {"verdict": verdict.value}
    if note:
        detail["note"] = note
    if verdict is Verdict.VERIFIED and (changed := confirm(inc)) is not None:
        detail["confirmed"] = True
        detail.update(changed)
    inc.verification = {"verdict": verdict.value, "by": cmd.actor, "at": now.isoformat()}
    result.events.append(incident_event(EventType.VERIFIED, inc, now, cmd.actor, detail))


def close(
    p: Pipeline, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
) -> None:
    _transition(p, inc, Action.CLOSE, cmd, now, result, {})


HANDLERS: dict[
    type[c.Command], Callable[[Pipeline, Incident, Any, datetime, PipelineResult], None]
] = {
    c.Acknowledge: acknowledge,
    c.Dispatch: dispatch,
    c.Arrive: arrive,
    c.AddNote: note,
    c.CompleteStep: step_done,
    c.Reclassify: reclassify,
    c.Resolve: resolve,
    c.Cancel: cancel,
    c.Close: close,
    c.Verify: verify,
}
