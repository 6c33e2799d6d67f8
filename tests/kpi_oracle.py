"""The KPI figures computed in plain Python, one call record at a time: the oracle the
analytics store's DuckDB queries (``alarmdesk.analytics.queries``) are tested against.

The definitions are domain/kpi.py's (intervals, gaps, nearest-rank percentiles, objectives,
capacity), which these functions apply record by record; alarmdesk itself computes the
figures with DuckDB (docs/analytics.md, "The analytics store"). ``kpis`` stays in
``alarmdesk.domain.kpi`` while the heat layer computes with it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, tzinfo

from alarmdesk.domain.history import CallRecord, Gap, duration
from alarmdesk.domain.kpi import (
    NFPA_1710,
    Compliance,
    Dimension,
    GroupKey,
    Objective,
    Period,
    Workload,
    _groups,
    _sortable,
    kpis,
)

__all__ = ["compliance", "kpis", "workload"]


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
