"""Build the console's offline basemap of the demo city as GeoJSON.

    python scripts/build_city_geojson.py \
        [--city src/alarmdesk/data/demo_city.json] \
        [--out src/alarmdesk/web/static/basemap/demo-city.geojson]

The console's map works without internet: world outlines (world-atlas, Natural Earth) under
this file, which holds
- ``outline``: where the city is, drawn from its calls: every call marks a grid cell
  (``--cell`` degrees), the marked area is widened by one cell and its holes filled, and
  the boundary of what is marked becomes polygons (a simplified, blocky outline);
- ``desk``: each desk's jurisdiction polygon;
- ``station``: each station as a point.
The same input always gives byte-identical output. Stdlib only.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CITY = REPO_ROOT / "src" / "alarmdesk" / "data" / "demo_city.json"
DEFAULT_OUT = REPO_ROOT / "src" / "alarmdesk" / "web" / "static" / "basemap" / "demo-city.geojson"
DECIMALS = 5

Cell = tuple[int, int]  # (column, row)
Vertex = tuple[int, int]


def mark_cells(
    points: list[tuple[float, float]], lon0: float, lat0: float, size: float
) -> set[Cell]:
    return {(int((lon - lon0) // size), int((lat - lat0) // size)) for lon, lat in points}


def widen(cells: set[Cell]) -> set[Cell]:
    return {(x + dx, y + dy) for x, y in cells for dx in (-1, 0, 1) for dy in (-1, 0, 1)}


def fill_holes(cells: set[Cell]) -> set[Cell]:
    """Marks every empty cell that the outside cannot reach."""
    xs = [x for x, _ in cells]
    ys = [y for _, y in cells]
    x0, x1, y0, y1 = min(xs) - 1, max(xs) + 1, min(ys) - 1, max(ys) + 1
    outside = {(x0, y0)}
    todo = [(x0, y0)]
    while todo:
        x, y = todo.pop()
        for n in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if x0 <= n[0] <= x1 and y0 <= n[1] <= y1 and n not in cells and n not in outside:
                outside.add(n)
                todo.append(n)
    return {(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1) if (x, y) not in outside}


def boundary_rings(cells: set[Cell]) -> list[list[Vertex]]:
    """Closed rings around the marked cells, counter-clockwise (the cells on the left)."""
    edges: dict[Vertex, list[Vertex]] = defaultdict(list)
    for x, y in cells:
        if (x, y - 1) not in cells:
            edges[(x, y)].append((x + 1, y))
        if (x + 1, y) not in cells:
            edges[(x + 1, y)].append((x + 1, y + 1))
        if (x, y + 1) not in cells:
            edges[(x + 1, y + 1)].append((x, y + 1))
        if (x - 1, y) not in cells:
            edges[(x, y + 1)].append((x, y))
    rings = []
    while edges:
        start = min(edges)
        ring = [start]
        prev, here = None, start
        while True:
            options = edges[here]
            if len(options) > 1 and prev is not None:
                # Two cells touch at a corner: turn right, so the rings stay apart.
                dx, dy = here[0] - prev[0], here[1] - prev[1]
                right = (here[0] + dy, here[1] - dx)
                nxt = right if right in options else options[0]
            else:
                nxt = options[0]
            options.remove(nxt)
            if not options:
                del edges[here]
            prev, here = here, nxt
            if here == start:
                break
            ring.append(here)
        rings.append(drop_collinear(ring))
    return rings


def drop_collinear(ring: list[Vertex]) -> list[Vertex]:
    out = []
    n = len(ring)
    for i, (x, y) in enumerate(ring):
        px, py = ring[i - 1]
        nx, ny = ring[(i + 1) % n]
        if (x - px) * (ny - y) - (y - py) * (nx - x) != 0:
            out.append((x, y))
    return out


def build(city: dict[str, Any], cell: float) -> dict[str, Any]:
    lon0, lat0 = city["bbox"][0], city["bbox"][1]
    points = [(c["lon"], c["lat"]) for c in city["calls"] if c.get("lat") is not None]
    cells = fill_holes(widen(mark_cells(points, lon0, lat0, cell)))

    def coord(v: Vertex) -> list[float]:
        return [round(lon0 + v[0] * cell, DECIMALS), round(lat0 + v[1] * cell, DECIMALS)]

    outline = [[[coord(v) for v in [*ring, ring[0]]]] for ring in boundary_rings(cells)]
    features: list[dict[str, Any]] = [
        {
            "type": "Feature",
            "properties": {"kind": "outline", "name": city["name"], "cell_degrees": cell},
            "geometry": {"type": "MultiPolygon", "coordinates": outline},
        }
    ]
    for desk in city["desks"]:
        if desk.get("jurisdiction"):
            features.append(
                {
                    "type": "Feature",
                    "properties": {"kind": "desk", "id": desk["id"], "name": desk["name"]},
                    "geometry": desk["jurisdiction"],
                }
            )
    for st in sorted(city["stations"], key=lambda s: s["id"]):
        features.append(
            {
                "type": "Feature",
                "properties": {"kind": "station", "id": st["id"], "name": st["name"]},
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(st["lon"], DECIMALS), round(st["lat"], DECIMALS)],
                },
            }
        )
    return {
        "type": "FeatureCollection",
        "name": city["name"],
        "bbox": city["bbox"],
        "center": city["center"],
        "source": "alarmdesk scripts/build_city_geojson.py from data/demo_city.json "
        f"({city['source']['dataset']}, {city['source']['license']})",
        "features": features,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--city", type=Path, default=DEFAULT_CITY)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cell", type=float, default=0.003, help="grid cell size in degrees")
    args = parser.parse_args()
    city = json.loads(args.city.read_text("utf-8"))
    collection = build(city, args.cell)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(collection, separators=(",", ":"), sort_keys=True) + "\n"
    args.out.write_text(text, "utf-8")
    print(f"{args.out}: {len(collection['features'])} features, {len(text) // 1024} KiB")


if __name__ == "__main__":
    main()
