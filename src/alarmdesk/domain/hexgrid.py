"""H3 cells: the hexagonal grid that KPIs and the heat layer group locations by.

H3 (Uber's hierarchical hexagonal grid, https://h3geo.org) divides the earth into cells of
near-equal area at 16 resolutions. alarmdesk groups by one resolution at a time, from 5 (a
district, about 250 km²) to 10 (about a block, 0.015 km²); 8 (about 0.74 km², a few city
blocks) is the default. A cell is named by its 15-hex-digit index, as H3 writes it.

A location is a place where something happened (an incident), never a person's track: the
heat layer counts incidents per cell and says nothing about who was there.
"""

from __future__ import annotations

from typing import Final

import h3

from alarmdesk.domain.errors import InvalidField

__all__ = [
    "DEFAULT_RESOLUTION",
    "MAX_RESOLUTION",
    "MIN_RESOLUTION",
    "boundary",
    "cell_of",
    "check_cell",
    "check_resolution",
    "resolution_of",
    "within",
]

MIN_RESOLUTION: Final = 5
MAX_RESOLUTION: Final = 10
DEFAULT_RESOLUTION: Final = 8


def check_resolution(value: int | str, field: str = "resolution") -> int:
    """A resolution alarmdesk groups by (5 … 10).

    Raises:
        InvalidField: not an integer in that range (``invalid_value``).
    """
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if not MIN_RESOLUTION <= number <= MAX_RESOLUTION:
        raise InvalidField(
            f"{field} {value!r}: an H3 resolution from {MIN_RESOLUTION} to {MAX_RESOLUTION}",
            field=field,
            code="invalid_value",
        )
    return number


def cell_of(
    lat: float | None, lon: float | None, resolution: int = DEFAULT_RESOLUTION
) -> str | None:
    """The cell a location falls in; None when there is no location or it is off the earth."""
    if lat is None or lon is None:
        return None
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None
    return str(h3.latlng_to_cell(lat, lon, resolution))


def check_cell(value: str, field: str = "cell") -> str:
    """An H3 cell index as written (lowercase hex).

    Raises:
        InvalidField: not a valid H3 cell (``invalid_value``).
    """
    text = value.strip().lower()
    if len(text) > 16 or not h3.is_valid_cell(text):
        raise InvalidField(f"{field} {value!r}: not an H3 cell", field=field, code="invalid_value")
    return text


def boundary(cell: str) -> list[list[float]]:
    """The cell's outline as a closed GeoJSON ring: [[lon, lat], …], first point repeated."""
    ring = [[round(lon, 7), round(lat, 7)] for lat, lon in h3.cell_to_boundary(cell)]
    return [*ring, ring[0]]


def resolution_of(cell: str) -> int:
    """The resolution of a valid cell (0 … 15)."""
    return int(h3.get_resolution(cell))


def within(cell: str, area: str) -> bool:
    """Whether ``cell`` is ``area`` or one of its descendants (a finer cell inside it).

    H3's children tile their parent only approximately: a point near a parent's edge may fall
    in a child of the neighbouring parent. "Inside" is H3's hierarchy, not the outline drawn.
    """
    coarse = resolution_of(area)
    return resolution_of(cell) >= coarse and str(h3.cell_to_parent(cell, coarse)) == area
