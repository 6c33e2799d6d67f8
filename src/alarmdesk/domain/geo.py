"""Small, dependency-free geometry: distances and point-in-polygon for jurisdictions."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.signal import check_text

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


def _polygons(geojson: dict[str, Any]) -> list[Any]:
    """The polygons of a GeoJSON Polygon (one) or MultiPolygon, as written."""
    kind = geojson.get("type")
    coords: Any = geojson.get("coordinates")
    if kind == "Polygon":
        return [coords]
    if kind == "MultiPolygon":
        return list(coords)
    raise ValueError(f"jurisdiction must be a GeoJSON Polygon or MultiPolygon, not {kind!r}")


class Area:
    """A GeoJSON Polygon or MultiPolygon (holes respected), with a bounding box prefilter.

    Built as stored: positions are read as numbers (``float``), so an area stored before
    :func:`checked_area` refused numbers written as text still routes. Input goes through
    :func:`checked_area`, which refuses what would route wrongly.
    """

    __slots__ = ("bbox", "polygons")

    def __init__(self, geojson: dict[str, object]) -> None:
        self.polygons: list[list[Ring]] = [
            [[(float(pt[0]), float(pt[1])) for pt in ring] for ring in p]
            for p in _polygons(geojson)
        ]
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
    """The :class:`Area` of a GeoJSON value in ``field``: its shape checked, as stored
    areas are read (a routing rule's, a silence's). New input goes through
    :func:`checked_area`.

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


def checked_area(geojson: dict[str, Any], field: str) -> Area:
    """:func:`area_of` for an area given now (a set-up's, a new silence's): also refuses
    positions that would route wrongly or fail (:func:`_unfit`). Areas stored before these
    checks are read with :func:`area_of` and keep working as they did: a writer must start.

    Raises:
        InvalidField: not a polygon, or unfit (``invalid_value``).
    """
    area = area_of(geojson, field)
    why = _unfit(geojson)
    if why is not None:
        raise InvalidField(f"{field}: {why}", field=field, code="invalid_value")
    _check_members(geojson, field)
    return area


def _check_members(value: Any, field: str) -> None:
    """Every name and text of a GeoJSON value (foreign members, ``bbox``, ``properties``) held
    to the text rule, as every text a client gives: a NUL in one was stored on SQLite and
    a 500 on PostgreSQL, so a set-up exported from SQLite could not be applied there."""
    if isinstance(value, str):
        check_text(value, field, multiline=True)
    elif isinstance(value, dict):
        for key, member in value.items():
            check_text(str(key), field)
            _check_members(member, f"{field}.{key}")
    elif isinstance(value, list):
        for member in value:
            _check_members(member, field)


def _unfit(geojson: dict[str, Any]) -> str | None:
    """What makes a GeoJSON area (its shape already read by :class:`Area`) unfit as input:

    * a coordinate that is not a finite number: text read as a number once made every
      located alarm fail in routing (a string compared with a float);
    * a longitude or latitude out of range: a latitude of -122 is a position written
      latitude first, which GeoJSON writes last;
    * an edge across the 180th meridian: read as drawn, it goes the long way round the
      world, and the area becomes the rest of the world. RFC 7946 (3.1.9) asks to cut such
      an area there into a MultiPolygon; an edge along the meridian itself (a whole-world
      area's, from -180 to 180) is not across it.
    """
    for polygon in _polygons(geojson):
        for ring in polygon:
            for position in ring:
                for value in position[:2]:
                    if isinstance(value, bool) or not isinstance(value, int | float):
                        return f"{value!r} is not a number: a position is [longitude, latitude]"
                    if not math.isfinite(value):
                        return f"{value!r} is not a finite number"
                if len(position) < 2:
                    return f"{list(position)!r} is not a position: [longitude, latitude]"
                lon, lat = position[0], position[1]
                if not -180 <= lon <= 180:
                    return f"longitude {lon} is not within -180 to 180"
                if not -90 <= lat <= 90:
                    return (
                        f"latitude {lat} is not within -90 to 90: GeoJSON writes a position"
                        " as [longitude, latitude]"
                    )
            for a, b in itertools.pairwise(ring):
                if abs(b[0] - a[0]) > 180 and not abs(a[0]) == abs(b[0]) == 180:
                    return (
                        f"the edge from longitude {a[0]} to {b[0]} crosses the 180th meridian;"
                        " cut the area there into a MultiPolygon, one part on each side"
                        " (RFC 7946, 3.1.9)"
                    )
    return None


def wrap_longitude(lon: float) -> float:
    """``lon`` within -180 to 180 (one past 180 east is -179)."""
    if -180.0 <= lon <= 180.0:
        return lon
    return (lon + 180.0) % 360.0 - 180.0


def longitude_near(lon: float, ref: float) -> float:
    """``lon`` written within 180 degrees of ``ref`` (past 180 or -180 if need be), so that
    points on both sides of the 180th meridian can be averaged or boxed as on a flat map:
    the mean of 179.9 and -179.9 is 180, not 0. Wrap the result back (:func:`wrap_longitude`).
    """
    if lon - ref > 180.0:
        return lon - 360.0
    if lon - ref < -180.0:
        return lon + 360.0
    return lon


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
