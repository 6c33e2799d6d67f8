"""Calls per H3 cell and an interval's statistics in each (domain/heat.py's definitions, applied
record by record by tests/kpi_oracle.py; the service computes the same table with DuckDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.hexgrid import cell_of
from alarmdesk.domain.history import CallRecord, Interval
from tests.kpi_oracle import heat

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
MARKET = (37.7749, -122.4194)  # one cell at 8
NEARBY = (37.7751, -122.4192)  # 30 m away: the same cell
NORTH = (37.80, -122.41)  # 3 km away: another


def call(n: int, where: tuple[float, float] | None, on_scene: float | None) -> CallRecord:
    lat, lon = where if where else (None, None)
    return CallRecord(
        call_id=str(n),
        type_code="FSTRU",
        category=HarmCategory.FIRE,
        priority=1,
        lat=lat,
        lon=lon,
        received=T0,
        on_scene=None if on_scene is None else T0 + timedelta(seconds=on_scene),
    )


def test_calls_are_counted_per_cell_busiest_first_with_nearest_rank_percentiles() -> None:
    records = [
        *(call(i, MARKET if i % 2 else NEARBY, 60.0 * (i + 1)) for i in range(10)),
        call(10, NORTH, None),  # no unit on scene: a call of the cell, not in its figures
        call(11, NORTH, 0.0),  # on scene at the second received: left out as zero
        call(12, None, 30.0),  # no location
        call(13, (95.0, 0.0), 30.0),  # off the earth
    ]
    table = heat(records, 8, Interval.CALL_TO_ON_SCENE)
    market, north = table.cells
    assert market.cell == cell_of(*MARKET, 8) and north.cell == cell_of(*NORTH, 8)
    assert (market.calls, market.stats.count) == (10, 10)
    assert (market.stats.p50, market.stats.p90) == (300.0, 540.0)  # ranks 5 and 9 of 60…600
    assert (north.calls, north.stats.count, north.stats.p90) == (2, 0, None)
    assert (north.stats.missing, north.stats.zero) == (1, 1)
    assert (table.unlocated, table.calls) == (2, 14)


def test_equal_cells_are_ordered_by_index_and_an_empty_input_gives_nothing() -> None:
    table = heat([call(1, NORTH, 10.0), call(2, MARKET, 10.0)], 8)
    assert [c.cell for c in table.cells] == sorted(c.cell for c in table.cells)
    empty = heat([], 8)
    assert (empty.cells, empty.unlocated, empty.calls) == ((), 0, 0)


def test_an_area_keeps_only_the_calls_inside_it() -> None:
    district = cell_of(*MARKET, 7)
    assert district is not None
    records = [call(1, MARKET, 10.0), call(2, NORTH, 10.0), call(3, None, 10.0)]
    table = heat(records, 9, area=district)
    assert [c.cell for c in table.cells] == [cell_of(*MARKET, 9)]
    assert (table.unlocated, table.calls) == (0, 1)


def test_the_resolution_sets_the_cells() -> None:
    coarse = heat([call(1, MARKET, 10.0), call(2, NORTH, 10.0)], 5)
    assert [(c.cell, c.calls) for c in coarse.cells] == [(cell_of(*MARKET, 5), 2)]
