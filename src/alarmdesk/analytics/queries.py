"""The KPI figures over the analytics store's parts, with DuckDB in process.

The definitions are domain/kpi.py's, written in SQL:

- an interval's duration is its end phase's time less its start phase's, in microseconds;
  missing (a phase without a time), negative and zero durations are left out and counted;
- percentiles are nearest rank, exactly: the value at rank ⌈p·n/100⌉ of the durations sorted
  ascending, never an interpolation (DuckDB's ``quantile_disc``, which is that for the
  percentiles KPIs use: the reason is at :data:`_QUANTILES`);
- the mean is the exact sum of the durations divided by their number;
- grouping by unit kind reads the parts' kinds files (a row per call and unit kind, each
  kind timed by its own units), one scan like every other grouping; it joins the calls only
  for what those rows lack (desks, H3 cells);
- a query reads only the parts whose span of received times meets its days, and of those
  the row groups that do (the files are sorted by received time), so the dashboard's thirty
  days read a twelfth of a year.

- periods and hours of day are counted in the query's time zone by adding its UTC offset,
  which zoneinfo gives (the same tz data as domain/kpi), not by converting row by row.

DuckDB runs with extension autoloading and autoinstalling off: the parquet extension is
built into the Python package, and nothing is fetched at run time.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final

import duckdb
import pyarrow as pa

from alarmdesk.analytics.parts import PartFiles
from alarmdesk.analytics.rows import CALL_SCHEMA, KIND_SCHEMA, UNIT_SCHEMA, h3_column
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION, check_resolution, resolution_of
from alarmdesk.domain.history import INTERVAL_PHASES, UNIT_PHASES, Interval, Phase
from alarmdesk.domain.kpi import (
    Compliance,
    Dimension,
    GroupKey,
    Objective,
    Period,
    Stats,
    Workload,
)

__all__ = ["Analytics", "Selection"]

_PERCENTILES: Final = (50, 90, 99)
# DuckDB's quantile_disc(x, q) is the value at 1-based rank ⌈n·q⌉ of x sorted ascending:
# nearest rank. The rank is computed from n·q in floating point, and for q = 0.5, 0.9, 0.99
# that product is the exact integer whenever n·p/100 is one (0.5 is exact; the errors of
# 0.9 and 0.99 as doubles are under a tenth of the spacing of doubles near n·q, so the
# product rounds to the integer), while a fraction is at least 0.01 away from one: so the
# rank is ⌈p·n/100⌉ for every n. tests/unit/test_analytics_store.py checks it against
# domain/kpi.percentile for every n up to 3,000 and at millions; it runs in linear time, a
# sorted list (list_sort) took five times as long.
_QUANTILES: Final = "[" + ", ".join(f"{p / 100}" for p in _PERCENTILES) + "]"
_CONFIG: Final[dict[str, str | bool | int | float | list[str]]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
_TABLES: Final = {"calls": CALL_SCHEMA, "kinds": KIND_SCHEMA, "units": UNIT_SCHEMA}


@dataclass(frozen=True, slots=True)
class Selection:
    """The calls a query covers: received in [start, end), own incidents or imported ones
    (of one source, or of all)."""

    start: datetime
    end: datetime
    own: bool = False
    source: str | None = None


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


_STEP: Final = timedelta(hours=6)  # no zone changes its offset twice within six hours


def _offsets(tz: tzinfo, first: datetime, last: datetime) -> list[tuple[datetime | None, int]]:
    """The zone's UTC offsets (microseconds) from ``first`` to ``last``: [(since, offset)],
    ``since`` None for the first, each later one the UTC instant (naive) it begins, found by
    stepping and bisecting with the same tz data domain/kpi uses (zoneinfo)."""

    def offset(moment: datetime) -> int:
        delta = moment.astimezone(tz).utcoffset() or timedelta()
        return delta // timedelta(microseconds=1)

    out: list[tuple[datetime | None, int]] = [(None, offset(first))]
    at = first
    while at < last:
        step = min(at + _STEP, last)
        if offset(step) != out[-1][1]:
            low, high = at, step  # the change is in (low, high]
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if offset(middle) == out[-1][1]:
                    low = middle
                else:
                    high = middle
            high = high.replace(microsecond=0)
            out.append((_utc(high), offset(high)))
        at = step
    return out


def _parent(column: str, resolution: int, calls: str = "c") -> str:
    """The SQL of the H3 parent at ``resolution`` of the cells in ``column``, as an integer:
    H3's own rule (cellToParent), on the index's bits: the resolution field (bits 52–55) set
    to ``resolution`` and the digits below it (3 bits each) set to 7, unused."""
    below = (1 << (3 * (15 - resolution))) - 1
    return (
        f"((('0x' || {calls}.{column})::UBIGINT & ~(15::UBIGINT << 52)) "
        f"| ({resolution}::UBIGINT << 52) | {below}::UBIGINT)"
    )


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_databases: dict[int | None, tuple[Hashable, duckdb.DuckDBPyConnection]] = {}
_databases_lock = threading.Lock()


def _database(threads: int | None, generation: Hashable) -> duckdb.DuckDBPyConnection:
    """The process's DuckDB (one per thread count) for the committed parts of
    ``generation``: its Parquet metadata cache lets every report after the first read each
    file's footer from memory (a tenth of a thirty-day query). A name read is never
    rewritten (a committed part's number is never used again), and a new generation of parts
    (an export, a retention run) gets a new database, so the cache holds only live files;
    the old one goes when its last report closes."""
    with _databases_lock:
        held = _databases.get(threads)
        if held is not None and held[0] == generation:
            return held[1]
        config = dict(_CONFIG)
        if threads is not None:
            config["threads"] = threads
        db = duckdb.connect(":memory:", config=config)
        db.execute("SET parquet_metadata_cache = true")
        _databases[threads] = (generation, db)
        return db


class Analytics:
    """A DuckDB connection over committed parts.

    Args:
        parts: the committed parts' files and spans (``PartStore.files``); a query reads
            those whose span meets its days.
        threads: DuckDB's worker threads (None: its default, one per core).
        generation: what identifies this set of parts (the manifest's next part number, say):
            connections of one generation share a database and its cache of file footers.
            None: a database of its own.
    """

    def __init__(
        self,
        parts: Sequence[PartFiles],
        *,
        threads: int | None = None,
        generation: Hashable | None = None,
    ) -> None:
        self.parts = list(parts)
        if generation is None:
            config = dict(_CONFIG)
            if threads is not None:
                config["threads"] = threads
            self.con = duckdb.connect(":memory:", config=config)
            self.con.execute("SET parquet_metadata_cache = true")
        else:
            # the database object lives as long as this connection to it: closing it (when
            # a new generation replaced it and nothing else holds it) would close this one
            self._database = _database(threads, generation)
            self.con = self._database.cursor()
        for name, schema in _TABLES.items():  # what a query over no part reads
            self.con.register(f"no_{name}", pa.Table.from_batches([], schema=schema))

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Analytics:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _meeting(self, sel: Selection) -> list[PartFiles]:
        start, end = _utc(sel.start), _utc(sel.end)
        return [p for p in self.parts if p.meets(start, end)]

    def _table(self, sel: Selection, name: str) -> str:
        """The SQL of table ``name`` (calls, kinds, units) over the parts ``sel`` meets."""
        files = [getattr(p, name) for p in self._meeting(sel)]
        if not files:
            return f"no_{name}"
        return f"read_parquet([{', '.join(_quote(str(f)) for f in files)}])"

    # -- the selection ------------------------------------------------------------------------

    @staticmethod
    def _where(sel: Selection, table: str = "c") -> tuple[str, list[Any]]:
        clauses = [f"{table}.received >= ?", f"{table}.received < ?", f"{table}.own = ?"]
        params: list[Any] = [_utc(sel.start), _utc(sel.end), sel.own]
        if sel.source is not None:
            clauses.append(f"{table}.source = ?")
            params.append(sel.source)
        return " AND ".join(clauses), params

    def count(self, sel: Selection) -> int:
        where, params = self._where(sel)
        calls = self._table(sel, "calls")
        row = self.con.execute(f"SELECT count(*) FROM {calls} c WHERE {where}", params).fetchone()
        return int(row[0]) if row else 0

    # -- KPIs ---------------------------------------------------------------------------------

    def _local(self, sel: Selection, tz: tzinfo) -> str:
        """The SQL of the received time as local time in ``tz`` (naive): the UTC time plus
        the zone's offset, which changes only at the instants :func:`_offsets` finds over
        the days selected that the parts hold (cheaper than converting each row through
        ICU)."""
        meeting = self._meeting(sel)
        if not meeting:
            return "c.received"
        first = max(_utc(sel.start), min(p.first for p in meeting)).replace(tzinfo=UTC)
        last = min(_utc(sel.end), max(p.last for p in meeting)).replace(tzinfo=UTC)
        offsets = _offsets(tz, first, last)
        if len(offsets) == 1:
            shift = str(offsets[0][1])
        else:
            cases = " ".join(
                f"WHEN c.received < TIMESTAMP '{since.isoformat(sep=' ')}' THEN {before}"
                for (since, _), (_, before) in zip(offsets[1:], offsets, strict=False)
                if since is not None
            )
            shift = f"CASE {cases} ELSE {offsets[-1][1]} END"
        return f"(c.received + to_microseconds({shift}))"

    @staticmethod
    def _dimension(
        d: Dimension, period: Period, local: str, resolution: int, calls: str = "c"
    ) -> str:
        """The SQL of a dimension's value. ``calls``: the alias of the calls' own columns
        (desks, cells), which rows of kinds lack. A desk is an unnest in the select list, a
        row per desk: a lateral join of the same unnest took three times as long."""
        if d is Dimension.PERIOD:
            if period is Period.DAY:
                return f"strftime({local}, '%Y-%m-%d')"
            if period is Period.WEEK:
                return f"printf('%d-W%02d', isoyear({local}), weekofyear({local}))"
            if period is Period.MONTH:
                return f"strftime({local}, '%Y-%m')"
            return f"strftime({local}, '%Y')"
        if d is Dimension.HOUR:
            return f"hour({local})::INTEGER"
        if d is Dimension.STATION_AREA:
            return "c.station_area"
        if d is Dimension.TYPE:
            return "c.type_code"
        if d is Dimension.PRIORITY:
            return "c.priority::INTEGER"
        if d is Dimension.UNIT_KIND:
            return "c.kind"  # the rows are the kinds file's
        if d is Dimension.DESK:  # once per desk it was routed to; without one, in None
            desks = f"{calls}.desks"
            desks = f"CASE WHEN len({desks}) = 0 THEN [NULL] ELSE list_distinct({desks}) END"
            return f"unnest({desks})"
        if d is Dimension.H3:
            return f"{calls}.{h3_column(check_resolution(resolution))}"
        raise ValueError(f"{d} is not a dimension the analytics store groups by")

    @staticmethod
    def _duration(interval: Interval) -> str:
        """The SQL of an interval's duration in microseconds: of the call, or on a row of
        the kinds file, of that kind's units (the unit phases there are theirs)."""
        start, end = INTERVAL_PHASES[interval]
        return f"(epoch_us(c.{end.value}) - epoch_us(c.{start.value}))"

    def kpis(
        self,
        sel: Selection,
        by: Sequence[Dimension] = (),
        *,
        period: Period = Period.MONTH,
        tz: tzinfo = UTC,
        intervals: Sequence[Interval] = tuple(Interval),
        resolution: int = DEFAULT_RESOLUTION,
        area: str | None = None,
    ) -> dict[GroupKey, dict[Interval, Stats]]:
        """Per group, per interval, its Stats: ``domain/kpi.kpis`` over the selected calls.

        ``area``: only the calls whose cell at ``resolution`` is ``area`` or inside it in
        H3's hierarchy (``domain/hexgrid.within``; the caller has checked it is no finer)."""
        if len(set(by)) != len(by):
            raise ValueError(f"a dimension appears twice in {list(by)}")
        local = self._local(sel, tz) if {Dimension.PERIOD, Dimension.HOUR} & set(by) else ""
        where, params = self._where(sel)
        calls = "c"
        source = f"{self._table(sel, 'calls')} c"
        if Dimension.UNIT_KIND in by:  # a row per call and kind; the call's cells joined
            source = f"{self._table(sel, 'kinds')} c"
            if {Dimension.DESK, Dimension.H3} & set(by) or area is not None:
                calls = "x"
                source += f" JOIN {self._table(sel, 'calls')} x ON x.n = c.n"
                where += " AND x.received >= ? AND x.received < ?"  # read only those days
                params += params[:2]
        keys = [self._dimension(d, period, local, resolution, calls) for d in by]
        if area is not None:
            cells = h3_column(check_resolution(resolution))
            where += f" AND {_parent(cells, resolution_of(area), calls)} = {int(area, 16)}"
        inner = [f"{k} AS g{n}" for n, k in enumerate(keys)]
        inner += [f"{self._duration(i)} AS d{n}" for n, i in enumerate(intervals)]
        # One row per call and interval (UNPIVOT, keeping the missing ones as NULL), grouped
        # by the keys and the interval: one percentile state per group and interval, and the
        # positive durations as a column of their own (p) that count, sum and quantile_disc
        # read without a FILTER (the rare negative and zero ones keep theirs: count_if gives
        # NULL, not 0, to a group without any). Over a month this takes 0.7-0.8 of the time
        # of seven FILTERed columns of each aggregate side by side (bench/README.md).
        groups = [f"g{n}" for n in range(len(keys))]
        durations = ", ".join(f"d{n}" for n in range(len(intervals)))
        sql = (
            f"WITH base AS (SELECT {', '.join(inner)} FROM {source} WHERE {where}), "
            f"long AS (SELECT *, CASE WHEN d > 0 THEN d END AS p FROM base "
            f"UNPIVOT INCLUDE NULLS (d FOR i IN ({durations}))) "
            f"SELECT {', '.join([*groups, 'i'])}, count(p), "
            f"sum(p)::DOUBLE / 1e6 / nullif(count(p), 0), quantile_disc(p, {_QUANTILES}), "
            "count(*) - count(d), count(*) FILTER (WHERE d < 0), count(*) FILTER (WHERE d = 0) "
            f"FROM long GROUP BY {', '.join([*groups, 'i'])} "
            + (f"ORDER BY {', '.join(f'{g} ASC NULLS FIRST' for g in groups)}" if groups else "")
        )
        named = {f"d{n}": interval for n, interval in enumerate(intervals)}
        table: dict[GroupKey, dict[Interval, Stats]] = {}
        for row in self.con.execute(sql, params).fetchall():
            key: GroupKey = tuple(row[: len(keys)])
            name, count, mean, quantiles, missing, negative, zero = row[len(keys) :]
            p50, p90, p99 = (q / 1e6 for q in quantiles) if quantiles else (None, None, None)
            stats = table.setdefault(key, {})
            stats[named[name]] = Stats(
                int(count or 0), mean, p50, p90, p99, int(missing), int(negative), int(zero)
            )
        # a group is there only if a call is (no calls at all: no group, as domain/kpi gives)
        return {key: {i: stats[i] for i in intervals} for key, stats in table.items()}

    # -- compliance ---------------------------------------------------------------------------

    def compliance(
        self,
        sel: Selection,
        objectives: Sequence[Objective],
        *,
        tz: tzinfo = UTC,
    ) -> list[Compliance]:
        """Each objective per station area and year (in ``tz``), met or not: domain/kpi's
        ``compliance`` grouped by station area and period of a year."""
        where, params = self._where(sel)
        local = self._local(sel, tz)
        year = self._dimension(Dimension.PERIOD, Period.YEAR, local, DEFAULT_RESOLUTION)
        # objectives about unit kinds read the kinds file, the others the calls: a query each
        by_kinds: dict[frozenset[str], list[int]] = {}
        for n, o in enumerate(objectives):
            by_kinds.setdefault(o.unit_kinds, []).append(n)
        counts: dict[tuple[Any, Any], dict[int, tuple[int, int, int]]] = {}
        for kinds, which in by_kinds.items():
            source, outer_where = f"{self._table(sel, 'calls')} c", where
            if kinds:
                listed = ", ".join(_quote(k) for k in sorted(kinds))
                source, outer_where = self._of_kinds(sel, listed, where, len(kinds) > 1), "TRUE"
            aggregates: list[str] = []
            for n in which:
                o = objectives[n]
                applies = "TRUE"
                if o.categories:
                    listed = ", ".join(_quote(c.value) for c in sorted(o.categories))
                    applies = f"c.category IN ({listed})"
                d = f"({self._duration(o.interval)})::DOUBLE / 1e6"
                aggregates += [
                    f"count(*) FILTER (WHERE {applies} AND {d} > 0)",
                    f"count(*) FILTER (WHERE {applies} AND {d} > 0 "
                    f"AND {d} <= {float(o.limit_seconds)!r})",
                    f"count(*) FILTER (WHERE {applies} AND ({d} IS NULL OR {d} <= 0))",
                ]
            sql = (
                f"SELECT c.station_area, {year} AS y, {', '.join(aggregates)} FROM {source} "
                f"WHERE {outer_where} GROUP BY ALL"
            )
            for row in self.con.execute(sql, params).fetchall():
                group = counts.setdefault((row[0], row[1]), {})
                for k, n in enumerate(which):
                    group[n] = (int(row[2 + 3 * k]), int(row[3 + 3 * k]), int(row[4 + 3 * k]))
        out: list[Compliance] = []
        for area, year_value in sorted(counts, key=lambda g: (g[0] is not None, g[0] or "", g[1])):
            group = counts[(area, year_value)]
            for n, objective in enumerate(objectives):
                count, within, left_out = group.get(n, (0, 0, 0))
                if not count + left_out:
                    continue  # the objective applies to no call of the group
                out.append(Compliance.of(objective, (area, year_value), count, within, left_out))
        return out

    def _of_kinds(self, sel: Selection, listed: str, where: str, several: bool) -> str:
        """The SQL of the selected calls that have a unit of the kinds ``listed``, each with
        those units' phase times: a kinds row (a call has one per kind), or with
        ``several`` kinds the rows of one call folded, the earliest time of each unit phase
        and the latest clearing."""
        kinds = self._table(sel, "kinds")
        if not several:
            return f"(SELECT * FROM {kinds} c WHERE {where} AND c.kind IN ({listed})) c"
        columns = ", ".join(
            f"any_value(c.{p.value}) AS {p.value}"
            if p not in UNIT_PHASES
            else f"{'max' if p is Phase.CLEARED else 'min'}(c.{p.value}) AS {p.value}"
            for p in Phase
        )
        return (
            f"(SELECT c.n, any_value(c.station_area) AS station_area, any_value(c.category) "
            f"AS category, {columns} FROM {kinds} c WHERE {where} AND c.kind IN ({listed}) "
            f"GROUP BY c.n) c"
        )

    # -- workload -----------------------------------------------------------------------------

    def workload(
        self, sel: Selection, hours: float, roster: Mapping[str, int] | None = None
    ) -> list[Workload]:
        """Per station area: calls, unit responses, capacity (the units on the area's
        ``roster``, else the distinct units that answered), busy unit-hours (each response's
        dispatched → cleared) and the responses without both: domain/kpi's ``workload``."""
        if hours <= 0:
            raise ValueError(f"a span of {hours} hours")
        where, params = self._where(sel)
        unit_where, unit_params = self._where(sel, "u")
        calls, units = self._table(sel, "calls"), self._table(sel, "units")
        busy = "u.cleared IS NOT NULL AND u.dispatched IS NOT NULL AND u.cleared > u.dispatched"
        sql = (
            f"WITH calls_per AS (SELECT c.station_area AS area, count(*) AS calls FROM {calls} c "
            f"WHERE {where} GROUP BY ALL), "
            f"units_per AS (SELECT u.station_area AS area, count(*) AS responses, "
            f"count(DISTINCT u.unit_id) AS units, "
            f"sum(epoch_us(u.cleared) - epoch_us(u.dispatched)) FILTER (WHERE {busy}) AS busy, "
            f"count(*) FILTER (WHERE NOT ({busy})) AS untimed "
            f"FROM {units} u WHERE {unit_where} GROUP BY ALL) "
            f"SELECT c.area, c.calls, coalesce(u.responses, 0), coalesce(u.units, 0), "
            f"coalesce(u.busy, 0)::DOUBLE / 3.6e9, coalesce(u.untimed, 0) "
            f"FROM calls_per c LEFT JOIN units_per u ON c.area IS NOT DISTINCT FROM u.area "
            f"ORDER BY c.area IS NULL, c.area"
        )
        return [
            Workload.of(
                area, hours, int(calls), int(responses), int(units), float(b), int(untimed), roster
            )
            for area, calls, responses, units, b, untimed in self.con.execute(
                sql, params + unit_params
            ).fetchall()
        ]
