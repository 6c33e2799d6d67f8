"""Procedures as checklists: mandatory steps (``!``), ticks with who and when, resolve refused
while a mandatory step is open unless overridden with a reason, a new checklist on
reclassification, and the checklist kept across storing and restoring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alarmdesk.domain import commands as c
from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import Conflict, InvalidField, SopIncomplete
from alarmdesk.domain.events import EventType
from alarmdesk.domain.procedure import Step, steps_of
from alarmdesk.domain.signal import Location, Signal, SourceKind
from alarmdesk.domain.taxonomy import IncidentType, Taxonomy, default_types
from alarmdesk.domain.units import Desk
from alarmdesk.pipeline import Pipeline
from alarmdesk.store.repository import incident_from, incident_row

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
INTRUDER = IncidentType(
    code="ARCINT",
    name="Intruder alarm",
    category=HarmCategory.PROPERTY,
    priority=2,
    sop=("!Call keyholder", "Check other zones", "!Verify by video"),
    origin="local",
)


def pipeline() -> Pipeline:
    return Pipeline(Taxonomy([*default_types(), INTRUDER]), [Desk("alarms", "Alarms")])


def open_incident(p: Pipeline, code: str = "ARCINT") -> int:
    result = p.ingest(
        Signal(
            id=1,
            idempotency_key="k1",
            content_digest="d",
            received_at=T0,
            source_kind=SourceKind.EQUIPMENT,
            source_id="panel-1",
            type_code=code,
            occurred_at=T0,
            location=Location(lat=52.0, lon=5.0),
            summary="",
            payload={},
        )
    )
    assert result.incident_id is not None
    return result.incident_id


def test_a_leading_bang_marks_a_mandatory_step():
    assert steps_of(["!Call keyholder", " Check zones ", "!", ""]) == (
        Step("Call keyholder", mandatory=True),
        Step("Check zones"),
    )
    # the shipped taxonomy marks none: which steps are mandatory is each centre's decision
    assert not any(s.mandatory for t in default_types() for s in steps_of(t.sop))


def test_resolve_is_refused_while_a_mandatory_step_is_open_and_allowed_when_done():
    p = pipeline()
    inc_id = open_incident(p)
    resolve = c.Resolve(inc_id, "op", disposition="handled")
    with pytest.raises(SopIncomplete) as info:
        p.handle(resolve, T0)
    assert info.value.status == 409 and "Call keyholder" in info.value.message
    result = p.handle(c.CompleteStep(inc_id, "op", step=0), T0 + timedelta(seconds=30))
    [ev] = result.events
    assert ev.type is EventType.STEP_DONE and ev.detail == {"step": 0, "text": "Call keyholder"}
    view = ev.snapshot["procedure"]
    assert view[0]["done_by"] == "op" and view[0]["done_at"] == "2026-12-03T09:00:30+00:00"
    with pytest.raises(SopIncomplete):
        p.handle(resolve, T0)
    p.handle(c.CompleteStep(inc_id, "op2", step=2), T0)
    p.handle(resolve, T0)  # step 1 is not mandatory


def test_the_refusal_numbers_the_open_steps_as_the_checklist_shows_them():
    p = pipeline()
    inc_id = open_incident(p)
    with pytest.raises(SopIncomplete) as info:
        p.handle(c.Resolve(inc_id, "op", disposition="handled"), T0)
    # The console lists steps from 1 (an <ol>); the API's step numbers stay 0-based.
    assert "1. Call keyholder; 3. Verify by video" in info.value.message


def test_a_supervisor_override_resolves_with_the_reason_in_the_event():
    p = pipeline()
    inc_id = open_incident(p)
    result = p.handle(
        c.Resolve(inc_id, "sup", disposition="handled", override_reason="keyholder unreachable"),
        T0,
    )
    [ev] = [e for e in result.events if e.type is EventType.TRANSITIONED]
    assert ev.detail["sop_override"] == {"reason": "keyholder unreachable", "open": [0, 2]}


def test_a_step_is_ticked_once_and_must_exist():
    p = pipeline()
    inc_id = open_incident(p)
    p.handle(c.CompleteStep(inc_id, "op", step=1), T0)
    with pytest.raises(Conflict):
        p.handle(c.CompleteStep(inc_id, "op", step=1), T0)
    with pytest.raises(InvalidField):
        p.handle(c.CompleteStep(inc_id, "op", step=3), T0)


def test_reclassifying_starts_the_new_types_checklist():
    p = pipeline()
    inc_id = open_incident(p)
    p.handle(c.CompleteStep(inc_id, "op", step=0), T0)
    p.handle(c.Reclassify(inc_id, "op", type_code="FSTRU"), T0)
    proc = p.incidents[inc_id].procedure
    assert proc is not None and proc.type_code == "FSTRU" and not proc.done


def test_the_checklist_survives_storing_and_restoring_the_incident():
    p = pipeline()
    inc_id = open_incident(p)
    p.handle(c.CompleteStep(inc_id, "op", step=0), T0)
    restored = incident_from(incident_row(p.incidents[inc_id]))
    assert restored.procedure == p.incidents[inc_id].procedure
    assert restored.procedure is not None and restored.procedure.open_mandatory() == [2]


def test_every_event_carries_the_checklist_as_it_is_after_each_tick():
    # view() and to_json() are remembered between ticks (issue 11); each event's snapshot
    # must still show exactly the steps done by then.
    p = pipeline()
    inc_id = open_incident(p)
    seen = []
    for step, at in ((2, T0), (0, T0 + timedelta(minutes=1))):
        result = p.handle(c.CompleteStep(inc_id, f"op{step}", step=step), at)
        seen.append([(s["step"], s["done_by"]) for s in result.events[-1].snapshot["procedure"]])
    assert seen == [
        [(0, None), (1, None), (2, "op2")],
        [(0, "op0"), (1, None), (2, "op2")],
    ]
    proc = p.incidents[inc_id].procedure
    assert proc is not None
    stored = proc.to_json()
    assert stored["done"] == {
        "2": {"by": "op2", "at": T0.isoformat()},
        "0": {"by": "op0", "at": (T0 + timedelta(minutes=1)).isoformat()},
    }
    stored["type_code"] = "changed by a caller"  # a caller's copy, not the remembered one
    assert proc.to_json()["type_code"] == "ARCINT"
    assert proc.view() is not proc.view()
