"""The heat layer's figures: calls per H3 cell, and one interval's statistics in each.

A call falls in the cell of its location at the chosen resolution (``domain/hexgrid.py``); a
call without a location, or with one off the earth, is counted apart as *unlocated* and in no
cell. In each cell: the number of calls, and the interval's count, p50 and p90 over the calls
that had it (nearest rank; missing, negative and zero intervals left out and counted, as in
every KPI).

The grouping is the KPIs' own (by :attr:`Dimension.H3`): :func:`cells` turns that table,
which DuckDB computes over the analytics store (``analytics/queries.py``), into the layer's
figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alarmdesk.domain.history.records import Interval
from alarmdesk.domain.kpi import GroupKey, Stats

__all__ = ["CellFigures", "Heat", "cells"]


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
