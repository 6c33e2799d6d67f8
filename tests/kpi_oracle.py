"""The KPI figures computed in plain Python, one call record at a time: the oracle the
analytics store's DuckDB queries (``alarmdesk.analytics.queries``) are tested against.

The definitions are domain/kpi.py's (intervals, gaps, nearest-rank percentiles, periods,
objectives, capacity) and domain/heat.py's, which these functions apply record by record;
alarmdesk itself computes the figures with DuckDB (docs/analytics.md, "The analytics store").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, tzinfo

from alarmdesk.domain import hexgrid
from alarmdesk.domain.heat import Heat, cells
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION, cell_of
from alarmdesk.domain.history import CallRecord, Gap, duration
from alarmdesk.domain.history.records import Interval
from alarmdesk.domain.kpi import (
    NFPA_1710,
    Compliance,
    Dimension,
    GroupKey,
    Objective,
    Period,
    Stats,
    Workload,
    percentile,
    period_of,
)

__all__ = ["compliance", "heat", "inside", "kpis", "summarize", "workload"]


def summarize(values: Iterable[float], gaps: Iterable[Gap] = ()) -> Stats:
    """Count, mean and nearest-rank p50/p90/p99 of durations in seconds."""
    ordered = sorted(values)
    gap_list = list(gaps)
    left_out = {g: gap_list.count(g) for g in Gap}
    if not ordered:
        return Stats(0, None, None, None, None, *left_out.values())
    return Stats(
        count=len(ordered),
        mean=sum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        missing=left_out[Gap.MISSING],
        negative=left_out[Gap.NEGATIVE],
        zero=left_out[Gap.ZERO],
    )


def _dimension_value(
    record: CallRecord, dimension: Dimension, period: Period, tz: tzinfo, resolution: int
) -> str | int | None:
    if dimension is Dimension.H3:
        return cell_of(record.lat, record.lon, resolution)
    if dimension is Dimension.PERIOD:
        return period_of(record.received, period, tz)
    if dimension is Dimension.STATION_AREA:
        return record.station_area
    if dimension is Dimension.TYPE:
        return record.type_code
    if dimension is Dimension.PRIORITY:
        return record.priority
    if dimension is Dimension.HOUR:
        return record.received.astimezone(tz).hour
    raise ValueError(f"{dimension} is not a dimension of the call itself")


def _groups(
    record: CallRecord,
    by: Sequence[Dimension],
    period: Period,
    tz: tzinfo,
    resolution: int = DEFAULT_RESOLUTION,
) -> list[tuple[GroupKey, frozenset[str] | None]]:
    """The groups a record falls in, each with the unit kinds that time it (None: all).

    A call falls in one group per kind of unit on it (timed by those units only) and per desk
    it was routed to (timed whole); a call without either falls in the group None."""
    kinds: list[str | None] = [None]
    if Dimension.UNIT_KIND in by:
        kinds = list(record.unit_kinds()) or [None]
    desks: list[str | None] = [None]
    if Dimension.DESK in by:
        desks = list(dict.fromkeys(record.desks)) or [None]
    out: list[tuple[GroupKey, frozenset[str] | None]] = []
    for kind in kinds:
        for desk in desks:
            key = tuple(
                kind
                if d is Dimension.UNIT_KIND
                else desk
                if d is Dimension.DESK
                else _dimension_value(record, d, period, tz, resolution)
                for d in by
            )
            out.append((key, None if kind is None else frozenset({kind})))
    return out


def kpis(
    records: Iterable[CallRecord],
    by: Sequence[Dimension] = (),
    *,
    period: Period = Period.MONTH,
    tz: tzinfo = UTC,
    intervals: Collection[Interval] = tuple(Interval),
    resolution: int = DEFAULT_RESOLUTION,
) -> dict[GroupKey, dict[Interval, Stats]]:
    """Per group (a key with one value per dimension of ``by``), per interval, its Stats.

    Args:
        records: the calls (read once).
        by: the dimensions to group by, in order; none gives one group, the key ``()``.
        period: the length of a period when grouping by period.
        tz: the time zone periods and hours of day are counted in.
        intervals: the intervals to measure.
        resolution: the H3 resolution when grouping by cell.
    """
    if len(set(by)) != len(by):
        raise ValueError(f"a dimension appears twice in {list(by)}")
    values: defaultdict[GroupKey, defaultdict[Interval, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    gaps: defaultdict[GroupKey, defaultdict[Interval, list[Gap]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for record in records:
        for key, kinds in _groups(record, by, period, tz, resolution):
            for interval in intervals:
                d = duration(record, interval, kinds)
                if isinstance(d, Gap):
                    gaps[key][interval].append(d)
                else:
                    values[key][interval].append(d)
    return {
        key: {i: summarize(values[key][i], gaps[key][i]) for i in intervals}
        for key in sorted(values.keys() | gaps.keys(), key=_sortable)
    }


def _sortable(key: GroupKey) -> tuple[tuple[int, str | int], ...]:
    # None sorts first; ints and strings never meet in one dimension
    return tuple((0, "") if v is None else (1, v) for v in key)


def inside(records: Iterable[CallRecord], area: str, resolution: int) -> Iterator[CallRecord]:
    """The calls located inside the cell ``area`` (of ``resolution`` or coarser)."""
    for record in records:
        cell = cell_of(record.lat, record.lon, resolution)
        if cell is not None and hexgrid.within(cell, area):
            yield record


def heat(
    records: Iterable[CallRecord],
    resolution: int = DEFAULT_RESOLUTION,
    interval: Interval = Interval.CALL_TO_ON_SCENE,
    *,
    area: str | None = None,
) -> Heat:
    """Calls per cell at ``resolution`` and ``interval``'s statistics in each."""
    chosen = inside(records, area, resolution) if area is not None else records
    table = kpis(chosen, (Dimension.H3,), intervals=(interval,), resolution=resolution)
    return cells(table, interval)


