"""The heat layer over the San Francisco week (tests/fixtures/calls) imported with the shipped
mapping, on SQLite and PostgreSQL: calls per H3 cell and the p50/p90 from call to on scene in
each equal an independent count written here over the CSV with csv, datetime and h3 alone;
reading it is an audited combine.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import h3
import pytest
import sqlalchemy as sa

from alarmdesk.bootstrap import analytics_store, audit_chain
from alarmdesk.config import Config
from alarmdesk.domain.history import Interval
from alarmdesk.service.heat import check_area, heat_report
from alarmdesk.service.kpi_report import kpi_query
from alarmdesk.store.database import make_engine, upgrade
from tests.conftest import test_config as config_for
from tests.integration.test_history_import import (
    IMPORTER,
    NOW,
    SF,
    SF_WEEK,
    WEEK_CALLS,
    audit,
    import_week,
)

BBOX = (37.60, -122.55, 37.85, -122.35)  # south, west, north, east: the mapping's


def when(text: str) -> datetime | None:
    return datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=SF) if text else None


def nearest_rank(values: list[float], p: int) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered) / 100) - 1]


Figures = tuple[int, int, float | None, float | None]  # calls, count, p50, p90


@pytest.fixture
def week(db_url: str) -> Iterator[tuple[Config, sa.Engine]]:
    """A database on each store with the week imported as source "sf"."""
    upgrade(db_url)
    cfg = config_for(db_url)
    engine = make_engine(cfg.database.url)
    import_week(cfg, engine)
    yield cfg, engine
    engine.dispose()


def independent(resolution: int) -> tuple[dict[str, Figures], int]:
    """Per cell (calls, count, p50, p90) of call → first unit on scene, and the calls
    without a location in the city, straight from the CSV."""
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    seen: set[str] = set()
    with SF_WEEK.open(newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            if row["RowID"] not in seen:
                seen.add(row["RowID"])
                rows[row["Call Number"]].append(row)
    calls: dict[str, int] = defaultdict(int)
    seconds: dict[str, list[float]] = defaultdict(list)
    unlocated = 0
    for unit_rows in rows.values():
        lat_text, lon_text = unit_rows[0]["Location"].strip("()").split(",")
        lat, lon = float(lat_text), float(lon_text)
        if not (BBOX[0] <= lat <= BBOX[2] and BBOX[1] <= lon <= BBOX[3]):
            unlocated += 1
            continue
        cell = h3.latlng_to_cell(lat, lon, resolution)
        calls[cell] += 1
        received = min(t for r in unit_rows if (t := when(r["Received DtTm"])))
        on_scene = [t for r in unit_rows if (t := when(r["On Scene DtTm"]))]
        if on_scene and (s := (min(on_scene) - received).total_seconds()) > 0:
            seconds[cell].append(s)
    out = {}
    for cell, n in calls.items():
        v = seconds[cell]
        p50, p90 = (nearest_rank(v, 50), nearest_rank(v, 90)) if v else (None, None)
        out[cell] = (n, len(v), p50, p90)
    return out, unlocated


def week_query(source: str | None = None, resolution: int = 8) -> Any:
    return kpi_query(
        "2016-12-31",
        "2017-01-07",
        timezone="America/Los_Angeles",
        source=source,
        resolution=resolution,
    )


@pytest.mark.parametrize("resolution", [7, 9])
def test_calls_per_cell_equal_an_independent_count_over_the_csv(week, resolution) -> None:
    cfg, engine = week
    report = heat_report(
        engine,
        audit_chain(cfg),
        week_query(resolution=resolution),
        actor=IMPORTER,
        now=NOW,
        analytics=analytics_store(cfg, engine),
    )
    expected, unlocated = independent(resolution)
    assert report.calls == WEEK_CALLS
    assert report.unlocated == unlocated
    got = {
        f.properties.cell: (
            f.properties.calls,
            f.properties.count,
            f.properties.p50,
            f.properties.p90,
        )
        for f in report.features
    }
    assert got == expected
    assert sum(c for c, *_ in got.values()) + unlocated == WEEK_CALLS
    # busiest first, each feature a closed ring around its cell's centre
    calls = [f.properties.calls for f in report.features]
    assert calls == sorted(calls, reverse=True)
    first = report.features[0]
    ring = first.geometry.coordinates[0]
    assert first.geometry.type == "Polygon" and ring[0] == ring[-1] and len(ring) == 7
    lat, lon = h3.cell_to_latlng(first.properties.cell)
    assert min(p[1] for p in ring) < lat < max(p[1] for p in ring)
    assert min(p[0] for p in ring) < lon < max(p[0] for p in ring)


def test_a_cell_limits_the_report_to_the_calls_inside_it(week) -> None:
    cfg, engine = week
    everything, _ = independent(8)
    busiest = max(everything, key=lambda c: everything[c][0])
    district = h3.cell_to_parent(busiest, 6)
    area = check_area(district.upper(), 8)  # as a client may write it
    report = heat_report(
        engine,
        audit_chain(cfg),
        week_query(),
        actor=IMPORTER,
        now=NOW,
        analytics=analytics_store(cfg, engine),
        area=area,
    )
    inside = {c: v for c, v in everything.items() if h3.cell_to_parent(c, 6) == district}
    assert {f.properties.cell: f.properties.calls for f in report.features} == {
        c: v[0] for c, v in inside.items()
    }
    assert report.area == district and report.unlocated == 0
    assert report.calls == sum(v[0] for v in inside.values())


def test_another_interval_and_source_and_the_audit_entry(week) -> None:
    cfg, engine = week
    chain = audit_chain(cfg)
    travel = heat_report(
        engine,
        chain,
        week_query("sf"),
        actor=IMPORTER,
        now=NOW,
        analytics=analytics_store(cfg, engine),
        interval=Interval.TRAVEL,
    )
    assert travel.interval == "travel" and travel.source == "sf"
    assert travel.calls == WEEK_CALLS
    by_scene = heat_report(
        engine, chain, week_query(), actor=IMPORTER, now=NOW, analytics=analytics_store(cfg, engine)
    )
    assert [f.properties.calls for f in travel.features] == [
        f.properties.calls for f in by_scene.features
    ]
    assert [f.properties.p90 for f in travel.features] != [
        f.properties.p90 for f in by_scene.features
    ]
    nothing = heat_report(
        engine,
        chain,
        week_query("elsewhere"),
        actor=IMPORTER,
        now=NOW,
        analytics=analytics_store(cfg, engine),
    )
    assert (nothing.calls, nothing.unlocated, nothing.features) == (0, 0, [])
    entries = [e for e in audit(engine, "combine") if e["rule"] == "report.heat"]
    assert len(entries) == 3
    assert entries[0]["object_type"] == "history_calls"
    assert entries[0]["object_id"] == "2016-12-31/2017-01-07"
    assert entries[0]["actor"] == "user:3"
    assert entries[0]["detail"] == {
        "source": "sf",
        "own": False,
        "timezone": "America/Los_Angeles",
        "resolution": 8,
        "interval": "travel",
        "cell": None,
    }
    assert "p90" not in str(entries)  # never a figure


def test_the_days_are_the_time_zone_s(week) -> None:
    """The first day in San Francisco starts at 08:00 UTC: the calls of 2016-12-31 before
    that hour (UTC) fall on 2016-12-30 there and are not counted."""
    cfg, engine = week
    one_day = kpi_query("2016-12-31", "2016-12-31", timezone="America/Los_Angeles")
    report = heat_report(
        engine,
        audit_chain(cfg),
        one_day,
        actor=IMPORTER,
        now=NOW,
        analytics=analytics_store(cfg, engine),
    )
    with SF_WEEK.open(newline="", encoding="utf-8-sig") as f:
        days = {
            r["Call Number"]: when(r["Received DtTm"]).date()  # type: ignore[union-attr]
            for r in csv.DictReader(f)
        }
    assert report.calls == sum(1 for d in days.values() if d == date(2016, 12, 31))
    assert 0 < report.calls < WEEK_CALLS
    assert datetime(2016, 12, 31, 8, tzinfo=UTC) == one_day.start
