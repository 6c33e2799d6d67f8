"""Correlation: which open incident a signal belongs to, if any.

Two rules (docs/architecture.md, "Correlation"):
- keyed sources fold into the open incident of the same key — panels by (account, zone,
  category), cameras by (camera, type, zone), feeds by (source, type), CAP alerts by
  (sender, thread: the first alert their ``references`` lead to);
- calls and duty reports fold into an open incident of the same harm category within
  ``radius_m`` metres and ``window`` of its last signal; without coordinates, the same
  category at the same address text.

The index answers in O(1) whatever the number of open incidents: keyed sources by dict,
located ones by a grid of cells a little wider than ``radius_m`` (``domain/geo.grid_row`` and
``grid_column``: a match is always in the 3×3 cells around the signal, each row's columns
measured at that row's latitude; near the 180th meridian, also in the 3×3 across it:
``grid_longitudes``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.correlation import CorrelationKey
from alarmdesk.domain.geo import (
    METRES_PER_DEGREE,
    grid_column,
    grid_longitudes,
    grid_row,
    haversine_m,
    meridian_reach,
)
from alarmdesk.domain.incident import Incident
from alarmdesk.domain.signal import Location, Signal, SourceKind

Cell = tuple[HarmCategory, int, int]  # (category, row, column)

# Cells this much wider than the radius: two points within the radius are then within one
# column in any row up to ~89 degrees of latitude (``grid_column``'s error), and rounding
# never moves one out of the cells searched.
CELL_SLACK = 1.01


def correlation_key(signal: Signal, category: HarmCategory) -> CorrelationKey | None:
    """The grouping key of a keyed source, or None for proximity-grouped sources."""
    zone = signal.location.zone if signal.location is not None else None
    if signal.source_kind is SourceKind.EQUIPMENT:
        label = signal.payload.get("label") if isinstance(signal.payload, dict) else None
        return CorrelationKey.equipment(
            signal.source_id, zone, category, str(label) if label else None, signal.type_code
        )
    if signal.source_kind is SourceKind.FEED:
        thread = _cap_thread(signal.payload)
        if thread is not None:
            return CorrelationKey.thread(signal.source_id, thread)
        return CorrelationKey.feed(signal.source_id, signal.type_code, zone)
    return None


def _cap_thread(payload: object) -> str | None:
    """The thread of a CAP alert (``payload.cap.thread``, set by ``intake/cap/mapping.py``)."""
    cap = payload.get("cap") if isinstance(payload, dict) else None
    thread = cap.get("thread") if isinstance(cap, dict) else None
    return thread if isinstance(thread, str) and thread else None


def _address_key(category: HarmCategory, location: Location | None) -> tuple[str, str] | None:
    if location is None or not location.address:
        return None
    return category.value, " ".join(location.address.casefold().split())


class CorrelationIndex:
    def __init__(self, radius_m: float, window: timedelta) -> None:
        self.radius_m = radius_m
        self.window = window
        # No great-circle distance is shorter than the arc of the latitude difference, so an
        # incident more than this many degrees north or south is out of reach without the
        # trigonometry (1 mm of slack keeps float rounding on the side of measuring).
        self._max_dlat = (radius_m + 0.001) / METRES_PER_DEGREE
        self._cell_m = radius_m * CELL_SLACK
        # Up to 80 degrees north or south, a signal this far from the 180th meridian needs
        # no search across it (the test, on a third of a microsecond, was 9 % of ``find``).
        self._meridian_free = 180.0 - meridian_reach(80.0, self._cell_m)
        self._keyed: dict[CorrelationKey, Incident] = {}
        self._grid: defaultdict[Cell, dict[int, Incident]] = defaultdict(dict)
        self._addresses: defaultdict[tuple[str, str], dict[int, Incident]] = defaultdict(dict)

    def __len__(self) -> int:
        return len(self._keyed) + sum(len(v) for v in self._grid.values())

    def find(self, signal: Signal, category: HarmCategory) -> Incident | None:
        key = correlation_key(signal, category)
        if key is not None:
            return self._keyed.get(key)
        loc = signal.location
        since = signal.occurred_at - self.window
        # Incidents quiet for two windows leave the grid: no timely signal can join them,
        # and the cells stay as small as the recent activity (the cost stays flat however
        # many incidents are open). One window of slack still serves late signals.
        prune_before = since - self.window
        best: tuple[float, Incident] | None = None
        if loc is not None and loc.lat is not None and loc.lon is not None:
            lat, lon, max_dlat, size = loc.lat, loc.lon, self._max_dlat, self._cell_m
            row = grid_row(lat, size)
            lons = (
                (lon,)
                if -80.0 < lat < 80.0 and -self._meridian_free < lon < self._meridian_free
                else grid_longitudes(lat, lon, size)  # and across the 180th meridian if near
            )
            for r in (row - 1, row, row + 1):
                for x in lons:
                    col = grid_column(x, r, size)  # the signal measured in that row's scale
                    for c in (col - 1, col, col + 1):
                        cell_key = (category, r, c)
                        cell = self._grid.get(cell_key)
                        if not cell:
                            continue
                        stale: list[int] = []
                        for i, inc in cell.items():  # one pass: prune and measure
                            seen = inc.last_seen
                            if seen < since:
                                if seen < prune_before:
                                    stale.append(i)
                                continue
                            il = inc.location
                            if il is None:
                                continue
                            assert il.lat is not None and il.lon is not None
                            if abs(il.lat - lat) > max_dlat:
                                continue  # farther north or south than the radius: no match
                            d = haversine_m(lat, lon, il.lat, il.lon)
                            if d <= self.radius_m and (best is None or d < best[0]):
                                best = (d, inc)
                        for i in stale:
                            del cell[i]
                        if not cell:
                            del self._grid[cell_key]
            return best[1] if best else None
        akey = _address_key(category, loc)
        if akey is None:
            return None
        candidates = [i for i in self._addresses.get(akey, {}).values() if i.last_seen >= since]
        return max(candidates, key=lambda i: i.last_seen) if candidates else None

    def add(self, inc: Incident) -> None:
        if inc.correlation_key is not None:
            self._keyed[inc.correlation_key] = inc
            return
        loc = inc.location
        if loc is not None and loc.lat is not None and loc.lon is not None:
            self._grid[self._cell(inc.category, loc.lat, loc.lon)][inc.id] = inc
            return
        akey = _address_key(inc.category, loc)
        if akey is not None:
            self._addresses[akey][inc.id] = inc

    def remove(self, inc: Incident) -> None:
        if inc.correlation_key is not None:
            if self._keyed.get(inc.correlation_key) is inc:
                del self._keyed[inc.correlation_key]
            return
        loc = inc.location
        if loc is not None and loc.lat is not None and loc.lon is not None:
            cell_key = self._cell(inc.category, loc.lat, loc.lon)
            cell = self._grid.get(cell_key)
            if cell is not None:
                cell.pop(inc.id, None)
                if not cell:
                    del self._grid[cell_key]
            return
        akey = _address_key(inc.category, loc)
        if akey is not None and akey in self._addresses:
            self._addresses[akey].pop(inc.id, None)
            if not self._addresses[akey]:
                del self._addresses[akey]

    def _cell(self, category: HarmCategory, lat: float, lon: float) -> Cell:
        row = grid_row(lat, self._cell_m)
        return category, row, grid_column(lon, row, self._cell_m)

    def touch(self, inc: Incident, last_seen: datetime) -> None:
        inc.last_seen = max(inc.last_seen, last_seen)
