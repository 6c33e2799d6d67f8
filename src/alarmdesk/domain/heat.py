"""The heat layer's figures: calls per H3 cell, and one interval's statistics in each.

A call falls in the cell of its location at the chosen resolution (``domain/hexgrid.py``); a
call without a location, or with one off the earth, is counted apart as *unlocated* and in no
cell. In each cell: the number of calls, and the interval's count, p50 and p90 over the calls
that had it (nearest rank; missing, negative and zero intervals left out and counted, as in
every KPI).

The grouping is the KPIs' own (``domain/kpi.kpis`` by :attr:`Dimension.H3`): :func:`cells`
turns that table into the layer's figures, so another engine that computes the same table
(DuckDB over Parquet) gives the same layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION, cell_of, within
from alarmdesk.domain.history.records import CallRecord, Interval
from alarmdesk.domain.kpi import Dimension, GroupKey, Stats, kpis

__all__ = ["CellFigures", "Heat", "cells", "heat", "inside"]


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


def _calls(s: Stats) -> int:
    # one interval: each call of the group either has a duration or a reason it has none
    return s.count + s.missing + s.negative + s.zero


def cells(table: Mapping[GroupKey, Mapping[Interval, Stats]], interval: Interval) -> Heat:
    """The layer from a KPI table grouped by :attr:`Dimension.H3` alone (the key ``(None,)``
    holds the calls without a location)."""
    found = [(key[0], stats[interval]) for key, stats in table.items()]
    unlocated = sum(_calls(s) for cell, s in found if cell is None)
    located = sorted(
        (CellFigures(str(cell), _calls(s), s) for cell, s in found if cell is not None),
        key=lambda c: (-c.calls, c.cell),
    )
    return Heat(tuple(located), unlocated, unlocated + sum(c.calls for c in located))


def inside(records: Iterable[CallRecord], area: str, resolution: int) -> Iterator[CallRecord]:
    """The calls located inside the cell ``area`` (of ``resolution`` or coarser)."""
    for record in records:
        cell = cell_of(record.lat, record.lon, resolution)
        if cell is not None and within(cell, area):
            yield record


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
        area: a cell of ``resolution`` or coarser: only the calls located inside it are
            counted (the unlocated ones are left out too).
    """
    chosen = inside(records, area, resolution) if area is not None else records
    table = kpis(chosen, (Dimension.H3,), intervals=(interval,), resolution=resolution)
    return cells(table, interval)
