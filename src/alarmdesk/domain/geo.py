"""Small, dependency-free geometry: distances and point-in-polygon for jurisdictions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from alarmdesk.domain.errors import InvalidField

EARTH_RADIUS_M = 6_371_008.8
# A degree of latitude on the sphere haversine_m measures on: no great-circle distance is
# shorter than the north-south arc between its ends.
METRES_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180

Ring = Sequence[Sequence[float]]  # [[lon, lat], ...] as in GeoJSON


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _in_ring(lon: float, lat: float, ring: Ring) -> bool:
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i][0], ring[i][1]
        xj, yj = ring[j][0], ring[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


class Area:
    """A GeoJSON Polygon or MultiPolygon (holes respected), with a bounding box prefilter."""

    __slots__ = ("bbox", "polygons")

    def __init__(self, geojson: dict[str, object]) -> None:
        kind = geojson.get("type")
        coords: Any = geojson.get("coordinates")
        if kind == "Polygon":
            polygons = [coords]
        elif kind == "MultiPolygon":
            polygons = list(coords)
        else:
            raise ValueError(
                f"jurisdiction must be a GeoJSON Polygon or MultiPolygon, not {kind!r}"
            )
        self.polygons: list[list[Ring]] = [list(p) for p in polygons]
        if not self.polygons or not all(p and len(p[0]) >= 4 for p in self.polygons):
            raise ValueError("a jurisdiction polygon needs a closed ring of at least 4 points")
        xs = [pt[0] for p in self.polygons for pt in p[0]]
        ys = [pt[1] for p in self.polygons for pt in p[0]]
        self.bbox = (min(xs), min(ys), max(xs), max(ys))

    def contains(self, lat: float, lon: float) -> bool:
        x0, y0, x1, y1 = self.bbox
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False
        for polygon in self.polygons:
            if _in_ring(lon, lat, polygon[0]) and not any(
                _in_ring(lon, lat, hole) for hole in polygon[1:]
            ):
                return True
        return False


def area_of(geojson: dict[str, Any], field: str) -> Area:
    """The :class:`Area` of a GeoJSON value given in ``field`` of some input.

    Raises:
        InvalidField: not a Polygon or MultiPolygon with closed rings (``invalid_value``).
    """
    try:
        return Area(geojson)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise InvalidField(
            f"{field} is not a GeoJSON Polygon or MultiPolygon ({exc})",
            field=field,
            code="invalid_value",
        ) from None


def grid_row(lat: float, size_m: float) -> int:
    """The row of a grid of ``size_m``-metre cells that ``lat`` lies in: two points less than
    ``size_m`` apart are in the same row or in neighbouring ones."""
    return math.floor(lat * METRES_PER_DEGREE / size_m)


def grid_longitudes(lat: float, lon: float, size_m: float) -> tuple[float, ...]:
    """``lon``, and, when a point ``size_m`` or two away may lie across the 180th meridian,
    the same meridian written from the other side (``lon`` - 360 east of 0, + 360 west of
    it): the grid's columns do not wrap, so its neighbours there are found in the columns
    that number continues into. Fiji, Tuvalu, Kiribati, Chukotka and the Aleutians have
    the meridian in their streets. Near a pole, where every meridian is near, always both.
    """
    if 180.0 - abs(lon) > meridian_reach(lat, size_m):
        return (lon,)
    return (lon, lon - 360.0 if lon > 0 else lon + 360.0)


def meridian_reach(lat: float, size_m: float) -> float:
    """Degrees of longitude from the 180th meridian within which a point at ``lat`` (or
    nearer the equator) may have a neighbour two ``size_m`` cells away across it."""
    edge = min(90.0, abs(lat) + 2 * size_m / METRES_PER_DEGREE)  # the farthest row searched
    scale = METRES_PER_DEGREE * math.cos(math.radians(edge))
    return 360.0 if scale * 360.0 <= 2 * size_m else 2 * size_m / scale


def grid_column(lon: float, row: int, size_m: float) -> int:
    """The column of ``lon`` in ``row``, by its east-west metres at the row's middle latitude.

    One scale for the whole row, not each point's own: at 122 degrees west a point 176 m
    farther north would otherwise move ~230 m east or west in the grid (the cosine of its
    latitude times its 13.6 million metres of longitude). Measured in the same row, two points
    less than ``size_m`` apart are within one column of each other, up to a relative error of
    about ``tan(lat) * size_m / EARTH_RADIUS_M`` (the row's latitude is not quite theirs):
    give the grid cells a little wider than the distance searched. Columns do not wrap
    at the 180th meridian: search a point near it at :func:`grid_longitudes` too.
    """
    middle = (row + 0.5) * size_m / METRES_PER_DEGREE
    metres = lon * METRES_PER_DEGREE * math.cos(math.radians(middle))
    return math.floor(metres / size_m)
