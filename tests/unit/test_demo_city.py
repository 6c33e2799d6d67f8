"""The San Francisco demo city (data/demo_city.json), built by scripts/build_demo_city.py."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from importlib import resources
from typing import Any

import pytest
from shapely.geometry import Point, shape
from shapely.ops import unary_union

from tests.conftest import BUILD_INPUTS, REPO_ROOT

APCO_TSV = BUILD_INPUTS / "apco_incident_types.tsv"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build_demo_city.py"

EXCLUDED_CODES = {"CIVDIS", "CURFEW", "ALIEN"}


def demo_city_resource() -> Any:
    return resources.files("alarmdesk") / "data" / "demo_city.json"


@pytest.fixture(scope="module")
def city() -> dict[str, Any]:
    return json.loads(demo_city_resource().read_text(encoding="utf-8"))


def calls_points(city: dict[str, Any]) -> list[tuple[float, float]]:
    return [(c["lon"], c["lat"]) for c in city["calls"]]


def test_the_city_has_one_call_per_real_incident_sorted_by_time(city):
    calls = city["calls"]
    assert 3500 <= len(calls) < 3600
    times = [c["t"] for c in calls]
    assert times == sorted(times)
    assert times[0] == 0


def test_every_call_has_a_priority_and_non_negative_phases(city):
    for call in city["calls"]:
        assert call["priority"] in {1, 2, 3, 4, 5}
        assert set(call["phases"]) <= {"dispatch", "on_scene", "available"}
        assert all(isinstance(s, int) and s >= 0 for s in call["phases"].values())


def test_every_call_type_is_an_apco_code_and_none_is_excluded(city):
    with APCO_TSV.open(encoding="utf-8", newline="") as f:
        apco = {row["code"] for row in csv.DictReader(f, delimiter="\t")}
    codes = {c["type"] for c in city["calls"]}
    assert codes <= apco, codes - apco
    assert not codes & EXCLUDED_CODES


def test_every_call_lies_inside_the_bbox(city):
    min_lon, min_lat, max_lon, max_lat = city["bbox"]
    for lon, lat in calls_points(city):
        assert min_lon <= lon <= max_lon
        assert min_lat <= lat <= max_lat
    assert min_lat <= city["center"]["lat"] <= max_lat
    assert min_lon <= city["center"]["lon"] <= max_lon


def test_every_unit_and_every_call_belongs_to_a_listed_station(city):
    station_ids = [s["id"] for s in city["stations"]]
    assert len(station_ids) == len(set(station_ids))
    assert {u["station"] for u in city["units"]} <= set(station_ids)
    assert {c["station"] for c in city["calls"]} <= set(station_ids)


def test_unit_ids_are_unique_and_kinds_are_known(city):
    ids = [u["id"] for u in city["units"]]
    assert len(ids) == len(set(ids))
    kinds = {"engine", "medic", "truck", "chief", "rescue", "private", "support"}
    assert {u["kind"] for u in city["units"]} <= kinds


def test_desk_jurisdictions_are_closed_polygon_rings(city):
    assert [d["id"] for d in city["desks"]] == ["north", "south", "alarms"]
    for desk in city["desks"]:
        polygon = desk["jurisdiction"]
        assert polygon["type"] == "Polygon"
        for ring in polygon["coordinates"]:
            assert len(ring) >= 4
            assert ring[0] == ring[-1]
        assert shape(polygon).is_valid


def test_north_and_south_desks_together_cover_every_call(city):
    desks = {d["id"]: shape(d["jurisdiction"]) for d in city["desks"]}
    north_south = unary_union([desks["north"], desks["south"]])
    for lon, lat in calls_points(city):
        point = Point(lon, lat)
        assert north_south.covers(point), (lon, lat)
        assert desks["alarms"].covers(point), (lon, lat)


def test_there_are_forty_demo_accounts_with_unique_hex_ids(city):
    accounts = city["accounts"]
    assert len(accounts) == 40
    ids = [a["account"] for a in accounts]
    assert len(ids) == len(set(ids))
    for account_id in ids:
        assert 4 <= len(account_id) <= 6
        int(account_id, 16)
    assert all(a["zones"] and a["checkin_seconds"] > 0 for a in accounts)


def test_there_are_twelve_demo_cameras_with_unique_ids(city):
    cameras = city["cameras"]
    assert len(cameras) == 12
    ids = [c["id"] for c in cameras]
    assert len(ids) == len(set(ids))
    assert all(i.startswith("cam-") for i in ids)


@pytest.mark.slow
def test_rebuilding_from_the_committed_inputs_gives_the_committed_file_byte_for_byte(tmp_path):
    # No --calls or --taxonomy: the defaults are the copies in scripts/data, from any directory.
    out = tmp_path / "demo_city.json"
    subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--out", str(out), "--quiet"],
        check=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert out.read_bytes() == demo_city_resource().read_bytes()
