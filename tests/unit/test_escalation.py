"""Escalation with an injected clock: steps in order, each once, stopped by acknowledgement;
the on-scene flag; the policy frozen at opening; timers that survive a reload of the incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import msgspec

from alarmdesk.domain import commands as c
from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.escalation import EscalationSpec
from alarmdesk.domain.events import EventType
from alarmdesk.domain.incident import Status
from alarmdesk.domain.signal import Location, Signal, SourceKind
from alarmdesk.domain.taxonomy import Taxonomy, default_types
from alarmdesk.domain.units import Desk, Unit
from alarmdesk.pipeline import Pipeline
from alarmdesk.store.repository import incident_from, incident_row

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
EQUIPMENT = frozenset({HarmCategory.EQUIPMENT})
# Only the fire desk takes fire alarms; the others exist to be escalated to.
DESKS = [
    Desk("fire", "Fire", categories=frozenset({HarmCategory.FIRE})),
    Desk("sup", "Supervisor", categories=EQUIPMENT),
    Desk("alarms", "Alarms", categories=EQUIPMENT),
]
POLICY = {
    "id": "fire",
    "match": {"desks": ["fire"]},
    "steps": [
        {"after_seconds": 60},
        {"after_seconds": 60, "add_desks": ["sup"]},
        {"after_seconds": 120, "raise_priority": True, "alert": False},
    ],
    "on_scene_minutes": 10,
}
_ids = count(1)


def pipeline(*policies: dict[str, object]) -> Pipeline:
    specs = msgspec.convert(list(policies) or [POLICY], list[EscalationSpec])
    return Pipeline(
        Taxonomy(default_types()),
        DESKS,
        [Unit(id="E1", kind="engine")],
        fallback_desk="fire",
        policies=specs,
    )


def fire_alarm(p: Pipeline, at: datetime = T0) -> int:
    n = next(_ids)
    result = p.ingest(
        Signal(
            id=n,
            idempotency_key=f"k{n}",
            content_digest="d",
            received_at=at,
            source_kind=SourceKind.EQUIPMENT,
            source_id=f"panel-{n}",
            type_code="ALRF",
            occurred_at=at,
            location=Location(lat=52.0 + n / 100, lon=5.0),
            summary="",
            payload={},
        )
    )
    assert result.incident_id is not None
    return result.incident_id


def steps(p: Pipeline, at: datetime) -> list[dict[str, object]]:
    return [ev.detail for ev in p.fire_due(at).events if ev.type is EventType.ESCALATED]


def test_unacknowledged_steps_fire_in_order_each_once_and_do_what_they_say():
    p = pipeline()
    inc_id = fire_alarm(p)
    inc = p.incidents[inc_id]
    assert inc.escalation is not None and inc.escalation.view()["thresholds"] == [60, 120, 240]
    assert steps(p, T0 + timedelta(seconds=59)) == []
    first = steps(p, T0 + timedelta(seconds=60))
    assert [(d["step"], d["alert"]) for d in first] == [(1, True)]
    assert steps(p, T0 + timedelta(seconds=60)) == []  # never twice
    second = p.fire_due(T0 + timedelta(seconds=120))
    [ev] = second.events
    assert ev.detail["add_desks"] == ["sup"] and inc.desks == ("fire", "sup")
    assert set(ev.desks) == {"fire", "sup"}
    priority = inc.priority
    [third] = steps(p, T0 + timedelta(seconds=240))
    assert third["priority"] == {"from": priority, "to": priority - 1} and third["alert"] is False
    assert steps(p, T0 + timedelta(hours=1)) == []  # no step left
    assert inc.escalation.view()["step"] == 3


def test_acknowledging_stops_the_steps():
    p = pipeline()
    inc_id = fire_alarm(p)
    p.handle(c.Acknowledge(inc_id, "op"), T0 + timedelta(seconds=30))
    assert steps(p, T0 + timedelta(hours=1)) == []
    assert p.incidents[inc_id].escalation.view()["due_at"] is None


def test_steps_that_fell_due_while_down_fire_at_once_in_order():
    p = pipeline()
    fire_alarm(p)
    assert [d["step"] for d in steps(p, T0 + timedelta(hours=2))] == [1, 2, 3]


def test_dispatched_without_a_unit_on_scene_in_time_is_flagged_once():
    p = pipeline()
    inc_id = fire_alarm(p)
    p.handle(c.Acknowledge(inc_id, "op"), T0 + timedelta(seconds=10))
    p.handle(c.Dispatch(inc_id, "op", units=("E1",)), T0 + timedelta(seconds=20))
    assert steps(p, T0 + timedelta(minutes=10)) == []
    [flag] = steps(p, T0 + timedelta(minutes=10, seconds=20))
    assert flag["overdue"] == "on_scene"
    assert p.incidents[inc_id].escalation.overdue
    assert steps(p, T0 + timedelta(hours=1)) == []


def test_a_unit_on_scene_in_time_is_not_flagged():
    p = pipeline()
    inc_id = fire_alarm(p)
    p.handle(c.Acknowledge(inc_id, "op"), T0)
    p.handle(c.Dispatch(inc_id, "op", units=("E1",)), T0)
    p.handle(c.Arrive(inc_id, "op", units=("E1",)), T0 + timedelta(minutes=5))
    assert p.incidents[inc_id].status is Status.ON_SCENE
    assert steps(p, T0 + timedelta(hours=1)) == []


def test_the_policy_is_frozen_when_the_incident_opens():
    p = pipeline()
    inc_id = fire_alarm(p)
    p.policies = tuple(
        msgspec.convert([{**POLICY, "steps": [{"after_seconds": 5}]}], list[EscalationSpec])
    )
    assert steps(p, T0 + timedelta(seconds=30)) == []  # the frozen policy: 60 s
    assert len(steps(p, T0 + timedelta(seconds=60))) == 1
    assert p.incidents[inc_id].escalation.policy.steps[0].after_seconds == 60


def test_an_incident_no_policy_matches_never_escalates():
    p = pipeline({**POLICY, "match": {"desks": ["alarms"]}})
    inc_id = fire_alarm(p)
    assert p.incidents[inc_id].escalation is None
    assert steps(p, T0 + timedelta(hours=1)) == []


def test_timers_survive_storing_and_restoring_the_incident():
    p = pipeline()
    inc_id = fire_alarm(p)
    steps(p, T0 + timedelta(seconds=60))
    row = incident_row(p.incidents[inc_id])
    fresh = pipeline()
    fresh.restore([incident_from(row)])
    assert steps(fresh, T0 + timedelta(seconds=119)) == []
    assert [d["step"] for d in steps(fresh, T0 + timedelta(seconds=120))] == [2]


def test_reclassifying_keeps_what_escalation_did():
    """The steps that fired added the supervisor's desk and raised the priority; routing the
    new type afresh dropped the desk while nobody had acknowledged the incident, and the
    fired steps never added it back."""
    p = pipeline()
    inc_id = fire_alarm(p)  # ALRF, priority 2
    inc = p.incidents[inc_id]
    steps(p, T0 + timedelta(seconds=240))  # all three: +sup, priority 2 -> 1
    assert inc.desks == ("fire", "sup") and inc.priority == 1
    result = p.handle(c.Reclassify(inc_id, "op", type_code="FSMOKE"), T0 + timedelta(minutes=5))
    assert inc.type_code == "FSMOKE" and inc.desks == ("fire", "sup")
    assert inc.priority == 1  # FSMOKE's 2, raised once as the step did
    [ev] = [e for e in result.events if e.type is EventType.RECLASSIFIED]
    assert ev.detail["priority"] == {"from": 1, "to": 1}


def test_an_unacknowledged_incident_reclassified_into_a_policy_escalates_from_then():
    """A burglar alarm (no policy: the fire desk's policy only) found to be a fire: the new
    type's policy, its first step counted from the reclassification."""
    p = pipeline()
    n = next(_ids)
    opened = p.ingest(
        Signal(
            id=n,
            idempotency_key=f"k{n}",
            content_digest="d",
            received_at=T0,
            source_kind=SourceKind.EQUIPMENT,
            source_id=f"panel-{n}",
            type_code="EQTRBL",
            occurred_at=T0,
            location=Location(lat=53.0, lon=5.0),
            summary="",
            payload={},
        )
    )
    inc = p.incidents[opened.incident_id]
    assert inc.escalation is None
    later = T0 + timedelta(minutes=10)
    result = p.handle(c.Reclassify(inc.id, "op", type_code="ALRF"), later)
    [ev] = [e for e in result.events if e.type is EventType.RECLASSIFIED]
    assert ev.detail["escalation"] == "fire" and inc.escalation is not None
    assert steps(p, later + timedelta(seconds=59)) == []
    assert [d["step"] for d in steps(p, later + timedelta(seconds=60))] == [1]
