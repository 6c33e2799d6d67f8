"""The incident state machine: allowed moves, stamped times, and no way to an invalid state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarmdesk.domain import commands as c
from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import AlarmdeskError, InvalidTransition
from alarmdesk.domain.incident import FINAL, OPEN, RULES, Action, Incident, Status, next_status
from alarmdesk.domain.signal import Location, Signal, SourceKind
from alarmdesk.domain.taxonomy import Taxonomy, default_types
from alarmdesk.domain.units import Unit, UnitStatus
from alarmdesk.pipeline import Pipeline

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
TAXONOMY = Taxonomy(default_types())


def make_incident() -> Incident:
    return Incident(
        id=1,
        type_code="FSTRU",
        category=HarmCategory.FIRE,
        priority=1,
        source_kind=SourceKind.CALL,
        source_id="ct",
        opened_at=T0,
        first_seen=T0,
        last_seen=T0,
    )


def test_the_happy_path_stamps_every_phase() -> None:
    inc = make_incident()
    for i, action in enumerate(
        [Action.ACKNOWLEDGE, Action.DISPATCH, Action.ARRIVE, Action.RESOLVE, Action.CLOSE], start=1
    ):
        inc.move(action, T0 + timedelta(minutes=i))
    assert inc.status is Status.CLOSED
    assert [
        inc.acknowledged_at,
        inc.dispatched_at,
        inc.on_scene_at,
        inc.resolved_at,
        inc.closed_at,
    ] == [T0 + timedelta(minutes=i) for i in range(1, 6)]


def test_resolving_a_new_incident_stamps_acknowledgement_too() -> None:
    inc = make_incident()
    inc.move(Action.RESOLVE, T0)
    assert inc.acknowledged_at == T0 and inc.resolved_at == T0


def test_cancel_is_allowed_from_every_open_status_and_nothing_after_final() -> None:
    for status in OPEN:
        assert next_status(status, Action.CANCEL) is Status.CANCELLED
    for status in FINAL:
        for action in Action:
            with pytest.raises(InvalidTransition):
                next_status(status, action)


def test_an_invalid_transition_names_the_expected_and_actual_status() -> None:
    with pytest.raises(InvalidTransition, match="cannot close an incident that is new") as exc:
        next_status(Status.NEW, Action.CLOSE)
    assert exc.value.code == "invalid_transition"
    assert "resolved" in exc.value.message


def test_more_units_on_scene_do_not_move_the_incident_back_to_dispatched() -> None:
    assert next_status(Status.ON_SCENE, Action.DISPATCH) is Status.ON_SCENE


def test_every_rule_leads_from_and_to_known_statuses() -> None:
    for allowed, target in RULES.values():
        assert allowed <= set(Status)
        assert target is None or target in Status


# -- property: no sequence of commands reaches an invalid state ------------------------------

UNITS = ["E1", "E2", "E3"]
command_strategy = st.one_of(
    st.builds(c.Acknowledge, incident_id=st.just(1), actor=st.just("op")),
    st.builds(
        c.Dispatch,
        incident_id=st.just(1),
        actor=st.just("op"),
        units=st.lists(st.sampled_from([*UNITS, "NOPE"]), max_size=2).map(tuple),
    ),
    st.builds(c.Arrive, incident_id=st.just(1), actor=st.just("op")),
    st.builds(
        c.AddNote,
        incident_id=st.just(1),
        actor=st.just("op"),
        text=st.sampled_from(["", "caller calm", "x" * 5000]),
    ),
    st.builds(
        c.Reclassify,
        incident_id=st.just(1),
        actor=st.just("op"),
        type_code=st.sampled_from(["FSTRU", "MVA", "NOPE", "ALRF"]),
    ),
    st.builds(
        c.Resolve,
        incident_id=st.just(1),
        actor=st.just("op"),
        disposition=st.sampled_from(["handled", "false_alarm", "bogus"]),
    ),
    st.builds(c.Close, incident_id=st.just(1), actor=st.just("op")),
    st.builds(
        c.Cancel,
        incident_id=st.just(1),
        actor=st.just("op"),
        reason=st.sampled_from(["false_alarm", "merged", "whatever"]),
    ),
    st.builds(
        c.Acknowledge,
        incident_id=st.just(1),
        actor=st.just("op"),
        expected_version=st.integers(0, 5),
    ),
)


def _signal() -> Signal:
    return Signal(
        id=1,
        idempotency_key="k",
        content_digest="f",
        received_at=T0,
        source_kind=SourceKind.CALL,
        source_id="ct",
        type_code="FSTRU",
        occurred_at=T0,
        location=Location(lat=52.0, lon=4.0),
        summary="",
        payload={},
    )


def _invariants(p: Pipeline, inc: Incident) -> None:
    assert inc.status in Status
    if inc.status is not Status.NEW and inc.status is not Status.CANCELLED:
        assert inc.acknowledged_at is not None
    if inc.status in (Status.DISPATCHED, Status.ON_SCENE):
        assert inc.dispatched_at is not None and inc.units
    if inc.status is Status.ON_SCENE:
        assert inc.on_scene_at is not None
    if inc.status in (Status.RESOLVED, Status.CLOSED):
        assert inc.resolved_at is not None and inc.disposition is not None
    if inc.status is Status.CLOSED:
        assert inc.closed_at is not None
    stamps = [
        inc.acknowledged_at,
        inc.dispatched_at,
        inc.on_scene_at,
        inc.resolved_at,
        inc.closed_at,
    ]
    present = [s for s in stamps if s is not None]
    assert present == sorted(present), "phases are stamped in order"
    # Units: busy exactly while assigned to an open incident.
    for unit in p.units.values():
        if unit.id in inc.units and inc.is_open:
            assert unit.status is not UnitStatus.AVAILABLE and unit.incident_id == inc.id
        else:
            assert unit.status is UnitStatus.AVAILABLE and unit.incident_id is None
    assert (inc.id in p.incidents) == (inc.status not in FINAL)


@settings(max_examples=300, deadline=None)
@given(st.lists(command_strategy, max_size=25))
def test_no_sequence_of_commands_reaches_an_invalid_state(cmds: list[c.Command]) -> None:
    p = Pipeline(TAXONOMY, [], [Unit(id=u, kind="engine") for u in UNITS], fallback_desk="d")
    inc = p.incidents[p.ingest(_signal()).incident_id]
    now = T0
    for cmd in cmds:
        now += timedelta(seconds=30)
        before = (
            inc.status,
            inc.version,
            inc.units,
            inc.type_code,
            {u.id: (u.status, u.incident_id) for u in p.units.values()},
        )
        try:
            result = p.handle(cmd, now)
        except AlarmdeskError:
            after = (
                inc.status,
                inc.version,
                inc.units,
                inc.type_code,
                {u.id: (u.status, u.incident_id) for u in p.units.values()},
            )
            assert after == before, "a refused command changes nothing"
        else:
            assert result.events, "every accepted command leaves a timeline entry"
            assert inc.version > before[1]
        _invariants(p, inc)
