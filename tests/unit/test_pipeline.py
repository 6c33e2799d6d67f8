"""Classify, correlate and route: pure functions over in-memory state, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import msgspec
import pytest

from alarmdesk.domain import commands as c
from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.events import EventType
from alarmdesk.domain.geo import Area, haversine_m
from alarmdesk.domain.incident import incident_dict
from alarmdesk.domain.routing import RouteSpec, compile_routes
from alarmdesk.domain.signal import Location, Signal, SourceKind
from alarmdesk.domain.taxonomy import UNCLASSIFIED, Taxonomy, default_types
from alarmdesk.domain.units import Desk, Unit
from alarmdesk.pipeline import CorrelationSettings, Pipeline
from alarmdesk.pipeline.engine import classify
from alarmdesk.store.repository import incident_from, incident_row

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
TAXONOMY = Taxonomy(default_types())
WEST = Area(
    {"type": "Polygon", "coordinates": [[[-10, 40], [0, 40], [0, 60], [-10, 60], [-10, 40]]]}
)
EAST_GEOJSON = {"type": "Polygon", "coordinates": [[[0, 40], [10, 40], [10, 60], [0, 60], [0, 40]]]}
EAST = Area(EAST_GEOJSON)
DESKS = [
    Desk("west", "West", area=WEST),
    Desk("east", "East", area=EAST),
    Desk(
        "alarms",
        "Alarms",
        categories=frozenset({HarmCategory.FIRE, HarmCategory.PROPERTY}),
        source_kinds=frozenset({SourceKind.EQUIPMENT}),
    ),
]
_ids = count(1)


def sig(
    kind: SourceKind = SourceKind.CALL,
    code: str = "FSTRU",
    *,
    lat: float | None = 52.0,
    lon: float | None = 4.0,
    at: datetime = T0,
    source: str = "ct-1",
    zone: str | None = None,
    address: str | None = None,
    payload: dict | None = None,
) -> Signal:
    loc = Location(lat=lat, lon=lon, zone=zone, address=address)
    return Signal(
        id=next(_ids),
        idempotency_key=f"k{next(_ids)}",
        content_digest="f",
        received_at=at,
        source_kind=kind,
        source_id=source,
        type_code=code,
        occurred_at=at,
        location=loc,
        summary="",
        payload=payload or {},
    )


def pipeline(**kw) -> Pipeline:
    return Pipeline(TAXONOMY, DESKS, [Unit(id="E1", kind="engine")], fallback_desk="west", **kw)


def metres_north(lat: float, m: float) -> float:
    return lat + m / 111_320


# -- classify ---------------------------------------------------------------------------------


def test_a_known_code_gets_its_category_and_priority() -> None:
    t = classify(TAXONOMY, sig(code="fstru"))
    assert (t.code, t.category, t.priority) == ("FSTRU", HarmCategory.FIRE, 1)


def test_an_unknown_code_opens_an_unclassified_incident_instead_of_being_dropped() -> None:
    p = pipeline()
    result = p.ingest(sig(code="ZZ-UNKNOWN"))
    inc = p.incidents[result.incident_id]
    assert inc.type_code == UNCLASSIFIED and inc.category is HarmCategory.OTHER_HARM
    assert result.events[0].type is EventType.OPENED
    assert result.events[0].detail["unclassified_code"] == "ZZ-UNKNOWN"


def test_the_default_taxonomy_has_no_lawful_activity_types() -> None:
    for code in ("CIVDIS", "CURFEW", "ALIEN"):
        assert code not in TAXONOMY


# -- correlate ----------------------------------------------------------------------------------


def test_repeated_panel_alarm_updates_the_open_incident() -> None:
    p = pipeline()
    first = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="3"))
    again = p.ingest(
        sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="3", at=T0 + timedelta(hours=3))
    )
    assert again.incident_id == first.incident_id
    assert again.events[0].type is EventType.UPDATED
    assert p.incidents[first.incident_id].signal_count == 2


def test_a_fire_alarm_in_another_zone_of_the_same_panel_is_another_incident() -> None:
    p = pipeline()
    a = p.ingest(sig(SourceKind.EQUIPMENT, "ALRF", source="panel-1", zone="3"))
    b = p.ingest(sig(SourceKind.EQUIPMENT, "ALRF", source="panel-1", zone="4"))
    assert a.incident_id != b.incident_id


def test_a_second_zone_of_an_intruder_panel_confirms_its_alarm_and_raises_it() -> None:
    p = pipeline(settings=CorrelationSettings(confirmation=timedelta(minutes=30)))
    a = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="3"))
    inc = p.incidents[a.incident_id]
    assert not inc.confirmed and inc.priority == 2
    again = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="3"))
    assert again.incident_id == a.incident_id and not inc.confirmed  # the same detector
    b = p.ingest(
        sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="7", at=T0 + timedelta(minutes=5))
    )
    assert b.incident_id == a.incident_id
    assert inc.confirmed and inc.priority == 1
    assert b.events[0].detail["confirmed_by"] == "7"
    assert b.events[0].snapshot["confirmed"] is True


def test_a_second_zone_after_the_confirmation_time_folds_in_without_confirming() -> None:
    p = pipeline(settings=CorrelationSettings(confirmation=timedelta(minutes=30)))
    a = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="3"))
    late = T0 + timedelta(minutes=31)
    b = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="7", at=late))
    assert b.incident_id == a.incident_id
    assert not p.incidents[a.incident_id].confirmed


def test_confirmation_survives_a_restart_of_the_pipeline() -> None:
    p = pipeline()
    a = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-9", zone="1"))
    fresh = pipeline()
    fresh.restore([incident_from(incident_row(p.incidents[a.incident_id]))])
    b = fresh.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-9", zone="2"))
    assert b.incident_id == a.incident_id and fresh.incidents[a.incident_id].confirmed


def test_calls_within_the_radius_and_window_fold_into_one_incident() -> None:
    p = pipeline(settings=CorrelationSettings(radius_m=200, window=timedelta(minutes=30)))
    a = p.ingest(sig(code="FSTRU"))
    near = metres_north(52.0, 150)
    assert haversine_m(52.0, 4.0, near, 4.0) == pytest.approx(150, rel=0.01)
    b = p.ingest(sig(code="FAPT", lat=near, at=T0 + timedelta(minutes=20)))  # same category
    assert b.incident_id == a.incident_id


@pytest.mark.parametrize(
    ("metres", "minutes", "code", "same"),
    [
        (150, 20, "FSTRU", True),
        (250, 20, "FSTRU", False),  # too far
        (150, 40, "FSTRU", False),  # too late
        (150, 20, "CARDIAC", False),  # another category
    ],
)
def test_call_correlation_respects_distance_time_and_category(metres, minutes, code, same) -> None:
    p = pipeline(settings=CorrelationSettings(radius_m=200, window=timedelta(minutes=30)))
    a = p.ingest(sig(code="FSTRU"))
    b = p.ingest(sig(code=code, lat=metres_north(52.0, metres), at=T0 + timedelta(minutes=minutes)))
    assert (b.incident_id == a.incident_id) is same


def test_a_resolved_incident_no_longer_absorbs_repeats() -> None:
    p = pipeline()
    a = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="1"))
    p.handle(c.Resolve(a.incident_id, "op", disposition="false_alarm"), T0)
    b = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="1"))
    assert b.incident_id != a.incident_id


def test_calls_without_coordinates_correlate_by_address() -> None:
    p = pipeline()
    a = p.ingest(sig(lat=None, lon=None, address="Dam 1, Amsterdam"))
    b = p.ingest(sig(lat=None, lon=None, address="  dam 1,   AMSTERDAM "))
    assert a.incident_id == b.incident_id


def test_a_more_urgent_repeat_raises_the_incident_priority() -> None:
    p = pipeline()
    a = p.ingest(sig(code="FSMOKE"))  # smoke report
    p.ingest(sig(code="FSTRU", lat=metres_north(52.0, 50)))  # structure fire, P1
    assert p.incidents[a.incident_id].priority == 1


def test_correlation_index_finds_matches_among_many_open_incidents() -> None:
    p = pipeline()
    for i in range(2000):
        p.ingest(sig(code="FSTRU", lat=40.5 + (i % 50) * 0.01, lon=-9.5 + (i // 50) * 0.01))
    target = p.ingest(sig(code="FSTRU", lat=40.5 + 0.0001, lon=-9.5))
    assert p.incidents[target.incident_id].signal_count == 2


# -- route ------------------------------------------------------------------------------------


def test_an_incident_goes_to_the_desk_whose_jurisdiction_holds_it() -> None:
    p = pipeline()
    west = p.incidents[p.ingest(sig(lat=50.0, lon=-5.0)).incident_id]
    east = p.incidents[p.ingest(sig(lat=50.0, lon=5.0)).incident_id]
    assert west.desks == ("west",) and east.desks == ("east",)


def test_equipment_alarms_also_reach_the_alarm_desk_for_its_categories() -> None:
    p = pipeline()
    burglary = p.incidents[
        p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", lat=50.0, lon=5.0, source="p")).incident_id
    ]
    medical = p.incidents[
        p.ingest(sig(SourceKind.EQUIPMENT, "ALRMED", lat=50.0, lon=5.0, source="p2")).incident_id
    ]
    assert burglary.desks == ("east", "alarms")
    assert medical.desks == ("east",)


def test_an_incident_no_desk_claims_goes_to_the_fallback_desk() -> None:
    p = pipeline()
    inc = p.incidents[p.ingest(sig(lat=-30.0, lon=100.0)).incident_id]
    assert inc.desks == ("west",)


def test_an_incident_without_coordinates_reaches_every_desk_of_its_category() -> None:
    p = pipeline()
    inc = p.incidents[p.ingest(sig(lat=None, lon=None)).incident_id]
    assert inc.desks == ("west", "east")


def test_reclassifying_reroutes_and_tells_the_desks_that_lose_the_incident() -> None:
    p = pipeline()
    inc_id = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", lat=50.0, lon=5.0, source="p")).incident_id
    result = p.handle(c.Reclassify(inc_id, "op", type_code="ALRMED"), T0)
    ev = result.events[0]
    assert ev.type is EventType.RECLASSIFIED
    assert p.incidents[inc_id].desks == ("east",)
    assert set(ev.desks) == {"east", "alarms"}


def test_a_reclassified_feed_alert_still_folds_its_repeats_from_the_same_zone() -> None:
    p = pipeline()
    first = sig(SourceKind.FEED, "HAZMAT", source="cap:nws", zone="Z1")
    inc_id = p.ingest(first).incident_id
    p.handle(c.Reclassify(inc_id, "op", type_code="FSTRU"), T0)
    again = p.ingest(sig(SourceKind.FEED, "HAZMAT", source="cap:nws", zone="Z1"))
    other_zone = p.ingest(sig(SourceKind.FEED, "HAZMAT", source="cap:nws", zone="Z2"))
    assert again.incident_id == inc_id
    assert other_zone.incident_id != inc_id


def test_a_reclassified_panel_alarm_takes_up_the_new_category_from_the_same_zone() -> None:
    p = pipeline()
    burglary = sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-9", zone="5")
    inc_id = p.ingest(burglary).incident_id
    p.handle(c.Reclassify(inc_id, "op", type_code="FSTRU"), T0)
    fire = p.ingest(sig(SourceKind.EQUIPMENT, "FSTRU", source="panel-9", zone="5"))
    assert fire.incident_id == inc_id


def test_area_respects_holes_in_a_polygon() -> None:
    ring = [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]]
    hole = [[4, 4], [6, 4], [6, 6], [4, 6], [4, 4]]
    area = Area({"type": "Polygon", "coordinates": [ring, hole]})
    assert area.contains(2, 2) and not area.contains(5, 5)


# -- commands and units -------------------------------------------------------------------------


def test_dispatch_commits_the_unit_and_resolve_frees_it() -> None:
    p = pipeline()
    inc_id = p.ingest(sig()).incident_id
    p.handle(c.Dispatch(inc_id, "op", units=("E1",)), T0)
    assert p.units["E1"].incident_id == inc_id
    other = p.ingest(sig(lat=45.0, lon=-5.0)).incident_id
    with pytest.raises(Exception, match="E1 is dispatched") as exc:
        p.handle(c.Dispatch(other, "op", units=("E1",)), T0)
    assert getattr(exc.value, "code", None) == "unit_unavailable"
    p.handle(c.Resolve(inc_id, "op", disposition="handled"), T0)
    assert p.units["E1"].incident_id is None


def test_a_stale_version_is_refused() -> None:
    p = pipeline()
    inc_id = p.ingest(sig()).incident_id
    p.handle(c.Acknowledge(inc_id, "op-a", expected_version=1), T0)
    with pytest.raises(Exception, match="changed") as exc:
        p.handle(c.AddNote(inc_id, "op-b", expected_version=1, text="hi"), T0)
    assert getattr(exc.value, "code", None) == "version_conflict"


# -- device condition and recorded-only signals -----------------------------------------------


def restore_of(s: Signal) -> Signal:
    import msgspec

    return msgspec.structs.replace(s, id=next(_ids), condition="restored")


def test_a_restore_marks_the_open_incident_restored_without_closing_it() -> None:
    p = pipeline()
    alarm = sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="3")
    inc_id = p.ingest(alarm).incident_id
    result = p.ingest(restore_of(alarm))
    assert result.incident_id == inc_id
    inc = p.incidents[inc_id]
    assert inc.condition.value == "restored" and inc.status.value == "new"
    assert result.events[0].detail["condition"] == "restored"
    again = p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="3"))
    assert again.incident_id == inc_id and inc.condition.value == "active"


def test_a_restore_without_an_open_incident_opens_nothing() -> None:
    p = pipeline()
    result = p.ingest(restore_of(sig(SourceKind.EQUIPMENT, "ALRBS", source="panel-1", zone="3")))
    assert result.incident_id is None and not result.events and not p.incidents


def test_a_record_only_signal_opens_nothing() -> None:
    import msgspec

    p = pipeline()
    test_signal = msgspec.structs.replace(sig(SourceKind.EQUIPMENT, "EQTEST"), record_only=True)
    result = p.ingest(test_signal)
    assert result.incident_id is None and not p.incidents


def test_incidents_quiet_for_two_windows_leave_the_correlation_grid() -> None:
    p = pipeline(settings=CorrelationSettings(radius_m=200, window=timedelta(minutes=30)))
    old = p.ingest(sig(code="FSTRU")).incident_id
    assert len(p.index) == 1
    later = p.ingest(sig(code="FSTRU", at=T0 + timedelta(minutes=61)))
    assert later.incident_id != old
    assert len(p.index) == 1, "the stale incident left the grid, the new one is in it"
    assert p.incidents[old].is_open, "it is still open for the operators"


# -- routing rules ------------------------------------------------------------------------------


def test_without_routing_rules_the_desks_filters_route_and_the_incident_says_so() -> None:
    p = pipeline()
    inc = p.incidents[p.ingest(sig(SourceKind.EQUIPMENT, "ALRBS", lat=52.0, lon=5.0)).incident_id]
    assert inc.desks == ("east", "alarms") and inc.routed_by == ("desks",)
    lost = p.incidents[p.ingest(sig(lat=None, lon=None, code="ALRMED")).incident_id]
    assert lost.routed_by == ("desks",)  # no point: every desk of the category sees it


def test_routing_rules_route_a_new_incident_record_the_rule_and_reroute_on_reclassify() -> None:
    specs = msgspec.convert(
        [
            {"id": "fire", "match": {"categories": ["fire"]}, "desks": ["alarms"]},
            {"id": "east", "match": {"area": EAST_GEOJSON}, "desks": ["east"]},
        ],
        list[RouteSpec],
    )
    p = pipeline(routes=compile_routes(specs))
    inc = p.incidents[p.ingest(sig(code="FSTRU", lat=52.0, lon=5.0)).incident_id]
    assert (inc.desks, inc.routed_by) == (("alarms",), ("fire",))
    assert incident_dict(inc)["routed_by"] == ["fire"]
    p.handle(c.Reclassify(inc.id, "operator", type_code="ALRMED"), T0)
    assert (inc.desks, inc.routed_by) == (("east",), ("east",))
    west = p.incidents[p.ingest(sig(code="ALRMED", lat=52.0, lon=-5.0)).incident_id]
    assert (west.desks, west.routed_by) == (("west",), ("fallback",))


# -- the call-taker's choice --------------------------------------------------------------------


def test_a_call_joins_the_incident_the_call_taker_chose_or_opens_a_new_one() -> None:
    p = pipeline(settings=CorrelationSettings(radius_m=200, window=timedelta(minutes=30)))
    a = p.ingest(sig(code="FSTRU"))
    near = metres_north(52.0, 100)
    folded = p.ingest(sig(code="FSTRU", lat=near))
    assert folded.incident_id == a.incident_id  # no choice: the rules fold it
    apart = p.ingest(msgspec.structs.replace(sig(code="FSTRU", lat=near), separate=True))
    assert apart.incident_id != a.incident_id
    far = metres_north(52.0, 5000)
    joined = p.ingest(msgspec.structs.replace(sig(code="FSTRU", lat=far), join=a.incident_id))
    assert joined.incident_id == a.incident_id  # chosen, although far beyond the radius
    p.handle(c.Cancel(a.incident_id, "op", reason="duplicate"), T0)
    late = p.ingest(msgspec.structs.replace(sig(code="FSTRU"), join=a.incident_id))
    assert late.incident_id not in (None, a.incident_id)  # closed meanwhile: a new one
