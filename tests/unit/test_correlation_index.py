"""The correlation index's grid search finds what a scan of every open incident finds: the
nearest incident of the category within the radius and the window (its latitude shortcut
and its pruning never change the answer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.geo import haversine_m
from alarmdesk.domain.incident import Incident
from alarmdesk.domain.signal import Location, Signal, SourceKind
from alarmdesk.pipeline.correlate import CorrelationIndex

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
RADIUS = 200.0
WINDOW = timedelta(minutes=30)

# Points within ~1 km of a centre, so that many fall within the radius of each other, at
# latitudes from the equator to the far north (where a degree of longitude is short), and
# far from the prime meridian (where a degree of longitude is many metres east or west).
centres = st.sampled_from(
    [
        (0.0, 10.0),
        (37.77, -122.42),
        (52.0, 4.0),
        (69.65, 18.96),
        (-33.87, 151.21),
        (64.84, -147.72),
        (-16.78, 180.0),  # Taveuni, Fiji: the 180th meridian crosses the island
        (65.5, -180.0),  # Chukotka, where longitudes wrap far from the equator
    ]
)
offsets = st.tuples(st.floats(-0.01, 0.01), st.floats(-0.02, 0.02), st.integers(0, 90))


def wrap(lon: float) -> float:
    """A longitude in [-180, 180): east of 180 is the far west."""
    return (lon + 180.0) % 360.0 - 180.0


def incident(i: int, lat: float, lon: float, minutes_ago: int) -> Incident:
    at = T0 - timedelta(minutes=minutes_ago)
    return Incident(
        id=i,
        type_code="ALS",
        category=HarmCategory.MEDICAL,
        priority=2,
        source_kind=SourceKind.CALL,
        source_id="ct-1",
        opened_at=at,
        first_seen=at,
        last_seen=at,
        location=Location(lat=lat, lon=lon),
    )


def signal(lat: float, lon: float) -> Signal:
    return Signal(
        id=1,
        idempotency_key="k",
        content_digest="f",
        received_at=T0,
        source_kind=SourceKind.CALL,
        source_id="ct-1",
        type_code="ALS",
        occurred_at=T0,
        location=Location(lat=lat, lon=lon),
        summary="",
        payload={},
    )


@settings(max_examples=300, deadline=None)
@given(centres, st.lists(offsets, max_size=40), st.lists(offsets, min_size=1, max_size=10))
@example(  # found by this test: the incident's cell was two columns from the signal's
    (37.77, -122.42), [(0.0, -0.013671875, 0)], [(0.0015817832003972472, -0.013102229683966078, 0)]
)
def test_the_grid_finds_what_a_full_scan_finds(centre, placed, probes) -> None:
    lat0, lon0 = centre
    index = CorrelationIndex(RADIUS, WINDOW)
    incidents = [
        incident(i, lat0 + dlat, wrap(lon0 + dlon), ago)
        for i, (dlat, dlon, ago) in enumerate(placed, start=1)
    ]
    for inc in incidents:
        index.add(inc)
    for dlat, dlon, _ in probes:
        lat, lon = lat0 + dlat, wrap(lon0 + dlon)
        in_reach = [
            haversine_m(lat, lon, inc.location.lat, inc.location.lon)  # type: ignore[union-attr,arg-type]
            for inc in incidents
            if inc.last_seen >= T0 - WINDOW
        ]
        nearest = min((d for d in in_reach if d <= RADIUS), default=None)
        found = index.find(signal(lat, lon), HarmCategory.MEDICAL)
        if nearest is None:
            assert found is None
        else:
            assert found is not None
            assert found.location is not None
            got = haversine_m(lat, lon, found.location.lat, found.location.lon)  # type: ignore[arg-type]
            assert got == nearest


def test_an_incident_within_the_radius_is_found_far_from_the_prime_meridian() -> None:
    """In San Francisco a degree of longitude is ~88 km and the city lies 122 degrees west:
    a grid whose east-west scale followed each point's own latitude put two points 183 m
    apart (176 m north-south) two columns apart, out of the cells searched, and the second
    call opened an incident of its own instead of joining the first."""
    index = CorrelationIndex(RADIUS, WINDOW)
    first = incident(1, 37.77, -122.433671875, 0)
    index.add(first)
    lat, lon = 37.7715817832004, -122.43310222968397
    assert first.location is not None
    assert haversine_m(lat, lon, first.location.lat, first.location.lon) < 190  # type: ignore[arg-type]
    assert index.find(signal(lat, lon), HarmCategory.MEDICAL) is first


def test_calls_on_either_side_of_the_180th_meridian_fold_into_one_incident() -> None:
    """Fiji, Tuvalu, Kiribati, Chukotka and the Aleutians have the 180th meridian in their
    streets: a call at 179.9995 east and one at 179.9995 west are 100 m apart. The grid's
    columns did not wrap, so they were never in neighbouring cells and each call opened an
    incident of its own."""
    index = CorrelationIndex(RADIUS, WINDOW)
    east = incident(1, -16.78, 179.9995, 0)
    index.add(east)
    assert haversine_m(-16.78, -179.9995, -16.78, 179.9995) < 110
    assert index.find(signal(-16.78, -179.9995), HarmCategory.MEDICAL) is east
    west = incident(2, 65.5, -179.999, 0)
    index.add(west)
    assert index.find(signal(65.5005, 179.9995), HarmCategory.MEDICAL) is west
    index.remove(east)
    assert index.find(signal(-16.78, -179.9995), HarmCategory.MEDICAL) is None
