"""The pipeline engine: the in-memory state of every incident not yet final, and the pure
functions that move it.

``Pipeline.ingest`` takes a stored-to-be signal and returns what happened; ``Pipeline.handle``
takes an operator command, applied by its handler in :mod:`alarmdesk.pipeline.commands`. Both
are synchronous, do no I/O and raise before changing
anything when a command is refused, so the writer can apply them inside its transaction
and persist exactly the incidents they touched. A unit's own status and position reports
are handled alike, over this state, by :mod:`alarmdesk.pipeline.unit_reports`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import Forbidden, NotFound, VersionConflict
from alarmdesk.domain.escalation import EscalationSpec
from alarmdesk.domain.events import EventType
from alarmdesk.domain.incident import (
    FINAL,
    Condition,
    Incident,
    Status,
    incident_dict,
)
from alarmdesk.domain.procedure import Procedure, steps_of
from alarmdesk.domain.routing import FALLBACK, Facts, Route, Routes, evaluate
from alarmdesk.domain.signal import Signal
from alarmdesk.domain.silences import Silence, Silences, silencing
from alarmdesk.domain.taxonomy import IncidentType, Taxonomy
from alarmdesk.domain.units import Desk, Unit
from alarmdesk.pipeline.commands import HANDLERS
from alarmdesk.pipeline.confirm import Intrusions, fold
from alarmdesk.pipeline.correlate import CorrelationIndex, correlation_key
from alarmdesk.pipeline.escalate import Timers, fire_step, flag_overdue, settle, start
from alarmdesk.pipeline.results import PipelineResult, incident_event
from alarmdesk.pipeline.route import DESK_FILTERS, route


@dataclass(frozen=True, slots=True)
class CorrelationSettings:
    radius_m: float = 200.0
    window: timedelta = timedelta(minutes=30)
    confirmation: timedelta = timedelta(minutes=30)  # sequential confirmation (BS 8243)


ESCALATION = "system:escalation"  # the actor of escalation events


def classify(taxonomy: Taxonomy, signal: Signal) -> IncidentType:
    """The incident type of a signal; an unknown code is UNCLASSIFIED, never dropped."""
    return taxonomy.resolve(signal.type_code)


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
            inc.desks, inc.routed_by = self.route(inc, signal.received_at)
            inc.procedure = Procedure(t.code, steps_of(t.sop))
            self.intrusions.track(inc)
            start(inc, self.policies, inc.opened_at, self.timers)
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

    def route(self, inc: Incident, at: datetime) -> tuple[tuple[str, ...], tuple[str, ...]]:
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
        handler = HANDLERS[type(cmd)]
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
