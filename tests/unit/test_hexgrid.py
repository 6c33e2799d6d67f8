"""H3 cells of locations (domain/hexgrid.py)."""

from __future__ import annotations

import pytest

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.hexgrid import boundary, cell_of, check_cell, check_resolution


def test_a_location_falls_in_the_cell_of_its_resolution() -> None:
    # Market St & Van Ness, San Francisco, at resolution 8 (about 0.74 km²)
    cell = cell_of(37.7749, -122.4194, 8)
    assert cell == "8828308281fffff"
    # a point 30 m away is in the same cell; one 3 km away is not
    assert cell_of(37.7751, -122.4192, 8) == cell
    assert cell_of(37.80, -122.41, 8) != cell


@pytest.mark.parametrize(("lat", "lon"), [(None, 1.0), (1.0, None), (91.0, 0.0), (0.0, 181.0)])
def test_no_cell_without_a_location_on_the_earth(lat: float | None, lon: float | None) -> None:
    assert cell_of(lat, lon) is None


def test_the_boundary_is_a_closed_geojson_ring_around_the_location() -> None:
    ring = boundary("8828308281fffff")
    assert len(ring) == 7 and ring[0] == ring[-1]
    lons = [p[0] for p in ring]
    lats = [p[1] for p in ring]
    assert min(lons) < -122.4194 < max(lons)
    assert min(lats) < 37.7749 < max(lats)


@pytest.mark.parametrize("value", ["4", "11", "eight", "", "8.5"])
def test_a_resolution_outside_5_to_10_is_refused(value: str) -> None:
    with pytest.raises(InvalidField) as caught:
        check_resolution(value)
    assert caught.value.code == "invalid_value"


def test_a_resolution_in_range_is_taken() -> None:
    assert check_resolution(" 9 ") == 9


@pytest.mark.parametrize("value", ["zz", "8828308281fffff<script>", "\x00", "0" * 40])
def test_a_cell_that_is_not_h3_is_refused(value: str) -> None:
    with pytest.raises(InvalidField):
        check_cell(value)


def test_a_cell_is_taken_in_lower_case() -> None:
    assert check_cell("8828308281FFFFF") == "8828308281fffff"


def test_a_cell_lies_within_itself_and_its_ancestors_only() -> None:
    from alarmdesk.domain.hexgrid import resolution_of, within

    cell = "8828308281fffff"
    assert resolution_of(cell) == 8
    district = cell_of(37.7749, -122.4194, 5)
    assert district is not None and resolution_of(district) == 5
    assert within(cell, cell) and within(cell, district)
    assert not within(district, cell)  # a coarser cell is not inside a finer one
    elsewhere = cell_of(40.7128, -74.0060, 5)  # New York
    assert elsewhere is not None and not within(cell, elsewhere)
