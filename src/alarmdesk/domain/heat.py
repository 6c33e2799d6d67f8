"""The heat layer's figures: calls per H3 cell, and one interval's statistics in each.

A call falls in the cell of its location at the chosen resolution (``domain/hexgrid.py``); a
call without a location, or with one off the earth, is counted apart as *unlocated* and in no
cell. In each cell: the number of calls, and the interval's count, p50 and p90 over the calls
that had it (nearest rank, ``domain/kpi.summarize``; missing, negative and zero intervals left
out and counted, as in every KPI).

:func:`heat` is the one place that groups calls by cell: the service reads the calls and calls
it; another engine (DuckDB over Parquet) can take its place as long as it gives the same
:class:`Heat`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION, cell_of, within
from alarmdesk.domain.history.records import CallRecord, Gap, Interval, duration
from alarmdesk.domain.kpi import Stats, summarize

__all__ = ["CellFigures", "Heat", "heat"]


@dataclass(frozen=True, slots=True)
class CellFigures:
    """One cell: how many calls fell in it, and the interval's statistics over them."""

    cell: str
    calls: int
    stats: Stats


@dataclass(frozen=True, slots=True)
class Heat:
    """Every cell with at least one call (busiest first, then by index), and the calls
    counted apart."""

    cells: tuple[CellFigures, ...]
    unlocated: int  # calls without a usable location: in no cell
    calls: int  # every call counted: the cells' calls plus the unlocated


def heat(
    records: Iterable[CallRecord],
    resolution: int = DEFAULT_RESOLUTION,
    interval: Interval = Interval.CALL_TO_ON_SCENE,
    *,
    area: str | None = None,
) -> Heat:
    """Calls per cell at ``resolution`` and ``interval``'s statistics in each.

    Args:
        records: the calls (read once).
        resolution: the H3 resolution of the cells (the caller has checked it).
        interval: the interval measured in each cell.
        area: a coarser cell (or one of the same resolution): only the calls located inside
            it are counted, the unlocated ones too are left out.
    """
    values: defaultdict[str, list[float]] = defaultdict(list)
    gaps: defaultdict[str, list[Gap]] = defaultdict(list)
    calls: defaultdict[str, int] = defaultdict(int)
    unlocated = 0
    for record in records:
        cell = cell_of(record.lat, record.lon, resolution)
        if cell is None:
            if area is None:
                unlocated += 1
            continue
        if area is not None and not within(cell, area):
            continue
        calls[cell] += 1
        d = duration(record, interval)
        if isinstance(d, Gap):
            gaps[cell].append(d)
        else:
            values[cell].append(d)
    cells = tuple(
        CellFigures(cell, n, summarize(values[cell], gaps[cell]))
        for cell, n in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return Heat(cells, unlocated, sum(calls.values()) + unlocated)
