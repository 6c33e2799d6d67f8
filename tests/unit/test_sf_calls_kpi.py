"""The San Francisco week (tests/fixtures/calls) read with the shipped example mapping
(docs/examples/sf-fire-calls.toml): the KPIs per station area, priority and unit kind equal
an independent computation written here in plain Python over the CSV, to the second.

The independent side uses only csv, datetime and zoneinfo, and restates the definitions of
docs/analytics.md: a call's phase is its first unit's (the last unit's for cleared), a unit
kind is timed by its own units, missing / negative / zero intervals are left out, and
percentiles are nearest rank.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alarmdesk.domain.history import DataQuality, Interval, load_mapping, read_calls_file
from alarmdesk.domain.kpi import NFPA_1710, Dimension
from tests.kpi_oracle import compliance, kpis

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "calls" / "sf_fire_calls_2016-12-31_2017-01-07.csv"
MAPPING = ROOT / "docs" / "examples" / "sf-fire-calls.toml"

# ---------------------------------------------------------------- the independent side

SF = ZoneInfo("America/Los_Angeles")
PRIORITY = {"3": 1, "2": 3}  # Final Priority: 3 emergency, 2 non-emergency
KIND = {
    "ENGINE": "engine",
    "TRUCK": "truck",
    "MEDIC": "medic",
    "PRIVATE": "private_ambulance",
    "CHIEF": "chief",
    "RESCUE CAPTAIN": "rescue_captain",
    "RESCUE SQUAD": "rescue_squad",
    "SUPPORT": "support",
    "AIRPORT": "airport",
    "INVESTIGATION": "investigation",
}
SPANS = {
    Interval.CALL_TO_DISPATCH: ("Received DtTm", "Dispatch DtTm"),
    Interval.TURNOUT: ("Dispatch DtTm", "Response DtTm"),
    Interval.TRAVEL: ("Response DtTm", "On Scene DtTm"),
    Interval.CALL_TO_ON_SCENE: ("Received DtTm", "On Scene DtTm"),
    Interval.ON_SCENE: ("On Scene DtTm", "Available DtTm"),
    Interval.HANDLING: ("Received DtTm", "Available DtTm"),
}


def when(text: str) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, "%m/%d/%Y %I:%M:%S %p").replace(tzinfo=SF)


def calls_by_number() -> dict[str, list[dict[str, str]]]:
    calls: dict[str, list[dict[str, str]]] = defaultdict(list)
    seen: set[str] = set()
    with FIXTURE.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["RowID"] in seen:
                continue
            seen.add(row["RowID"])
            calls[row["Call Number"]].append(row)
    return calls


def phase(rows: list[dict[str, str]], column: str) -> datetime | None:
    times = [t for r in rows if (t := when(r[column])) is not None]
    if not times:
        return None
    return max(times) if column == "Available DtTm" else min(times)


def seconds(call_rows, unit_rows, interval) -> float | None:
    start_col, end_col = SPANS[interval]
    # the received time is the call's; unit phases come from the units that time the group
    start = phase(call_rows if start_col == "Received DtTm" else unit_rows, start_col)
    end = phase(unit_rows, end_col)
    if start is None or end is None:
        return None
    s = (end - start).total_seconds()
    return s if s > 0 else None


def nearest_rank(values: list[float], p: int) -> float:
    ordered = sorted(values)
    rank = -(-p * len(ordered) // 100)  # ceil(p·n/100) in integers
    return ordered[rank - 1]


def expected(dimension: str) -> dict[tuple, dict[Interval, tuple]]:
    groups: dict[tuple, dict[Interval, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rows in calls_by_number().values():
        first = rows[0]
        if dimension == "kind":
            by_kind: dict[str, list[dict[str, str]]] = defaultdict(list)
            for r in rows:
                by_kind[KIND[r["Unit Type"]]].append(r)
            parts = [((kind,), unit_rows) for kind, unit_rows in by_kind.items()]
        elif dimension == "station":
            parts = [((first["Station Area"] or None,), rows)]
        else:
            parts = [((PRIORITY[first["Final Priority"]],), rows)]
        for key, unit_rows in parts:
            for interval in SPANS:
                s = seconds(rows, unit_rows, interval)
                if s is not None:
                    groups[key][interval].append(s)
    return {
        key: {
            i: (
                len(v),
                sum(v) / len(v),
                nearest_rank(v, 50),
                nearest_rank(v, 90),
                nearest_rank(v, 99),
            )
            for i, v in by_interval.items()
        }
        for key, by_interval in groups.items()
    }


# ---------------------------------------------------------------- alarmdesk's side


@pytest.fixture(scope="module")
def records():
    quality = DataQuality()
    records = list(read_calls_file(FIXTURE, load_mapping(MAPPING), quality))
    return records, quality


@pytest.mark.parametrize(
    ("dimension", "by"),
    [
        ("station", Dimension.STATION_AREA),
        ("priority", Dimension.PRIORITY),
        ("kind", Dimension.UNIT_KIND),
    ],
)
def test_kpis_equal_an_independent_computation(records, dimension, by):
    ours = kpis(records[0], [by], intervals=list(SPANS))
    theirs = expected(dimension)
    assert len(theirs) > 1
    for key, by_interval in theirs.items():
        for interval, (count, mean, p50, p90, p99) in by_interval.items():
            stats = ours[key][interval]
            assert (stats.count, stats.p50, stats.p90, stats.p99) == (count, p50, p90, p99), (
                key,
                interval,
            )
            assert stats.mean == pytest.approx(mean, abs=1e-9), (key, interval)
    # and no group or interval of ours is empty where the independent side has nothing
    for key, by_interval in ours.items():
        for interval, stats in by_interval.items():
            if stats.count:
                assert interval in theirs[key], (key, interval)


def test_the_week_reads_into_every_call_once(records):
    calls, quality = records
    assert (quality.rows_read, quality.calls, len(calls)) == (7704, 3560, 3560)
    assert quality.duplicates == 0
    assert quality.rows_skipped == 0
    assert quality.defaulted == {("type", "Other"): 123}  # "Other" is unclassified
    assert quality.coordinates == {"valid": 3560}
    # nothing in the export says when a call was answered
    assert quality.intervals[Interval.ANSWER].missing == 3560


def test_the_data_quality_gaps_match_the_csv(records):
    _, quality = records
    negative = zero = missing = 0
    for rows in calls_by_number().values():
        start, end = phase(rows, "Response DtTm"), phase(rows, "On Scene DtTm")
        if start is None or end is None:
            missing += 1
        elif end < start:
            negative += 1
        elif end == start:
            zero += 1
    travel = quality.intervals[Interval.TRAVEL]
    assert (travel.missing, travel.negative, travel.zero) == (missing, negative, zero)
    assert negative > 0  # the week has a phase out of order


def test_nfpa_compliance_per_station_area(records):
    results = compliance(records[0], NFPA_1710, by=[Dimension.STATION_AREA], tz=SF)
    processing = {c.group: c for c in results if c.objective.name == "alarm processing"}
    # independently: received → first dispatch ≤ 64 s, per station area
    within: dict[str | None, list[bool]] = defaultdict(list)
    for rows in calls_by_number().values():
        s = seconds(rows, rows, Interval.CALL_TO_DISPATCH)
        if s is not None:
            within[rows[0]["Station Area"] or None].append(s <= 64)
    for station, flags in within.items():
        c = processing[(station,)]
        assert (c.count, c.within) == (len(flags), sum(flags))
        assert c.met is (sum(flags) / len(flags) >= 0.9)
    answering = [c for c in results if c.objective.name == "alarm answering"]
    assert all(c.met is None for c in answering)  # no answer times: no data, not failed
