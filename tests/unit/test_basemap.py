"""The demo city's street basemap (static/basemap/demo-city.pmtiles), built by
scripts/build_basemap.py: what the script reads from the calls, and that what it writes is a
PMTiles archive of vector tiles in the Protomaps basemap schema, read back with the reference
readers (the ``pmtiles`` and ``mapbox-vector-tile`` packages, which the script does not use)."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import mapbox_vector_tile
import pytest
from pmtiles.reader import Reader, all_tiles
from pmtiles.tile import Compression, TileType, zxy_to_tileid

from alarmdesk.web.console.settings import DEMO_STREETS, DEMO_STREETS_ATTRIBUTION
from tests.conftest import REPO_ROOT

DEMO_AREA = (-122.52, 37.70, -122.35, 37.83)  # the demo city (issue 9 §8)
SIZE_BUDGET = 8 * 1024 * 1024
ROAD_KINDS = {"highway", "major_road", "minor_road"}


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_basemap", REPO_ROOT / "scripts" / "build_basemap.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bb = load_script()


def read_archive(data: bytes) -> tuple[dict[str, Any], dict[str, Any], dict[tuple, dict]]:
    """(header, metadata, {(z, x, y): decoded tile}) through the reference readers."""
    reader = Reader(lambda offset, length: data[offset : offset + length])
    tiles = {}
    for zxy, blob in all_tiles(reader.get_bytes):
        tiles[zxy] = mapbox_vector_tile.decode(
            gzip.decompress(blob), default_options={"y_coord_down": True}
        )
    return reader.header(), reader.metadata(), tiles


def features(tiles: dict[tuple, dict], layer: str) -> list[dict[str, Any]]:
    return [f for t in tiles.values() for f in t.get(layer, {}).get("features", [])]


# -- reading the calls ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "streets"),
    [
        ("500 Block of SOUTH VAN NESS AVE", [("South Van Ness Ave", 500)]),
        ("MARKET ST/VAN NESS AV", [("Market St", None), ("Van Ness Ave", None)]),
        ("BROADWAY/VAN NESS AV", [("Broadway", None), ("Van Ness Ave", None)]),
        ("400 Block of OFARRELL ST #RM206", [("O'Farrell St", 400)]),
        ("1000 Block of MCALLISTER ST", [("McAllister St", 1000)]),
        ("100 Block of 3RD ST", [("3rd St", 100)]),
        ("9TH ST/AVENUE B, TI", [("9th St", None), ("Avenue B", None)]),
        ("THE EMBARCADERO NOR/MARKET ST", [("The Embarcadero", None), ("Market St", None)]),
        ("1569-A 48TH AV", [("48th Ave", 1500)]),
        ("267 1/2 27TH ST", [("27th St", 200)]),
        ("GENEVA AV/280SB GENEVA OF", [("Geneva Ave", None)]),  # a ramp is no street
        ("101NB BAYSHORE 3RD OF/101NB 3RD ST OF", []),
        ("CALL BOX: PIER 43", []),
        ("", []),
    ],
)
def test_an_address_names_its_streets(address, streets) -> None:
    assert bb.street_names(address) == streets


def test_the_points_of_a_street_become_one_line_in_order() -> None:
    kx, ky = bb.metres(37.78)
    along = [(-122.42 + i * 0.001, 37.78 + i * 0.0005) for i in range(8)]  # ~100 m apart
    shuffled = along[:]
    random.Random(4).shuffle(shuffled)
    lines = bb.spanning_lines(shuffled, kx, ky, bb.MAX_GAP_M)
    assert len(lines) == 1
    assert lines[0] in (along, along[::-1])


def test_a_street_that_stops_and_starts_again_stays_two_pieces() -> None:
    kx, ky = bb.metres(37.78)
    near = [(-122.42, 37.78), (-122.419, 37.78)]
    far = [(-122.40, 37.78), (-122.399, 37.78)]  # ~1.7 km further east
    lines = bb.spanning_lines(near + far, kx, ky, bb.MAX_GAP_M)
    assert sorted(map(sorted, lines)) == [near, far]
    assert bb.spanning_lines(near[:1], kx, ky, bb.MAX_GAP_M) == []  # one point: no line


def test_tile_ids_follow_the_pmtiles_hilbert_curve() -> None:
    rng = random.Random(9)
    for z in range(0, 22):
        for _ in range(50):
            x, y = rng.randrange(1 << z), rng.randrange(1 << z)
            assert bb.tile_id(z, x, y) == zxy_to_tileid(z, x, y), (z, x, y)


# -- the archive, built from a tiny fixture -------------------------------------------------

FIXTURE_CALLS = [
    # (address, "(lat, lon)", neighbourhood): three blocks of Market St, a crossing, Polk St
    ("1000 Block of MARKET ST", "(37.7813, -122.4112)", "Tenderloin"),
    ("1100 Block of MARKET ST", "(37.7801, -122.4128)", "Tenderloin"),
    ("MARKET ST/VAN NESS AV", "(37.7752, -122.4193)", "Hayes Valley"),
    ("100 Block of VAN NESS AVE", "(37.7770, -122.4196)", "Hayes Valley"),
    ("1000 Block of POLK ST", "(37.7860, -122.4196)", "Tenderloin"),
    ("CALL BOX:", "(37.7900, -122.4000)", "None"),
]
FIXTURE_OUTLINE = {
    "type": "FeatureCollection",
    "name": "Test City (demo)",
    "bbox": [-122.43, 37.77, -122.40, 37.79],
    "center": {"lon": -122.415, "lat": 37.78},
    "features": [
        {
            "type": "Feature",
            "properties": {"kind": "outline"},
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[-122.43, 37.77], [-122.40, 37.77], [-122.40, 37.79], [-122.43, 37.79]]]
                ],
            },
        }
    ],
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("basemap") / "calls.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Unit ID", "Address", "Neighborhood  District", "Location"])
        for address, location, hood in FIXTURE_CALLS:
            w.writerow(["E1", address, hood, location])
            w.writerow(["M1", address, hood, location])  # one row per unit: one point
    return bb.build(bb.read_calls(path), FIXTURE_OUTLINE, max_zoom=15)


def test_the_archive_is_vector_tiles_in_pmtiles_v3(tiny) -> None:
    header, metadata, tiles = read_archive(tiny)
    assert tiny[:8] == b"PMTiles\x03"
    assert header["tile_type"] == TileType.MVT
    assert header["tile_compression"] == Compression.GZIP
    assert (header["min_zoom"], header["max_zoom"]) == (0, 15)
    assert header["clustered"]
    assert header["min_lon_e7"] <= -122.43e7 and header["max_lat_e7"] >= 37.79e7
    assert metadata["attribution"] == bb.ATTRIBUTION
    assert {layer["id"] for layer in metadata["vector_layers"]} == {"earth", "roads", "places"}
    assert len(tiles) == header["addressed_tiles_count"]
    assert {z for z, _, _ in tiles} == set(range(16))


def test_the_tiles_carry_named_roads_places_and_land(tiny) -> None:
    _, _, tiles = read_archive(tiny)
    roads = features(tiles, "roads")
    names = {f["properties"]["name"] for f in roads}
    assert names == {"Market St", "Van Ness Ave"}  # Polk St was located once: no line
    assert {f["properties"]["kind"] for f in roads} <= ROAD_KINDS
    assert all(f["geometry"]["type"] in {"LineString", "MultiLineString"} for f in roads)
    places = features(tiles, "places")
    labels = {(f["properties"]["name"], f["properties"]["kind"]) for f in places}
    assert labels == {
        ("Test City", "locality"),
        ("Tenderloin", "locality"),
        ("Hayes Valley", "locality"),
    }
    earth = features(tiles, "earth")
    assert earth and all(f["geometry"]["type"] in {"Polygon", "MultiPolygon"} for f in earth)


def test_a_road_runs_through_its_points_in_tile_coordinates(tiny) -> None:
    _, _, tiles = read_archive(tiny)
    z = 15
    world = bb.world_xy((-122.4128, 37.7801))  # 1100 Block of Market St
    tx, ty = int(world[0] * (1 << z)), int(world[1] * (1 << z))
    px = (world[0] * (1 << z) - tx) * 4096
    py = (world[1] * (1 << z) - ty) * 4096
    market = [
        f for f in tiles[(z, tx, ty)]["roads"]["features"] if f["properties"]["name"] == "Market St"
    ]
    vertices = [tuple(p) for f in market for p in f["geometry"]["coordinates"]]
    assert min(abs(x - px) + abs(y - py) for x, y in vertices) <= 2


def test_the_same_calls_give_the_same_bytes(tiny, tmp_path) -> None:
    path = tmp_path / "calls.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Address", "Location", "Neighborhood  District"])
        for address, location, hood in reversed(FIXTURE_CALLS):  # order does not matter
            w.writerow([address, location, hood])
    assert bb.build(bb.read_calls(path), FIXTURE_OUTLINE, max_zoom=15) == tiny


# -- the committed archive --------------------------------------------------------------------


@pytest.fixture(scope="module")
def committed() -> bytes:
    return DEMO_STREETS.read_bytes()


def test_the_committed_archive_covers_the_demo_city_and_is_small(committed) -> None:
    header, metadata, tiles = read_archive(committed)
    assert len(committed) <= SIZE_BUDGET
    west, south, east, north = DEMO_AREA  # the bay's shore falls short of its east edge
    bounds = [header[k] / 1e7 for k in ("min_lon_e7", "min_lat_e7", "max_lon_e7", "max_lat_e7")]
    assert bounds[0] <= west + 0.01 and bounds[2] >= east - 0.02
    assert bounds[1] <= south + 0.01 and bounds[3] >= north - 0.01
    assert metadata["attribution"] == DEMO_STREETS_ATTRIBUTION  # what the map shows
    names = {f["properties"]["name"] for f in features(tiles, "roads")}
    assert {"Market St", "Mission St", "Van Ness Ave", "Geary Blvd", "O'Farrell St"} <= names
    assert len(names) > 250
    places = {f["properties"]["name"] for f in features(tiles, "places")}
    assert {"San Francisco", "Tenderloin", "Mission", "Bayview Hunters Point"} <= places


def contents(archive: bytes) -> tuple[Any, ...]:
    """What an archive holds, whatever the bytes zlib chose to compress it to."""
    reader = Reader(lambda offset, length: archive[offset : offset + length])
    header = reader.header()
    fields = ("min_zoom", "max_zoom", "min_lon_e7", "min_lat_e7", "max_lon_e7", "max_lat_e7")
    tiles = {zxy: gzip.decompress(blob) for zxy, blob in all_tiles(reader.get_bytes)}
    return tuple(header[k] for k in fields), reader.metadata(), tiles


def test_rebuilding_from_the_committed_inputs_gives_the_committed_archive(committed) -> None:
    outline = json.loads((bb.DEFAULT_OUTLINE).read_text("utf-8"))
    rebuilt = bb.build(bb.read_calls(bb.DEFAULT_CALLS), outline)
    assert contents(rebuilt) == contents(committed)


def test_the_script_defaults_point_into_the_repository() -> None:
    assert Path(bb.DEFAULT_OUT) == DEMO_STREETS
    assert bb.DEFAULT_CALLS.is_file() and bb.DEFAULT_OUTLINE.is_file()
