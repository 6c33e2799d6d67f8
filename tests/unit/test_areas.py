"""Areas given as input (a desk's jurisdiction, a routing rule's or a silence's area):
``geo.checked_area`` refuses what would route wrongly or fail later, with the field and a
message that says what to write instead. Areas stored before are read as they were."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.geo import Area, area_of, checked_area
from alarmdesk.domain.silences import SilenceMatch, SilenceSpec, compile_silence


def polygon(*ring: list[Any]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [list(ring)]}


def box(west: Any, south: Any, east: Any, north: Any) -> dict[str, Any]:
    return polygon([west, south], [east, south], [east, north], [west, north], [west, south])


SF = box(-122.52, 37.70, -122.35, 37.83)
# Fiji's Taveuni lies on the 180th meridian: its area, cut there, as RFC 7946 (3.1.9) asks.
TAVEUNI = {
    "type": "MultiPolygon",
    "coordinates": [
        [[[179.8, -16.6], [180.0, -16.6], [180.0, -16.7], [179.8, -16.7], [179.8, -16.6]]],
        [[[-180.0, -16.6], [-179.9, -16.6], [-179.9, -16.7], [-180.0, -16.7], [-180.0, -16.6]]],
    ],
}
WORLD = polygon([-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90])


def refusal(geojson: Any) -> str:
    with pytest.raises(InvalidField) as refused:
        checked_area(geojson, "jurisdiction")
    assert (refused.value.code, refused.value.field) == ("invalid_value", "jurisdiction")
    return refused.value.message


def test_an_area_as_geojson_writes_it_is_taken() -> None:
    assert checked_area(SF, "jurisdiction").contains(37.77, -122.42)
    taveuni = checked_area(TAVEUNI, "jurisdiction")
    assert taveuni.contains(-16.65, 179.9) and taveuni.contains(-16.65, -179.95)
    assert not taveuni.contains(-16.65, 0.0)
    world = checked_area(WORLD, "area")  # its edges run along the map's border, not across it
    assert world.contains(51.5, -0.1) and world.contains(-16.65, 179.9)


def test_text_for_a_number_is_refused_before_it_can_fail_every_located_alarm() -> None:
    # Taken before, it made contains() raise a TypeError: routing any located signal failed.
    quoted = polygon(["-122.5", "37.7"], ["-122.3", "37.7"], ["-122.3", "37.8"], ["-122.5", "37.7"])
    assert "a number" in refusal(quoted) and "'-122.5'" in refusal(quoted)
    for bad in (True, None, float("nan"), float("inf"), [1.0]):
        ring = [[-122.5, 37.7], [-122.3, 37.7], [-122.3, 37.8], [bad, 37.7], [-122.5, 37.7]]
        refusal(polygon(*ring))
    hole = {"type": "Polygon", "coordinates": [SF["coordinates"][0], [["x", 1], [2, 2], [3, 3]]]}
    refusal(hole)  # a hole's positions too
    refusal(polygon([-122.5], [-122.3, 37.7], [-122.3, 37.8], [-122.5, 37.7]))


def test_latitude_first_is_refused_with_the_order_geojson_wants() -> None:
    swapped = polygon([37.70, -122.52], [37.70, -122.35], [37.83, -122.35], [37.70, -122.52])
    message = refusal(swapped)
    assert "latitude -122.52" in message and "[longitude, latitude]" in message
    assert "longitude 200" in refusal(polygon([200, 1], [201, 1], [201, 2], [200, 1]))


def test_an_area_drawn_across_the_180th_meridian_is_refused_with_how_to_cut_it() -> None:
    # Read as drawn, this ring of Taveuni is the rest of the world: Taveuni's alarms would
    # reach none of its desks, and every other place's would reach it.
    across = box(178.0, -17.0, -179.0, -16.0)
    assert not Area(across).contains(-16.5, 179.9) and Area(across).contains(-16.5, 0.0)
    message = refusal(across)
    assert "180th meridian" in message and "MultiPolygon" in message and "178" in message
    holed = {
        "type": "MultiPolygon",
        "coordinates": [
            TAVEUNI["coordinates"][0],
            [
                SF["coordinates"][0],
                [[-122.5, 37.75], [170.0, 37.76], [-122.4, 37.8], [-122.5, 37.75]],
            ],
        ],
    }
    refusal(holed)  # a hole's edges and a second polygon's too


def test_an_area_read_back_from_the_store_is_taken_as_stored() -> None:
    """What was stored before these checks loads as it did (a writer must start, a silence
    must hold); numbers written as text are read as numbers, so routing cannot fail on them."""
    quoted = box("-122.5", "37.7", "-122.3", "37.8")
    assert Area(quoted).contains(37.72, -122.4)
    assert area_of(quoted, "area").contains(37.72, -122.4)
    across = box(178.0, -17.0, -179.0, -16.0)
    assert area_of(across, "area").contains(-16.5, 0.0)  # as it routed before
    spec = SilenceSpec(
        reason="works at the depot",
        match=SilenceMatch(area=across),
        ends_at=datetime(2026, 12, 6, tzinfo=UTC),
    )
    stored = compile_silence(7, spec, datetime(2026, 12, 5, tzinfo=UTC), ["fire"])
    assert stored.area is not None
