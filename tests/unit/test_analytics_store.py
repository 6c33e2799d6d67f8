"""The analytics store's DuckDB figures against domain/kpi's definitions, group by group, on
the San Francisco week (tests/fixtures/calls) and on small made-up calls; its parts and
manifest (docs/analytics.md, "The analytics store").

The parts are written straight from the reader's call records (no database): what is
compared is the SQL path with the pure-Python one over the very same calls.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pyarrow.parquet as pq
import pytest

from alarmdesk.analytics.parts import Manifest, PartStore
from alarmdesk.analytics.queries import Analytics, Selection
from alarmdesk.analytics.rows import H3_RESOLUTIONS, Key, h3_column
from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import AnalyticsUnavailable
from alarmdesk.domain.hexgrid import cell_of
from alarmdesk.domain.history import (
    CallRecord,
    DataQuality,
    Interval,
    UnitResponse,
    load_mapping,
    read_calls_file,
)
from alarmdesk.domain.kpi import (
    NFPA_1710,
    Dimension,
    Objective,
    Period,
    percentile,
)
from tests.conftest import FIXTURES, REPO_ROOT
from tests.kpi_oracle import compliance, kpis, workload

SF_WEEK = FIXTURES / "calls" / "sf_fire_calls_2016-12-31_2017-01-07.csv"
MAPPING = REPO_ROOT / "docs" / "examples" / "sf-fire-calls.toml"
SF = ZoneInfo("America/Los_Angeles")
WEEK = Selection(
    datetime(2016, 12, 31, tzinfo=SF), datetime(2017, 1, 8, tzinfo=SF), own=False, source="sf"
)


def store_of(directory: Path, records: list[CallRecord], *, per_part: int = 1000) -> PartStore:
    """A store holding ``records`` as imported calls of source ``sf``, ``per_part`` a part."""
    parts = PartStore(directory, "test-db")
    written = []
    for n, at in enumerate(range(0, len(records), per_part), start=1):
        chunk = records[at : at + per_part]
        part = parts.write_part(n, ((Key(False, "sf", r.call_id), r) for r in chunk))
        assert part is not None
        written.append(part)
    parts.commit(Manifest("test-db", parts=tuple(written), next_part=len(written) + 1))
    return parts


def figures(parts: PartStore) -> Analytics:
    return Analytics(parts.files(parts.manifest()), threads=1)


@pytest.fixture(scope="module")
def week() -> list[CallRecord]:
    return list(read_calls_file(SF_WEEK, load_mapping(MAPPING), DataQuality()))


@pytest.fixture(scope="module")
def sf(week, tmp_path_factory) -> Analytics:
    return figures(store_of(tmp_path_factory.mktemp("sf"), week))


# -- the DuckDB path equals the pure one, group by group ---------------------------------------


@pytest.mark.parametrize(
    ("by", "period"),
    [
        ((), Period.MONTH),
        ((Dimension.STATION_AREA,), Period.MONTH),
        ((Dimension.PRIORITY,), Period.MONTH),
        ((Dimension.UNIT_KIND,), Period.MONTH),
        ((Dimension.TYPE, Dimension.PRIORITY), Period.MONTH),
        ((Dimension.HOUR,), Period.MONTH),
        ((Dimension.PERIOD,), Period.DAY),
        ((Dimension.PERIOD, Dimension.UNIT_KIND), Period.WEEK),
        ((Dimension.PERIOD,), Period.YEAR),
        ((Dimension.STATION_AREA, Dimension.UNIT_KIND, Dimension.HOUR), Period.MONTH),
        ((Dimension.H3,), Period.MONTH),
        ((Dimension.H3, Dimension.PRIORITY), Period.MONTH),
        ((Dimension.UNIT_KIND, Dimension.H3), Period.MONTH),  # kinds joined to their calls
    ],
)
def test_every_group_s_figures_equal_the_pure_computation(sf, week, by, period) -> None:
    pure = kpis(week, by, period=period, tz=SF)
    got = sf.kpis(WEEK, by, period=period, tz=SF)
    assert list(got) == list(pure)  # the same groups, in the same order
    for key, by_interval in pure.items():
        assert got[key] == by_interval, key  # count, mean, p50/p90/p99, missing/negative/zero


@pytest.mark.parametrize("resolution", H3_RESOLUTIONS)
def test_grouping_by_h3_cell_at_each_resolution_equals_the_pure_computation(
    sf, week, resolution
) -> None:
    by = (Dimension.H3,)
    pure = kpis(week, by, resolution=resolution)
    got = sf.kpis(WEEK, by, resolution=resolution)
    assert got == pure and list(got) == list(pure)


def test_nfpa_compliance_equals_the_pure_computation(sf, week) -> None:
    pure = compliance(
        week, NFPA_1710, (Dimension.STATION_AREA, Dimension.PERIOD), period=Period.YEAR, tz=SF
    )
    assert sf.compliance(WEEK, NFPA_1710, tz=SF) == pure


def test_an_objective_of_two_unit_kinds_times_the_first_of_either(sf, week) -> None:
    both = Objective(
        "first truck or engine",
        Interval.TRAVEL,
        200,
        0.8,
        unit_kinds=frozenset({"engine", "truck"}),
    )
    pure = compliance(
        week, [both], (Dimension.STATION_AREA, Dimension.PERIOD), period=Period.YEAR, tz=SF
    )
    assert sf.compliance(WEEK, [both], tz=SF) == pure


@pytest.mark.parametrize("roster", [None, {"01": 7, "02": 0, "xx": 3}])
def test_workload_equals_the_pure_computation(sf, week, roster) -> None:
    hours = 8 * 24.0
    pure = workload(week, hours, roster)
    got = sf.workload(WEEK, hours, roster)
    assert [w.station_area for w in got] == [w.station_area for w in pure]
    for g, p in zip(got, pure, strict=True):
        assert (g.calls, g.responses, g.units, g.untimed) == (
            p.calls,
            p.responses,
            p.units,
            p.untimed,
        )
        # an exact sum here, a running float sum there: equal to the last bits or nearly
        assert g.busy_hours == pytest.approx(p.busy_hours, rel=1e-12)


def test_the_selection_counts_days_in_the_zone_and_one_source(sf, week) -> None:
    day = Selection(datetime(2017, 1, 1, tzinfo=SF), datetime(2017, 1, 2, tzinfo=SF), source="sf")
    expected = [r for r in week if day.start <= r.received < day.end]
    assert sf.count(day) == len(expected) > 0
    assert sf.kpis(day) == kpis(expected)
    assert sf.count(Selection(day.start, day.end, source="other")) == 0
    assert sf.count(Selection(day.start, day.end, own=True)) == 0
    assert sf.kpis(Selection(day.start, day.end, own=True)) == {}


def test_h3_cells_are_written_at_every_resolution(sf, week, tmp_path) -> None:
    parts = store_of(tmp_path, week[:50])
    table = pq.read_table(parts.files(parts.manifest())[0].calls)
    order = {r.call_id: r for r in week[:50]}
    written = [order[c] for c in table.column("call_id").to_pylist()]  # in received order
    assert sorted(written, key=lambda r: r.received) == written and len(written) == 50
    for resolution in H3_RESOLUTIONS:
        cells = table.column(h3_column(resolution)).to_pylist()
        assert cells == [cell_of(r.lat, r.lon, resolution) for r in written]
    assert any(c is not None for c in cells)


# -- made-up calls: percentiles and gaps at their edges ----------------------------------------

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def call(n: int, dispatch_s: float | None, *units: UnitResponse, area: str = "01") -> CallRecord:
    return CallRecord(
        call_id=str(n),
        type_code="FSTRU",
        category=HarmCategory.FIRE,
        priority=1,
        station_area=area,
        received=T0,
        dispatched=None if dispatch_s is None else T0 + timedelta(seconds=dispatch_s),
        units=units,
    )


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 57, 100, 101])
def test_percentiles_are_nearest_rank_for_any_count(tmp_path, n) -> None:
    records = [call(k, (k * 37) % 101 + 0.5) for k in range(n)]
    got = figures(store_of(tmp_path, records, per_part=3)).kpis(
        Selection(T0, T0 + timedelta(days=1), source="sf")
    )
    assert got == kpis(records)


def test_missing_negative_and_zero_intervals_are_left_out_and_counted(tmp_path) -> None:
    records = [call(1, None), call(2, -5), call(3, 0), call(4, 30), call(5, 90)]
    got = figures(store_of(tmp_path, records)).kpis(Selection(T0, T0 + timedelta(days=1)))
    stats = got[()][Interval.CALL_TO_DISPATCH]
    assert (stats.count, stats.missing, stats.negative, stats.zero) == (2, 1, 1, 1)
    assert (stats.mean, stats.p50, stats.p99) == (60.0, 30.0, 90.0)
    assert got == kpis(records)


def test_a_call_counts_once_in_each_desk_it_was_routed_to(tmp_path) -> None:
    base = [call(1, 20), call(2, 40), call(3, 60), call(4, 80)]
    records = [
        msgspec.structs.replace(base[0], desks=("fire", "west")),
        msgspec.structs.replace(base[1], desks=("west",)),
        msgspec.structs.replace(base[2], desks=("west", "west")),  # named twice, counted once
        base[3],  # no desk: in the group None
    ]
    by = (Dimension.DESK, Dimension.STATION_AREA)
    got = figures(store_of(tmp_path, records)).kpis(Selection(T0, T0 + timedelta(days=1)), by)
    assert list(got) == [(None, "01"), ("fire", "01"), ("west", "01")]
    assert got[("west", "01")][Interval.CALL_TO_DISPATCH].count == 3
    assert got == kpis(records, by)
    with_kind = (Dimension.UNIT_KIND, Dimension.DESK)  # the kinds rows take desks from calls
    got = figures(PartStore(tmp_path, "test-db")).kpis(
        Selection(T0, T0 + timedelta(days=1)), with_kind
    )
    assert got == kpis(records, with_kind) and list(got) == list(kpis(records, with_kind))


def test_a_call_without_units_of_a_kind_is_in_the_group_none(tmp_path) -> None:
    medic = UnitResponse(unit_id="M1", kind="medic", dispatched=T0 + timedelta(seconds=50))
    nameless = UnitResponse(unit_id="X1", dispatched=T0 + timedelta(seconds=20))
    records = [call(1, 20, nameless), call(2, 50, medic, nameless), call(3, 10)]
    got = figures(store_of(tmp_path, records)).kpis(
        Selection(T0, T0 + timedelta(days=1)), (Dimension.UNIT_KIND,)
    )
    assert list(got) == [(None,), ("medic",)]
    assert got == kpis(records, (Dimension.UNIT_KIND,))


# -- the parts and the manifest ----------------------------------------------------------------


def test_a_part_the_manifest_does_not_name_is_never_read_and_is_cleaned(tmp_path) -> None:
    records = [call(k, 30 + k) for k in range(4)]
    parts = store_of(tmp_path, records[:2])
    manifest = parts.manifest()
    # an export that stopped after renaming its part, before its manifest
    stray = parts.write_part(
        manifest.next_part, ((Key(False, "sf", r.call_id), r) for r in records[2:])
    )
    assert stray is not None and (tmp_path / stray.calls_file).exists()
    assert figures(parts).count(Selection(T0, T0 + timedelta(days=1))) == 2
    (tmp_path / "calls-000099.parquet.tmp").write_bytes(b"half a file")
    assert parts.clean(manifest) == 4  # the stray part's three files and the temporary one
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".lock") == [
        "calls-000001.parquet",
        "kinds-000001.parquet",
        "manifest.json",
        "units-000001.parquet",
    ]


def test_a_store_of_another_database_or_format_is_refused(tmp_path) -> None:
    store_of(tmp_path, [call(1, 30)])
    with pytest.raises(AnalyticsUnavailable, match="another database"):
        PartStore(tmp_path, "other-db").manifest()
    manifest = PartStore(tmp_path, "test-db").manifest()
    (tmp_path / "manifest.json").write_bytes(
        msgspec.json.encode(msgspec.structs.replace(manifest, format=99))
    )
    with pytest.raises(AnalyticsUnavailable, match="format 99"):
        PartStore(tmp_path, "test-db").manifest()
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(AnalyticsUnavailable, match="not a manifest"):
        PartStore(tmp_path, "test-db").manifest()


def test_small_parts_are_merged_in_time_order_and_the_figures_stay(week, tmp_path) -> None:
    records = week[:900]
    parts = store_of(tmp_path, records, per_part=100)  # nine small parts
    manifest = parts.manifest()
    before = figures(parts).kpis(WEEK, (Dimension.UNIT_KIND, Dimension.STATION_AREA))
    with parts.lock():
        merged, number = parts.compacted(manifest.parts, manifest.next_part, part_calls=500)
        assert [p.calls for p in merged] == [500, 400] and number == manifest.next_part + 2
        parts.commit(msgspec.structs.replace(manifest, parts=tuple(merged), next_part=number))
        assert parts.clean(parts.manifest()) == 27  # the nine small parts' files
    assert figures(parts).kpis(WEEK, (Dimension.UNIT_KIND, Dimension.STATION_AREA)) == before
    assert before == kpis(records, (Dimension.UNIT_KIND, Dimension.STATION_AREA))
    first, second = parts.files(parts.manifest())
    assert first.last <= second.first  # merged in time order, each file sorted
    for files in (first, second):
        for path in (files.calls, files.kinds, files.units):
            received = pq.read_table(path, columns=["received"]).column("received").to_pylist()
            assert received == sorted(received)
    # fewer small parts than MERGE_SMALL: left as they are
    few = parts.manifest().parts[:1]
    assert parts.compacted(few, 99, part_calls=5000) == (list(few), 99)


def test_a_query_reads_only_the_parts_that_hold_its_days(tmp_path) -> None:
    early = [call(k, 30 + k) for k in range(3)]
    late = [
        msgspec.structs.replace(call(10 + k, 40), received=T0 + timedelta(days=40))
        for k in range(2)
    ]
    parts = store_of(tmp_path, early + late, per_part=3)  # part 1: day 0; part 2: day 40
    first, second = parts.files(parts.manifest())
    assert (first.first, second.first) == (
        T0.replace(tzinfo=None),
        late[0].received.replace(tzinfo=None),
    )
    for path in (second.calls, second.kinds, second.units):
        path.unlink()  # the days below never need them: a query that opened them would fail
    day = Selection(T0, T0 + timedelta(days=1))
    assert figures(parts).count(day) == 3
    assert figures(parts).kpis(day, (Dimension.UNIT_KIND,)) == kpis(early, (Dimension.UNIT_KIND,))
    assert figures(parts).workload(day, 24.0)[0].calls == 3
    assert figures(parts).compliance(day, NFPA_1710, tz=SF) == compliance(
        early, NFPA_1710, (Dimension.STATION_AREA, Dimension.PERIOD), period=Period.YEAR, tz=SF
    )


def test_an_empty_store_answers_with_no_groups(tmp_path) -> None:
    parts = PartStore(tmp_path / "new", "test-db")
    with figures(parts) as empty:
        sel = Selection(T0, T0 + timedelta(days=1))
        assert empty.count(sel) == 0
        assert empty.kpis(sel, (Dimension.STATION_AREA,)) == {}
        assert empty.compliance(sel, NFPA_1710) == []
        assert empty.workload(sel, 24) == []


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Europe/Amsterdam", "Australia/Lord_Howe"])
@pytest.mark.parametrize("period", [Period.DAY, Period.WEEK])
def test_hours_and_days_across_clock_changes_equal_the_pure_computation(
    tmp_path, zone, period
) -> None:
    tz = ZoneInfo(zone)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    records = [
        msgspec.structs.replace(call(n, 30 + n % 7), received=start + timedelta(minutes=37 * n))
        for n in range(0, 2 * 365 * 24 * 60 // 37, 5)  # every 3 hours, two years
    ]
    records = [
        msgspec.structs.replace(r, dispatched=r.received + timedelta(seconds=30 + n % 7))
        for n, r in enumerate(records)
    ]
    sel = Selection(start, start + timedelta(days=800))
    got = figures(store_of(tmp_path, records, per_part=2000))
    for by in ((Dimension.HOUR,), (Dimension.PERIOD, Dimension.HOUR)):
        assert got.kpis(sel, by, period=period, tz=tz) == kpis(records, by, period=period, tz=tz)
    assert got.compliance(sel, NFPA_1710, tz=tz) == compliance(
        records, NFPA_1710, (Dimension.STATION_AREA, Dimension.PERIOD), period=Period.YEAR, tz=tz
    )


def test_duckdb_s_quantile_disc_is_nearest_rank_for_the_kpis_percentiles() -> None:
    """The queries rely on it (analytics/queries.py, _QUANTILES): every count up to 3,000,
    and some in the millions, against domain/kpi.percentile's rank."""
    import duckdb

    con = duckdb.connect()
    rows = con.execute(
        "SELECT n, quantile_disc(x, [0.5, 0.9, 0.99]) FROM (SELECT n.range AS n, x.range AS x "
        "FROM range(1, 3001) n, LATERAL (SELECT range FROM range(1, n.range + 1)) x) GROUP BY n"
    ).fetchall()
    assert len(rows) == 3000
    for n, got in rows:
        assert got == [percentile(range(1, n + 1), p) for p in (50, 90, 99)], n
    for n in (999_999, 1_000_000, 4_999_999, 5_000_000, 5_000_001):
        (got,) = con.execute(
            f"SELECT quantile_disc(x, [0.5, 0.9, 0.99]) FROM range(1, {n} + 1) t(x)"
        ).fetchone()
        assert got == [percentile(range(1, n + 1), p) for p in (50, 90, 99)], n


def test_a_writer_waits_while_a_query_has_the_parts_open(tmp_path) -> None:
    import threading

    from alarmdesk.service.analytics import open_analytics

    parts = store_of(tmp_path, [call(1, 30)])
    written = threading.Event()

    def writer() -> None:
        with parts.lock():  # as an export or a retention run that removes parts
            written.set()

    with open_analytics(parts) as reading:
        thread = threading.Thread(target=writer)
        thread.start()
        assert not written.wait(0.3)  # held off: the parts it would remove are being read
        assert reading.count(Selection(T0, T0 + timedelta(days=1))) == 1
    assert written.wait(5)
    thread.join(5)
