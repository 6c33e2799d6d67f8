"""The pipeline engine: the in-memory state of every incident not yet final, and the pure
functions that move it.

``Pipeline.ingest`` takes a stored-to-be signal and returns what happened; ``Pipeline.handle``
takes an operator command. Both are synchronous, do no I/O and raise before changing
anything when a command is refused, so the writer can apply them inside its transaction
and persist exactly the incidents they touched. A unit's own status and position reports
are handled alike, over this state, by :mod:`alarmdesk.pipeline.unit_reports`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import (
    Forbidden,
    InvalidField,
    NotFound,
    SopIncomplete,
    UnitUnavailable,
    UnknownIncidentType,
    UnknownUnit,
    VersionConflict,
)
from alarmdesk.domain.escalation import EscalationSpec, choose, freeze
from alarmdesk.domain.events import EventType, IncidentEvent
from alarmdesk.domain.incident import (
    FINAL,
    Action,
    Condition,
    Incident,
    Status,
    Verdict,
    incident_dict,
    next_status,
    parse_cancel_reason,
    parse_disposition,
    parse_verdict,
)
from alarmdesk.domain.procedure import Procedure, steps_of
from alarmdesk.domain.routing import FALLBACK, Facts, Route, Routes, evaluate
from alarmdesk.domain.signal import Signal, is_blank
from alarmdesk.domain.silences import Silence, Silences, silencing
from alarmdesk.domain.taxonomy import IncidentType, Taxonomy
from alarmdesk.domain.units import DISPATCHABLE, Desk, Unit, UnitStatus
from alarmdesk.pipeline.confirm import Intrusions, confirm, fold
from alarmdesk.pipeline.correlate import CorrelationIndex, correlation_key
from alarmdesk.pipeline.escalate import Timers, fire_step, flag_overdue, settle
from alarmdesk.pipeline.route import DESK_FILTERS, route

MAX_NOTE = 4000


@dataclass(frozen=True, slots=True)
class CorrelationSettings:
    radius_m: float = 200.0
    window: timedelta = timedelta(minutes=30)
    confirmation: timedelta = timedelta(minutes=30)  # sequential confirmation (BS 8243)


ESCALATION = "system:escalation"  # the actor of escalation events


@dataclass(slots=True)
class PipelineResult:
    """What one signal or command did: the events, and every incident and unit it touched."""

    events: list[IncidentEvent] = field(default_factory=list)
    incidents: dict[int, Incident] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)
    incident_id: int | None = None  # None: the signal is recorded, no incident
    silenced_by: int | None = None  # the silence that held the signal back
    # Incidents a signal changed beyond a repeat's counters (a confirmation): stored whole.
    rewrite: set[int] = field(default_factory=set)


def classify(taxonomy: Taxonomy, signal: Signal) -> IncidentType:
    """The incident type of a signal; an unknown code is UNCLASSIFIED, never dropped."""
    return taxonomy.resolve(signal.type_code)


def incident_event(
    type_: EventType, inc: Incident, at: datetime, actor: str, detail: dict[str, object]
) -> IncidentEvent:
    """An event of ``inc`` as it is now: heard by its desks, with its snapshot."""
    return IncidentEvent(
        type=type_,
        incident_id=inc.id,
        at=at,
        actor=actor,
        detail=detail,
        desks=inc.desks,
        snapshot=incident_dict(inc),
    )


class Pipeline:
    def __init__(
        self,
        taxonomy: Taxonomy,
        desks: Sequence[Desk],
        units: Iterable[Unit] = (),
        *,
        settings: CorrelationSettings | None = None,
        fallback_desk: str | None = None,
        next_incident_id: int = 1,
        routes: Routes | Sequence[Route] = (),
        silences: Sequence[Silence] = (),
        policies: Sequence[EscalationSpec] = (),
    ) -> None:
        self.taxonomy = taxonomy
        self.desks = list(desks)
        # the routing tree; empty: the desks' own filters route
        self.routes = routes if isinstance(routes, Routes) else Routes(routes)
        self._silences = Silences(silences)  # silences in force or to come
        self.policies = tuple(policies)  # escalation policies, the first match is frozen
        self.timers = Timers()  # escalation timers of the open incidents
        self.intrusions = Intrusions()  # each panel's open intruder alarm
        self.fallback_desk = fallback_desk or (self.desks[0].id if self.desks else "default")
        self.settings = settings or CorrelationSettings()
        self.index = CorrelationIndex(self.settings.radius_m, self.settings.window)
        self.incidents: dict[int, Incident] = {}  # every incident not yet final
        self.units: dict[str, Unit] = {u.id: u for u in units}
        self.next_incident_id = next_incident_id

    @property
    def silences(self) -> Silences:
        return self._silences

    @silences.setter
    def silences(self, silences: Sequence[Silence]) -> None:
        self._silences = Silences(silences)

    # -- loading ---------------------------------------------------------------------------

    def restore(self, incidents: Iterable[Incident]) -> None:
        """Loads incidents not yet final (at start, from the store)."""
        for inc in incidents:
            if inc.status in FINAL:
                continue
            self.incidents[inc.id] = inc
            if inc.is_open:
                self.index.add(inc)
                self.timers.arm(inc)
                self.intrusions.track(inc)
            self.next_incident_id = max(self.next_incident_id, inc.id + 1)

    # -- signals ---------------------------------------------------------------------------

    def ingest(self, signal: Signal) -> PipelineResult:
        t = classify(self.taxonomy, signal)
        # The sender's priority (a CAP alert's severity), else the type's.
        priority = signal.priority or t.priority
        result = PipelineResult()
        if signal.record_only:
            return result
        if self.silences:
            facts = Facts(
                t.category,
                t.code,
                priority,
                signal.source_kind,
                signal.source_id,
                signal.location,
                signal.received_at,
            )
            held = silencing(self.silences, facts)
            if held is not None:  # stored with the silence that held it; nothing rings
                result.silenced_by = held.id
                return result
        inc = self._chosen(signal, t)
        if signal.condition == Condition.RESTORED.value:
            if inc is not None and inc.condition is not Condition.RESTORED:
                inc.condition = Condition.RESTORED
                inc.signal_count += 1
                inc.version += 1
                result.events.append(
                    incident_event(
                        EventType.UPDATED,
                        inc,
                        signal.received_at,
                        signal.source_id,
                        {"signal_id": signal.id, "condition": "restored"},
                    )
                )
                result.incidents[inc.id] = inc
                result.incident_id = inc.id
            elif inc is not None:
                inc.signal_count += 1
                result.incidents[inc.id] = inc
                result.incident_id = inc.id
            return result  # a restore never opens an incident
        if inc is not None:
            inc.signal_count += 1
            self.index.touch(inc, signal.occurred_at)
            detail: dict[str, object] = {"signal_id": signal.id, "type_code": signal.type_code}
            if inc.condition is Condition.RESTORED:  # the device alarms again
                inc.condition = Condition.ACTIVE
                detail["condition"] = "active"
            if priority < inc.priority:  # a more urgent report raises the incident
                detail["priority"] = {"from": inc.priority, "to": priority}
                inc.priority = priority
            inc.version += 1
            result.events.append(
                incident_event(EventType.UPDATED, inc, signal.received_at, signal.source_id, detail)
            )
        elif (same := self.intrusions.of(signal, t, self.incidents)) is not None:
            # Another zone of a panel with an open intruder alarm (pipeline/confirm.py).
            inc = same
            self.index.touch(inc, signal.occurred_at)
            detail, confirmed = fold(inc, signal, self.settings.confirmation)
            if confirmed:
                result.rewrite.add(inc.id)
            result.events.append(
                incident_event(EventType.UPDATED, inc, signal.received_at, signal.source_id, detail)
            )
        else:
            inc = Incident(
                id=self.next_incident_id,
                type_code=t.code,
                category=t.category,
                priority=priority,
                source_kind=signal.source_kind,
                source_id=signal.source_id,
                opened_at=signal.received_at,
                first_seen=signal.occurred_at,
                last_seen=signal.occurred_at,
                location=signal.location,
                summary=signal.summary,
                correlation_key=correlation_key(signal, t.category),
            )
            inc.desks, inc.routed_by = self._route(inc, signal.received_at)
            inc.procedure = Procedure(t.code, steps_of(t.sop))
            self.intrusions.track(inc)
            policy = choose(self.policies, inc.desks, inc.category, inc.type_code, inc.priority)
            if policy is not None:
                inc.escalation = freeze(policy, inc.opened_at)
                self.timers.arm(inc)
            self.next_incident_id += 1
            self.incidents[inc.id] = inc
            self.index.add(inc)
            detail = {"signal_id": signal.id, "type_code": signal.type_code}
            if t.code != signal.type_code:
                detail["unclassified_code"] = signal.type_code
            result.events.append(
                incident_event(EventType.OPENED, inc, signal.received_at, signal.source_id, detail)
            )
        result.incidents[inc.id] = inc
        result.incident_id = inc.id
        return result

    def _route(self, inc: Incident, at: datetime) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The desks of an incident and the rules that chose them (:mod:`domain.routing`)."""
        if not self.routes:
            desks = route(self.desks, inc.category, inc.source_kind, inc.location, "")
            if desks == ("",):  # no desk's filters claim it
                return (self.fallback_desk,), (FALLBACK,)
            return desks, (DESK_FILTERS,)
        facts = Facts(
            inc.category,
            inc.type_code,
            inc.priority,
            inc.source_kind,
            inc.source_id,
            inc.location,
            at,
        )
        return evaluate(self.routes, facts, self.fallback_desk)

    # -- commands --------------------------------------------------------------------------

    def handle(self, cmd: c.Command, now: datetime) -> PipelineResult:
        inc = self.incidents.get(cmd.incident_id)
        if inc is None:
            raise NotFound(
                f"incident {cmd.incident_id} does not exist or is already closed",
                field="incident_id",
            )
        if cmd.desks is not None and "*" not in cmd.desks and cmd.desks.isdisjoint(inc.desks):
            raise Forbidden(f"incident {inc.id} is not routed to your desks", field="incident_id")
        if cmd.expected_version is not None and cmd.expected_version != inc.version:
            raise VersionConflict(
                f"incident {inc.id} changed (version {inc.version}, you saw "
                f"{cmd.expected_version}); reload it and try again",
                field="expected_version",
            )
        result = PipelineResult(incident_id=inc.id)
        handler = _HANDLERS[type(cmd)]
        handler(self, inc, cmd, now, result)
        settle(inc, now, self.timers)
        snapshot = incident_dict(inc)  # every event of one command shows the state after it
        for ev in result.events:
            ev.snapshot = snapshot
        result.incidents[inc.id] = inc
        if inc.status in FINAL:
            del self.incidents[inc.id]
        return result

    def _chosen(self, signal: Signal, t: IncidentType) -> Incident | None:
        """The open incident a signal folds into: the call-taker's choice (``join``; a new
        incident with ``separate``), else the correlation rules'."""
        if signal.separate:
            return None
        if signal.join is not None:
            joined = self.incidents.get(signal.join)
            if joined is not None and joined.is_open:
                return joined
            return None  # closed meanwhile: a new incident, never a lost call
        return self.index.find(signal, t.category)

    # -- escalation (the timers and their effects: pipeline/escalate.py) ------------------

    def next_due(self) -> datetime | None:
        """When the next escalation timer fires (it may have been cancelled meanwhile)."""
        return self.timers.next_due()

    def fire_due(self, now: datetime) -> PipelineResult:
        """Fires every escalation timer due at ``now``: each step once, in order."""
        result = PipelineResult()
        for due, inc_id in self.timers.pop_due(now):
            inc = self.incidents.get(inc_id)
            if inc is None or not inc.is_open or inc.escalation is None:
                continue
            e = inc.escalation
            old_desks = inc.desks
            if e.due == due and inc.status is Status.NEW:
                detail = fire_step(inc, due, self.timers)
            elif e.on_scene_by == due and inc.status is Status.DISPATCHED:
                detail = flag_overdue(inc, due)
            else:
                continue  # acknowledged, or moved on, since it was armed
            ev = incident_event(EventType.ESCALATED, inc, now, ESCALATION, detail)
            ev.desks = tuple(dict.fromkeys(old_desks + inc.desks))  # new desks hear of it
            result.events.append(ev)
            result.incidents[inc.id] = inc
        return result

    def _transition(
        self,
        inc: Incident,
        action: Action,
        cmd: c.Command,
        now: datetime,
        result: PipelineResult,
        detail: dict[str, object],
    ) -> None:
        before, after = inc.move(action, now)
        if not inc.is_open:
            self.index.remove(inc)
        if after is before:
            return
        detail = {"action": action.value, "from": before.value, "to": after.value, **detail}
        result.events.append(incident_event(EventType.TRANSITIONED, inc, now, cmd.actor, detail))

    def _acknowledge(
        self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
    ) -> None:
        self._transition(inc, Action.ACKNOWLEDGE, cmd, now, result, {})

    def _dispatch(
        self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
    ) -> None:
        assert isinstance(cmd, c.Dispatch)
        if not cmd.units:
            raise InvalidField(
                "dispatch needs at least one unit", field="units", code="missing_field"
            )
        units: list[Unit] = []
        for uid in dict.fromkeys(cmd.units):
            unit = self.units.get(uid)
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
            recommended = [u for u in dict.fromkeys(cmd.recommended) if u in self.units]
        status_before = inc.status
        detail: dict[str, object] = {"units": [u.id for u in units]}
        if recommended is not None:  # the operator's choice against the recommendation
            detail["recommended"] = recommended
            detail["override"] = set(cmd.units) != set(recommended)
        self._transition(inc, Action.DISPATCH, cmd, now, result, detail)
        for unit in units:
            unit.status, unit.incident_id, unit.status_at = UnitStatus.DISPATCHED, inc.id, now
            result.units[unit.id] = unit
        inc.units = tuple(dict.fromkeys((*inc.units, *(u.id for u in units))))  # sent again
        if inc.status is status_before:  # more units, same status
            result.events.append(
                incident_event(EventType.UNITS_ASSIGNED, inc, now, cmd.actor, detail)
            )

    def _arrive(self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult) -> None:
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
        committed = [u for u in inc.units if self._committed(u, inc)]
        named = cmd.units or tuple(committed)
        if not named:
            raise UnitUnavailable(
                f"no unit is committed to incident {inc.id}: each has cleared it",
                field="units",
            )
        for uid in named:
            if uid not in committed:
                unit = self.units.get(uid)
                where = f" (on incident {unit.incident_id})" if unit and unit.incident_id else ""
                status = unit.status.value if unit else "gone"
                raise UnitUnavailable(
                    f"unit {uid} has cleared incident {inc.id}: it is {status}{where}",
                    field="units",
                )
        status_before = inc.status
        self._transition(inc, Action.ARRIVE, cmd, now, result, {"units": list(named)})
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
            unit = self.units.get(uid)
            if unit is not None:
                unit.status, unit.status_at = UnitStatus.ON_SCENE, now
                result.units[uid] = unit

    def _committed(self, uid: str, inc: Incident) -> bool:
        """Whether unit ``uid`` is still committed to ``inc`` (not cleared from it)."""
        unit = self.units.get(uid)
        return unit is not None and unit.incident_id == inc.id

    def _note(self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult) -> None:
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

    def _step_done(
        self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
    ) -> None:
        assert isinstance(cmd, c.CompleteStep)
        if inc.procedure is None:
            inc.procedure = Procedure(inc.type_code, steps_of(self._sop(inc.type_code)))
        inc.move(Action.STEP, now)
        inc.procedure.tick(cmd.step, cmd.actor, now)
        step = inc.procedure.steps[cmd.step]
        detail: dict[str, object] = {"step": cmd.step, "text": step.text}
        result.events.append(incident_event(EventType.STEP_DONE, inc, now, cmd.actor, detail))

    def _sop(self, code: str) -> tuple[str, ...]:
        t = self.taxonomy.get(code)
        return t.sop if t is not None else ()

    def _reclassify(
        self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
    ) -> None:
        assert isinstance(cmd, c.Reclassify)
        t = self.taxonomy.get(cmd.type_code)
        if t is None:
            raise UnknownIncidentType(f"no incident type {cmd.type_code!r}", field="type_code")
        if t.code == inc.type_code:
            raise InvalidField(
                f"incident {inc.id} is already {t.code}", field="type_code", code="invalid_value"
            )
        old_desks, old_priority = inc.desks, inc.priority
        detail: dict[str, object] = {"from": inc.type_code, "to": t.code}
        inc.move(Action.RECLASSIFY, now)
        self.index.remove(inc)
        # What escalation did stays done: the desks its fired steps added, the priority it
        # raised (the new type's, raised as often). Nobody picked the incident up in time,
        # whatever its type; routing the new type afresh dropped those desks while it still
        # waited, and the steps had fired, so nothing added them back.
        e = inc.escalation
        fired = e.policy.steps[: e.step] if e is not None else []
        raised = sum(1 for step in fired if step.raise_priority)
        inc.type_code, inc.category = t.code, t.category
        inc.priority = max(1, t.priority - raised)
        routed, inc.routed_by = self._route(inc, now)
        added = (d for step in fired for d in step.add_desks if d not in routed)
        inc.desks = tuple(dict.fromkeys((*routed, *added)))
        if e is None and inc.status is Status.NEW:
            # Not acknowledged and no policy yet (a burglar alarm found to be a fire): the
            # new type's policy, counted from now, as if the incident opened as it is.
            policy = choose(self.policies, inc.desks, inc.category, inc.type_code, inc.priority)
            if policy is not None:
                inc.escalation = freeze(policy, now)
                self.timers.arm(inc)
                detail["escalation"] = policy.id
        detail["priority"] = {"from": old_priority, "to": inc.priority}
        inc.procedure = Procedure(t.code, steps_of(t.sop))  # the new type's checklist
        if inc.correlation_key is not None:
            inc.correlation_key = inc.correlation_key.reclassified(t.category)
        self.index.add(inc)
        ev = incident_event(EventType.RECLASSIFIED, inc, now, cmd.actor, detail)
        # Desks that lose the incident hear of it too, so it leaves their queue.
        ev.desks = tuple(dict.fromkeys((*old_desks, *inc.desks)))
        result.events.append(ev)

    def _finish(
        self,
        inc: Incident,
        action: Action,
        cmd: c.Command,
        now: datetime,
        result: PipelineResult,
        detail: dict[str, object],
    ) -> None:
        self._transition(inc, action, cmd, now, result, detail)
        for uid in inc.units:
            unit = self.units.get(uid)
            if unit is not None and unit.incident_id == inc.id:
                unit.status, unit.incident_id = UnitStatus.AVAILABLE, None
                unit.status_at = now
                result.units[uid] = unit

    def _resolve(
        self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult
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
        self._finish(inc, Action.RESOLVE, cmd, now, result, detail)
        inc.disposition = disposition.value

    def _cancel(self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult) -> None:
        assert isinstance(cmd, c.Cancel)
        reason = parse_cancel_reason(cmd.reason)
        detail: dict[str, object] = {"reason": reason.value}
        if cmd.note.strip():
            detail["note"] = cmd.note.strip()[:MAX_NOTE]
        self._finish(inc, Action.CANCEL, cmd, now, result, detail)
        inc.disposition = f"cancelled:{reason.value}"

    def _verify(self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult) -> None:
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

    def _close(self, inc: Incident, cmd: c.Command, now: datetime, result: PipelineResult) -> None:
        self._transition(inc, Action.CLOSE, cmd, now, result, {})


_HANDLERS = {
    c.Acknowledge: Pipeline._acknowledge,
    c.Dispatch: Pipeline._dispatch,
    c.Arrive: Pipeline._arrive,
    c.AddNote: Pipeline._note,
    c.CompleteStep: Pipeline._step_done,
    c.Reclassify: Pipeline._reclassify,
    c.Resolve: Pipeline._resolve,
    c.Cancel: Pipeline._cancel,
    c.Close: Pipeline._close,
    c.Verify: Pipeline._verify,
}
