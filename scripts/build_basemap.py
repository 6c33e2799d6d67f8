"""Build the demo city's offline street basemap: a vector PMTiles archive in the Protomaps
basemap schema, sketched from the located addresses of one week of San Francisco fire calls.

    python scripts/build_basemap.py \
        [--calls scripts/data/sf_fire_calls_2016-12-31_2017-01-07.csv.xz] \
        [--outline src/alarmdesk/web/static/basemap/demo-city.geojson] \
        [--out src/alarmdesk/web/static/basemap/demo-city.pmtiles]

What it draws, and how (docs/basemap.md says more):
- ``roads``: every call has a block-level address with coordinates: "500 Block of SOUTH VAN
  NESS AVE" is a point on one street, "MARKET ST/VAN NESS AV" a point on two. The points of
  one street are joined by their minimum spanning tree, without edges longer than
  ``MAX_GAP_M`` (a street that stops and starts again stays two pieces). Streets with no or
  one located call are missing: this is a sketch of the streets the week touched, not a
  survey. ``kind`` is ``highway`` for freeways, ``major_road`` for long streets, else
  ``minor_road``; ``name`` is the street's name as the dispatch data writes it.
- ``places``: the city's name, and each neighbourhood's name at the median of its calls
  (``kind`` ``locality``: the only kind protomaps-leaflet 5 labels below a country or region).
- ``earth``: the city's outline from ``--outline`` (``scripts/build_city_geojson.py``).

Tiles are Mapbox Vector Tiles 2.1 (extent 4096), gzip-compressed, in a PMTiles v3 archive,
zooms 0 to ``--max-zoom``; protomaps-leaflet draws deeper zooms from the deepest tiles. The
same inputs give byte-identical output. Stdlib only, like the other build scripts: the MVT
and PMTiles encoders below are written from the specifications
(github.com/mapbox/vector-tile-spec 2.1, github.com/protomaps/PMTiles spec/v3), and the
tests read what they write with the reference readers (the ``pmtiles`` and
``mapbox-vector-tile`` packages).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import lzma
import math
import re
import statistics
import struct
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, Final, TextIO

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CALLS = REPO_ROOT / "scripts" / "data" / "sf_fire_calls_2016-12-31_2017-01-07.csv.xz"
BASEMAP_DIR = REPO_ROOT / "src" / "alarmdesk" / "web" / "static" / "basemap"
DEFAULT_OUTLINE = BASEMAP_DIR / "demo-city.geojson"
DEFAULT_OUT = BASEMAP_DIR / "demo-city.pmtiles"

ATTRIBUTION: Final = "Streets sketched from DataSF fire calls (ODC PDDL)"
MAX_GAP_M: Final = 900.0  # longest stretch of a street drawn between two located calls
MERGE_M: Final = 15.0  # points of one street closer than this are one point
MAJOR_LENGTH_M: Final = 1500.0  # a street sketched this long is a major road
MAJOR_POINTS: Final = 10  # ... or one located this often
EXTENT: Final = 4096  # tile coordinates per tile side (MVT default)
BUFFER: Final = 64  # tile coordinates drawn past each edge, so lines and labels join up
# Which tile zooms carry what (protomaps-leaflet shows tile zoom z at map zoom z + 1).
ZOOM_CITY_LABEL: Final = range(0, 11)
ZOOM_NEIGHBOURHOODS: Final = 11
ZOOM_BY_KIND: Final = {"highway": 8, "major_road": 9, "minor_road": 12}

Point = tuple[float, float]  # (lon, lat)

# -- streets, sketched from located addresses ------------------------------------------------

# The dispatch data abbreviates street types two ways ("AV" at intersections, "AVE" on
# blocks); one spelling each, as street signs in San Francisco write them.
SUFFIXES: Final = {
    "ST": "St",
    "AV": "Ave",
    "AVE": "Ave",
    "BL": "Blvd",
    "BLVD": "Blvd",
    "DR": "Dr",
    "WY": "Way",
    "WAY": "Way",
    "CT": "Ct",
    "PL": "Pl",
    "PLZ": "Plaza",
    "PZ": "Plaza",
    "RD": "Rd",
    "LN": "Ln",
    "HY": "Hwy",
    "HWY": "Hwy",
    "TR": "Ter",
    "TER": "Ter",
    "CIR": "Cir",
    "AL": "Alley",
    "ALY": "Alley",
}
# Names whose capitals or apostrophe the upper-case data lost.
SPELLINGS: Final = {"OFARRELL": "O'Farrell", "OSHAUGHNESSY": "O'Shaughnessy"}
# Ramps and freeway directions ("101NB BAYSHORE 3RD OF", "280 NB Z SJ ALEMANY") are no street.
_RAMP = re.compile(r"^(\d{2,3}\s?)?(NB|SB)\b|\b(NB|SB|ON|OF|XR)$|^\d{2,3} Z\b")
_BLOCK = re.compile(r"^(\d+) Block of (.+)$", re.IGNORECASE)
_HOUSE = re.compile(r"^(\d+)(?:-[0-9A-Z]+)?(?: 1/2)? (.+)$")
_LOCATION = re.compile(r"^\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)$")


def street_name(text: str) -> str | None:
    """The display name of one street of an address ("SOUTH VAN NESS AV" -> "South Van Ness
    Ave"), or None for a ramp, a call box or nothing."""
    text = re.sub(r"#.*$", "", text)  # "400 Block of OFARRELL ST #RM206"
    text = re.sub(r",\s*(TI|PR)$", "", text.strip())  # Treasure Island, Presidio
    text = re.sub(r"\s+(NOR|SOU)$", "", text)  # "THE EMBARCADERO NOR": its north side
    text = " ".join(text.split()).upper()
    if not text or "BOX:" in text or _RAMP.search(text):
        return None
    words = text.split(" ")
    out = []
    for i, word in enumerate(words):
        if i == len(words) - 1 and i > 0 and word in SUFFIXES:
            out.append(SUFFIXES[word])
        elif word in SPELLINGS:
            out.append(SPELLINGS[word])
        elif word[:1].isdigit():
            out.append(word.lower())  # 3RD -> 3rd
        elif word.startswith("MC") and len(word) > 2:
            out.append("Mc" + word[2:].capitalize())
        else:
            out.append(word.capitalize())
    return " ".join(out)


def street_names(address: str) -> list[tuple[str, int | None]]:
    """The streets an address is on, each with its block number when it names one:
    "100 Block of EDDY ST" -> [("Eddy St", 100)]; "MARKET ST/7TH ST" -> two, no number."""
    address = address.strip()
    if "/" in address and not re.search(r"\d 1/2 ", address):
        return [(n, None) for part in address.split("/") if (n := street_name(part))]
    if m := _BLOCK.match(address):
        number, rest = int(m[1]), m[2]
    elif m := _HOUSE.match(address):
        number, rest = int(m[1]) // 100 * 100, m[2]
    else:
        return []
    name = street_name(rest)
    return [(name, number)] if name else []


def parse_location(text: str) -> Point | None:
    """(lon, lat) from the dataset's "(lat, lon)"; None when absent or implausible."""
    m = _LOCATION.match(text.strip())
    if not m:
        return None
    lat, lon = float(m[1]), float(m[2])
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lon, lat


@dataclass(frozen=True)
class Call:
    address: str
    where: Point
    neighbourhood: str | None


def open_text(path: Path) -> TextIO:
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8-sig", newline="")
    return path.open(encoding="utf-8-sig", newline="")


def read_calls(path: Path) -> list[Call]:
    """One located call per address (rows are per unit; an address located twice keeps the
    median of its locations)."""
    seen: dict[str, list[Point]] = defaultdict(list)
    hood: dict[str, str] = {}
    with open_text(path) as f:
        for row in csv.DictReader(f):
            where = parse_location(row.get("Location") or "")
            address = (row.get("Address") or "").strip()
            if where is None or not address:
                continue
            seen[address].append(where)
            name = (row.get("Neighborhood  District") or "").strip()
            if name and name != "None":
                hood.setdefault(address, name)
    return [
        Call(
            address,
            (statistics.median(p[0] for p in pts), statistics.median(p[1] for p in pts)),
            hood.get(address),
        )
        for address, pts in sorted(seen.items())
    ]


@dataclass
class Street:
    name: str
    kind: str  # highway, major_road, minor_road (the Protomaps basemap's road kinds)
    lines: list[list[Point]]
    points: int


def metres(origin_lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude near origin_lat."""
    return 111_320.0 * math.cos(math.radians(origin_lat)), 110_574.0


def merge_close(points: Sequence[Point], kx: float, ky: float) -> list[Point]:
    out: list[Point] = []
    for p in sorted(points):
        if all(math.hypot((p[0] - q[0]) * kx, (p[1] - q[1]) * ky) >= MERGE_M for q in out):
            out.append(p)
    return out


def spanning_lines(points: list[Point], kx: float, ky: float, max_gap: float) -> list[list[Point]]:
    """The minimum spanning tree of the points without edges longer than max_gap metres, as
    polylines (the tree cut at its branch points)."""
    n = len(points)
    if n < 2:
        return []

    def dist(i: int, j: int) -> float:
        return math.hypot((points[i][0] - points[j][0]) * kx, (points[i][1] - points[j][1]) * ky)

    # Prim's algorithm, O(n^2): a street has at most a few hundred points.
    best = {i: (dist(0, i), 0) for i in range(1, n)}
    adjacent: dict[int, list[int]] = defaultdict(list)
    while best:
        i = min(best, key=lambda k: (best[k][0], k))
        d, j = best.pop(i)
        if d <= max_gap:
            adjacent[i].append(j)
            adjacent[j].append(i)
        for k in best:
            dk = dist(i, k)
            if dk < best[k][0]:
                best[k] = (dk, i)
    lines: list[list[Point]] = []
    used: set[tuple[int, int]] = set()
    # Walk from every end or branch point along the chains of degree-2 points.
    starts = sorted(i for i in adjacent if len(adjacent[i]) != 2)
    for start in starts:
        for nxt in sorted(adjacent[start]):
            if (start, nxt) in used:
                continue
            chain = [start]
            prev, here = start, nxt
            used.update({(prev, here), (here, prev)})
            while True:
                chain.append(here)
                onward = [k for k in adjacent[here] if k != prev]
                if len(adjacent[here]) != 2 or not onward:
                    break
                prev, here = here, onward[0]
                used.update({(prev, here), (here, prev)})
            lines.append([points[k] for k in chain])
    return lines


def classify(name: str, length_m: float, points: int) -> str:
    if re.search(r"\b(Freeway|Fwy)\b", name):
        return "highway"
    if length_m >= MAJOR_LENGTH_M or points >= MAJOR_POINTS:
        return "major_road"
    return "minor_road"


def sketch_streets(calls: Iterable[Call]) -> list[Street]:
    on_street: dict[str, list[Point]] = defaultdict(list)
    for call in calls:
        for name, _block in street_names(call.address):
            on_street[name].append(call.where)
    streets = []
    for name in sorted(on_street):
        pts = on_street[name]
        kx, ky = metres(statistics.fmean(p[1] for p in pts))
        merged = merge_close(pts, kx, ky)
        lines = spanning_lines(merged, kx, ky, MAX_GAP_M)
        if not lines:
            continue
        length = sum(
            math.hypot((a[0] - b[0]) * kx, (a[1] - b[1]) * ky)
            for line in lines
            for a, b in pairwise(line)
        )
        streets.append(Street(name, classify(name, length, len(merged)), lines, len(merged)))
    return streets


@dataclass(frozen=True)
class Place:
    name: str
    where: Point
    min_zoom: int  # the Protomaps schema's: how soon a map shows it (bold at 5 or less)
    population_rank: int  # above 9: a larger label


def neighbourhoods(calls: Iterable[Call]) -> list[Place]:
    spots: dict[str, list[Point]] = defaultdict(list)
    for call in calls:
        if call.neighbourhood:
            spots[call.neighbourhood].append(call.where)
    return [
        Place(
            name,
            (statistics.median(p[0] for p in pts), statistics.median(p[1] for p in pts)),
            12,
            1,
        )
        for name, pts in sorted(spots.items())
    ]


# -- Web Mercator and clipping ----------------------------------------------------------------


def world_xy(p: Point) -> tuple[float, float]:
    """Web Mercator, scaled to [0, 1) across the world; y grows southward."""
    lon, lat = p
    lat = max(min(lat, 85.05112878), -85.05112878)
    s = math.sin(math.radians(lat))
    return (lon + 180.0) / 360.0, 0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)


Xy = tuple[float, float]


def clip_line(line: Sequence[Xy], lo: float, hi: float) -> list[list[Xy]]:
    """The parts of a polyline inside the square [lo, hi]^2 (Liang-Barsky per segment)."""
    parts: list[list[Xy]] = []
    current: list[Xy] = []
    for (x0, y0), (x1, y1) in pairwise(line):
        dx, dy = x1 - x0, y1 - y0
        t0, t1 = 0.0, 1.0
        inside = True
        for p, q in ((-dx, x0 - lo), (dx, hi - x0), (-dy, y0 - lo), (dy, hi - y0)):
            if p == 0:
                if q < 0:
                    inside = False
                    break
            else:
                t = q / p
                if p < 0:
                    t0 = max(t0, t)
                else:
                    t1 = min(t1, t)
                if t0 > t1:
                    inside = False
                    break
        if not inside:
            if current:
                parts.append(current)
                current = []
            continue
        a = (x0 + t0 * dx, y0 + t0 * dy)
        b = (x0 + t1 * dx, y0 + t1 * dy)
        if not current:
            current = [a]
        elif current[-1] != a:
            parts.append(current)
            current = [a]
        current.append(b)
        if t1 < 1.0:
            parts.append(current)
            current = []
    if current:
        parts.append(current)
    return parts


def clip_ring(ring: Sequence[Xy], lo: float, hi: float) -> list[Xy]:
    """A closed ring (without its repeated first point) clipped to the square [lo, hi]^2
    (Sutherland-Hodgman: one side of the square at a time)."""
    out = list(ring)
    for axis, bound, below in ((0, lo, False), (0, hi, True), (1, lo, False), (1, hi, True)):

        def keep(p: Xy, axis: int = axis, bound: float = bound, below: bool = below) -> bool:
            return p[axis] <= bound if below else p[axis] >= bound

        def cross(a: Xy, b: Xy, axis: int = axis, bound: float = bound) -> Xy:
            t = (bound - a[axis]) / (b[axis] - a[axis])
            x, y = a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])
            return (bound, y) if axis == 0 else (x, bound)

        src, out = out, []
        for i, b in enumerate(src):
            a = src[i - 1]
            if keep(b):
                if not keep(a):
                    out.append(cross(a, b))
                out.append(b)
            elif keep(a):
                out.append(cross(a, b))
    return out


def to_grid(points: Iterable[Xy]) -> list[tuple[int, int]]:
    """Rounded to tile coordinates, repeated points dropped."""
    out: list[tuple[int, int]] = []
    for x, y in points:
        p = (round(x), round(y))
        if not out or out[-1] != p:
            out.append(p)
    return out


def ring_area(ring: Sequence[tuple[int, int]]) -> float:
    """Twice the signed area, surveyor's formula: positive is clockwise on screen (y down)."""
    return float(
        sum(
            ring[i][0] * ring[(i + 1) % len(ring)][1] - ring[(i + 1) % len(ring)][0] * ring[i][1]
            for i in range(len(ring))
        )
    )


# -- Mapbox Vector Tile 2.1 encoding (protocol buffers by hand) ------------------------------


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def pb_bytes(field_no: int, data: bytes) -> bytes:
    return varint(field_no << 3 | 2) + varint(len(data)) + data


def pb_uint(field_no: int, n: int) -> bytes:
    return varint(field_no << 3) + varint(n)


def pb_packed(field_no: int, values: Iterable[int]) -> bytes:
    return pb_bytes(field_no, b"".join(varint(v) for v in values))


GEOM_POINT, GEOM_LINE, GEOM_POLYGON = 1, 2, 3
MOVE_TO, LINE_TO, CLOSE_PATH = 1, 2, 7


def command(cmd: int, count: int) -> int:
    return cmd | count << 3


def geometry_commands(kind: int, parts: Sequence[Sequence[tuple[int, int]]]) -> list[int]:
    """MVT geometry: MoveTo / LineTo / ClosePath with zigzag deltas from a running cursor."""
    out: list[int] = []
    cx = cy = 0
    if kind == GEOM_POINT:
        out.append(command(MOVE_TO, len(parts)))
        for ((x, y),) in parts:
            out += [zigzag(x - cx), zigzag(y - cy)]
            cx, cy = x, y
        return out
    for part in parts:
        (x, y), rest = part[0], part[1:]
        out += [command(MOVE_TO, 1), zigzag(x - cx), zigzag(y - cy)]
        cx, cy = x, y
        out.append(command(LINE_TO, len(rest)))
        for x, y in rest:
            out += [zigzag(x - cx), zigzag(y - cy)]
            cx, cy = x, y
        if kind == GEOM_POLYGON:
            out.append(command(CLOSE_PATH, 1))
    return out


@dataclass
class TileFeature:
    kind: int
    parts: list[list[tuple[int, int]]]
    properties: dict[str, str | int]


@dataclass
class TileLayer:
    name: str
    features: list[TileFeature] = field(default_factory=list)

    def encode(self) -> bytes:
        keys: dict[str, int] = {}
        values: dict[str | int, int] = {}
        body = [pb_uint(15, 2), pb_bytes(1, self.name.encode())]
        for n, feat in enumerate(self.features, start=1):
            tags: list[int] = []
            for k, v in feat.properties.items():
                tags += [keys.setdefault(k, len(keys)), values.setdefault(v, len(values))]
            body.append(
                pb_bytes(
                    2,
                    pb_uint(1, n)
                    + pb_packed(2, tags)
                    + pb_uint(3, feat.kind)
                    + pb_packed(4, geometry_commands(feat.kind, feat.parts)),
                )
            )
        body += [pb_bytes(3, k.encode()) for k in keys]
        for v in values:  # Value: 1 string, 5 uint64 (every number here is a count or a zoom)
            body.append(
                pb_bytes(4, pb_bytes(1, v.encode()) if isinstance(v, str) else pb_uint(5, v))
            )
        body.append(pb_uint(5, EXTENT))
        return b"".join(body)


def encode_tile(layers: Sequence[TileLayer]) -> bytes:
    return b"".join(pb_bytes(3, layer.encode()) for layer in layers if layer.features)


# -- the features, and the tiles that carry them ---------------------------------------------


@dataclass
class Feature:
    layer: str
    kind: int
    parts: list[list[Xy]]  # world coordinates; a polygon's parts are rings, exterior first
    properties: dict[str, str | int]
    zooms: range
    bbox: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        xs = [x for part in self.parts for x, _ in part]
        ys = [y for part in self.parts for _, y in part]
        self.bbox = (min(xs), min(ys), max(xs), max(ys))


LAYERS: Final = ("earth", "roads", "places")  # drawing order does not matter to the renderer


def features_of(
    streets: Sequence[Street], places: Sequence[Place], outline: dict[str, Any], max_zoom: int
) -> list[Feature]:
    out = []
    city_name = str(outline.get("name") or "").removesuffix(" (demo)")
    for f in outline.get("features", []):
        if f["properties"].get("kind") != "outline":
            continue
        geom = f["geometry"]
        polygons = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for poly in polygons:
            rings = [[world_xy((lon, lat)) for lon, lat in ring[:-1]] for ring in poly]
            out.append(
                Feature("earth", GEOM_POLYGON, rings, {"kind": "earth"}, range(max_zoom + 1))
            )
    for s in streets:
        for line in s.lines:
            out.append(
                Feature(
                    "roads",
                    GEOM_LINE,
                    [[world_xy(p) for p in line]],
                    {"kind": s.kind, "name": s.name},
                    range(ZOOM_BY_KIND[s.kind], max_zoom + 1),
                )
            )
    centre = outline.get("center")
    if city_name and centre:
        out.append(
            Feature(
                "places",
                GEOM_POINT,
                [[world_xy((centre["lon"], centre["lat"]))]],
                {"kind": "locality", "name": city_name, "min_zoom": 4, "population_rank": 12},
                ZOOM_CITY_LABEL,
            )
        )
    for p in places:
        out.append(
            Feature(
                "places",
                GEOM_POINT,
                [[world_xy(p.where)]],
                {
                    "kind": "locality",
                    "name": p.name,
                    "min_zoom": p.min_zoom,
                    "population_rank": p.population_rank,
                },
                range(ZOOM_NEIGHBOURHOODS, max_zoom + 1),
            )
        )
    return out


def tile_features(feat: Feature, z: int, tx: int, ty: int) -> TileFeature | None:
    """The feature in tile (z, tx, ty)'s coordinates, clipped to the tile and its buffer."""
    scale = float(1 << z)
    lo, hi = -BUFFER, EXTENT + BUFFER

    def local(p: Xy) -> Xy:
        return (p[0] * scale - tx) * EXTENT, (p[1] * scale - ty) * EXTENT

    parts: list[list[tuple[int, int]]] = []
    if feat.kind == GEOM_POINT:
        for part in feat.parts:
            x, y = local(part[0])
            if 0 <= x < EXTENT and 0 <= y < EXTENT:  # a label belongs to one tile
                parts.append([(round(x), round(y))])
    elif feat.kind == GEOM_LINE:
        for part in feat.parts:
            for piece in clip_line([local(p) for p in part], lo, hi):
                grid = to_grid(piece)
                if len(grid) >= 2:
                    parts.append(grid)
    else:
        for i, ring in enumerate(feat.parts):
            grid = to_grid(clip_ring([local(p) for p in ring], lo, hi))
            if len(grid) > 1 and grid[0] == grid[-1]:
                grid.pop()
            area = ring_area(grid) if len(grid) >= 3 else 0.0
            if area == 0:
                if i == 0:
                    return None  # no exterior ring here: no polygon
                continue
            if (area > 0) != (i == 0):  # exterior clockwise on screen, holes anticlockwise
                grid.reverse()
            parts.append(grid)
    return TileFeature(feat.kind, parts, feat.properties) if parts else None


def tile_range(bbox: tuple[float, float, float, float], z: int) -> Iterator[tuple[int, int]]:
    n = 1 << z
    pad = BUFFER / EXTENT
    x0, y0 = (max(0, int(v * n - pad)) for v in bbox[:2])
    x1, y1 = (min(n - 1, int(v * n + pad)) for v in bbox[2:])
    for x in range(x0, x1 + 1):
        for y in range(y0, y1 + 1):
            yield x, y


def make_tiles(features: Sequence[Feature], max_zoom: int) -> dict[tuple[int, int, int], bytes]:
    tiles: dict[tuple[int, int, int], bytes] = {}
    for z in range(max_zoom + 1):
        here = [f for f in features if z in f.zooms]
        if not here:
            continue
        bbox = (
            min(f.bbox[0] for f in here),
            min(f.bbox[1] for f in here),
            max(f.bbox[2] for f in here),
            max(f.bbox[3] for f in here),
        )
        n = float(1 << z)
        pad = BUFFER / EXTENT / n
        for tx, ty in tile_range(bbox, z):
            x0, y0 = tx / n - pad, ty / n - pad
            x1, y1 = (tx + 1) / n + pad, (ty + 1) / n + pad
            layers = {name: TileLayer(name) for name in LAYERS}
            for f in here:
                if f.bbox[2] < x0 or f.bbox[0] > x1 or f.bbox[3] < y0 or f.bbox[1] > y1:
                    continue
                tf = tile_features(f, z, tx, ty)
                if tf is not None:
                    layers[f.layer].features.append(tf)
            data = encode_tile(list(layers.values()))
            if data:
                tiles[(z, tx, ty)] = data
    return tiles


# -- PMTiles v3 ------------------------------------------------------------------------------

TILE_TYPE_MVT: Final = 1
COMPRESSION_GZIP: Final = 2
HEADER_LEN: Final = 127
ROOT_DIR_MAX: Final = 16_384 - HEADER_LEN  # the root directory shares the first 16 KiB


def tile_id(z: int, x: int, y: int) -> int:
    """PMTiles tile id: the tiles of every lower zoom, then the Hilbert-curve index of (x, y)."""
    acc = ((1 << (2 * z)) - 1) // 3
    d = 0
    s = 1 << (z - 1) if z else 0
    while s > 0:
        rx = 1 if x & s else 0
        ry = 1 if y & s else 0
        d += s * s * ((3 * rx) ^ ry)
        x, y = x & (s - 1), y & (s - 1)  # the position inside the quadrant
        if ry == 0:  # rotate the quadrant so the curve continues
            if rx == 1:
                x, y = s - 1 - x, s - 1 - y
            x, y = y, x
        s >>= 1
    return acc + d


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


@dataclass
class Entry:
    tile_id: int
    offset: int
    length: int
    run_length: int = 1


def directory(entries: Sequence[Entry]) -> bytes:
    """Entries as the spec lays them out: count, then ids (delta), run lengths, lengths and
    offsets (0 means "right after the previous tile"), each a column of varints."""
    out = [varint(len(entries))]
    last = 0
    for e in entries:
        out.append(varint(e.tile_id - last))
        last = e.tile_id
    out += [varint(e.run_length) for e in entries]
    out += [varint(e.length) for e in entries]
    for i, e in enumerate(entries):
        prev = entries[i - 1] if i else None
        follows = prev is not None and e.offset == prev.offset + prev.length
        out.append(varint(0 if follows else e.offset + 1))
    return b"".join(out)


def e7(v: float) -> int:
    return round(v * 10_000_000)


def pmtiles_archive(
    tiles: dict[tuple[int, int, int], bytes],
    metadata: dict[str, Any],
    bounds: tuple[float, float, float, float],
    center: tuple[float, float, int],
) -> bytes:
    """A clustered PMTiles v3 archive: header, root directory, metadata, tile data; identical
    tiles are stored once."""
    entries: list[Entry] = []
    data = io.BytesIO()
    stored: dict[bytes, int] = {}
    for z, x, y in sorted(tiles, key=lambda t: tile_id(*t)):
        blob = gz(tiles[(z, x, y)])
        tid = tile_id(z, x, y)
        if blob in stored:
            offset = stored[blob]
            last = entries[-1]
            if last.offset == offset and last.tile_id + last.run_length == tid:
                last.run_length += 1
                continue
        else:
            offset = stored[blob] = data.tell()
            data.write(blob)
        entries.append(Entry(tid, offset, len(blob)))
    root = gz(directory(entries))
    if len(root) > ROOT_DIR_MAX:
        raise ValueError(f"the root directory is {len(root)} bytes: too many tiles for one")
    meta = gz(json.dumps(metadata, sort_keys=True, separators=(",", ":")).encode())
    tile_data = data.getvalue()
    root_off = HEADER_LEN
    meta_off = root_off + len(root)
    data_off = meta_off + len(meta)
    zooms = [z for z, _, _ in tiles]
    header = b"PMTiles" + struct.pack(
        "<BQQQQQQQQQQQBBBBBBiiiiBii",
        3,
        root_off,
        len(root),
        meta_off,
        len(meta),
        data_off,  # leaf directories: none
        0,
        data_off,
        len(tile_data),
        len(tiles),  # addressed tiles
        len(entries),  # tile entries
        len(stored),  # tile contents
        1,  # clustered
        COMPRESSION_GZIP,  # internal compression
        COMPRESSION_GZIP,  # tile compression
        TILE_TYPE_MVT,
        min(zooms),
        max(zooms),
        e7(bounds[0]),
        e7(bounds[1]),
        e7(bounds[2]),
        e7(bounds[3]),
        center[2],
        e7(center[0]),
        e7(center[1]),
    )
    assert len(header) == HEADER_LEN
    return header + root + meta + tile_data


# -- the whole build ---------------------------------------------------------------------------


def build(calls: Sequence[Call], outline: dict[str, Any], max_zoom: int = 15) -> bytes:
    streets = sketch_streets(calls)
    places = neighbourhoods(calls)
    features = features_of(streets, places, outline, max_zoom)
    if not features:
        raise ValueError("nothing to draw: no located calls and no outline")
    tiles = make_tiles(features, max_zoom)
    lons = [c.where[0] for c in calls] or [0.0]
    lats = [c.where[1] for c in calls] or [0.0]
    if outline.get("bbox"):
        lons += [outline["bbox"][0], outline["bbox"][2]]
        lats += [outline["bbox"][1], outline["bbox"][3]]
    bounds = (min(lons), min(lats), max(lons), max(lats))
    centre = outline.get("center") or {
        "lon": statistics.median(lons),
        "lat": statistics.median(lats),
    }
    metadata = {
        "name": str(outline.get("name") or "city") + " streets",
        "description": "Streets sketched from the located addresses of fire calls "
        f"({len(streets)} streets, {len(places)} neighbourhoods); not a survey: "
        "streets without calls are missing (alarmdesk scripts/build_basemap.py)",
        "attribution": ATTRIBUTION,
        "type": "baselayer",
        "version": "1",
        "vector_layers": [
            {"id": "earth", "fields": {"kind": "String"}},
            {"id": "roads", "fields": {"kind": "String", "name": "String"}},
            {
                "id": "places",
                "fields": {
                    "kind": "String",
                    "name": "String",
                    "min_zoom": "Number",
                    "population_rank": "Number",
                },
            },
        ],
    }
    return pmtiles_archive(tiles, metadata, bounds, (centre["lon"], centre["lat"], 12))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=Path, default=DEFAULT_CALLS)
    parser.add_argument("--outline", type=Path, default=DEFAULT_OUTLINE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--max-zoom", type=int, default=15)
    args = parser.parse_args()
    calls = read_calls(args.calls)
    outline = json.loads(args.outline.read_text("utf-8"))
    archive = build(calls, outline, args.max_zoom)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(archive)
    print(f"{args.out}: {len(archive) // 1024} KiB from {len(calls)} located addresses")


if __name__ == "__main__":
    main()