def compliance(
    records: Iterable[CallRecord],
    objectives: Sequence[Objective] = NFPA_1710,
    by: Sequence[Dimension] = (Dimension.STATION_AREA, Dimension.PERIOD),
    *,
    period: Period = Period.YEAR,
    tz: tzinfo = UTC,
) -> list[Compliance]:
    """Each objective, per group, met or not with the fraction achieved.

    Grouping by unit kind is refused: an objective names its own unit kinds.
    """
    if Dimension.UNIT_KIND in by:
        raise ValueError("compliance is grouped by the call; an objective names its unit kinds")
    tally: defaultdict[tuple[int, GroupKey], list[int]] = defaultdict(lambda: [0, 0, 0])
    for record in records:
        ((key, _),) = _groups(record, by, period, tz)
        for n, objective in enumerate(objectives):
            if not objective.applies_to(record):
                continue
            d = duration(record, objective.interval, objective.unit_kinds or None)
            counts = tally[(n, key)]
            if isinstance(d, Gap):
                counts[2] += 1
                continue
            counts[0] += 1
            counts[1] += d <= objective.limit_seconds
    out: list[Compliance] = []
    for (n, key), (count, within, left_out) in sorted(
        tally.items(), key=lambda kv: (_sortable(kv[0][1]), kv[0][0])
    ):
        out.append(Compliance.of(objectives[n], key, count, within, left_out))
    return out


def workload(
    records: Iterable[CallRecord], hours: float, roster: Mapping[str, int] | None = None
) -> list[Workload]:
    """Per station area (None: calls without one), in order of the areas' names.

    Args:
        roster: units on the roster per station area; an area it names is measured against
            them, any other against the units that answered its calls.
    """
    if hours <= 0:
        raise ValueError(f"a span of {hours} hours")
    calls: defaultdict[str | None, int] = defaultdict(int)
    responses: defaultdict[str | None, int] = defaultdict(int)
    units: defaultdict[str | None, set[str]] = defaultdict(set)
    busy: defaultdict[str | None, float] = defaultdict(float)
    untimed: defaultdict[str | None, int] = defaultdict(int)
    for r in records:
        area = r.station_area
        calls[area] += 1
        for u in r.units:
            responses[area] += 1
            units[area].add(u.unit_id)
            if u.dispatched is not None and u.cleared is not None and u.cleared > u.dispatched:
                busy[area] += (u.cleared - u.dispatched).total_seconds() / 3600
            else:
                untimed[area] += 1
    return [
        Workload.of(
            area,
            hours,
            calls[area],
            responses[area],
            len(units[area]),
            busy[area],
            untimed[area],
            roster,
        )
        for area in sorted(calls, key=lambda a: (a is None, a or ""))
    ]
