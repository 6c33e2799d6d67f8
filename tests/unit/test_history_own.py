"""Each unit's times read off an incident's timeline (domain/history/own.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alarmdesk.domain.history.own import unit_responses

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_unit_sent_later_has_its_own_dispatch_and_a_clear_reported_twice_counts_last() -> None:
    timeline = [
        ("incident.opened", at(0), {}),
        ("incident.transitioned", at(60), {"action": "dispatch", "units": ["E1"]}),
        ("incident.unit_status", at(90), {"unit": "E1", "status": "en_route"}),
        ("incident.transitioned", at(300), {"action": "arrive", "units": ["E1"]}),
        ("incident.units_assigned", at(320), {"units": ["T1"]}),  # a truck sent later
        ("incident.unit_status", at(330), {"unit": "T1", "status": "en_route"}),
        ("incident.unit_status", at(400), {"unit": "T1", "status": "on_scene"}),
        ("incident.updated", at(401), {"action": "arrive", "units": ["T1"]}),  # not earlier
        ("incident.unit_status", at(500), {"unit": "T1", "status": "returning"}),
        ("incident.unit_status", at(520), {"unit": "T1", "status": "available"}),
        ("incident.unit_status", at(530), {"unit": "X9", "status": "en_route"}),  # never sent
        ("incident.noted", at(540), {"text": "E1 and T1 on scene"}),
    ]
    e1, t1 = unit_responses(timeline, ended=at(900), kinds={"E1": "engine", "T1": "truck"})
    assert (e1.unit_id, e1.kind) == ("E1", "engine")
    assert (e1.dispatched, e1.en_route, e1.on_scene, e1.cleared) == (
        at(60),
        at(90),
        at(300),
        at(900),
    )
    assert (t1.unit_id, t1.kind) == ("T1", "truck")
    assert (t1.dispatched, t1.en_route, t1.on_scene, t1.cleared) == (
        at(320),
        at(330),
        at(400),
        at(520),
    )


def test_no_dispatch_no_units_and_an_unknown_kind_is_none() -> None:
    assert unit_responses([("incident.opened", at(0), None)], ended=at(10), kinds={}) == ()
    (unit,) = unit_responses(
        [("incident.transitioned", at(5), {"action": "dispatch", "units": ["Z1"]})],
        ended=None,
        kinds={},
    )
    assert unit.kind is None and unit.cleared is None
