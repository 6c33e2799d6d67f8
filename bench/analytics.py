"""The analytics store at scale: N generated closed incidents exported to Parquet, then the
supervisor dashboard's queries over them with DuckDB (docs/analytics.md).

    .venv/bin/python bench/analytics.py                  # 5,000,000 calls (30-50 minutes)
    .venv/bin/python bench/analytics.py --count 200000   # a quick run
    .venv/bin/python bench/analytics.py --rounds 7 --keep
    .venv/bin/python bench/analytics.py --reuse DIR      # the queries again, over a kept store
    .venv/bin/python bench/analytics.py --count 420000 --days 31 --keep  # the month only

The calls are generated straight into the export's input (``history_calls`` and
``history_units`` of a SQLite database in a temporary directory, written with stdlib sqlite3
in bulk, not through HTTP or the import): SF-like coordinates (hot spots and a spread over the
city, 2 % without a location), the station area of the location's district, APCO types with
their categories and weights, priorities 1–5, one to three units of four kinds, a year of
received times with a daily rhythm (in time order, as a CAD export is; ``--shuffled`` draws
each call's day at random), and gaps (en route missing, on scene before en route, dispatch at
the second of receipt). numpy (present with the dev group, through shapely) draws them.

Then ``service.analytics.export`` copies them into the store (calls/s), and each query the
/kpi page and the heat layer ask, and the page's whole report, is timed over the page's
default span (the last 30 days of the year) and over the whole year, ``--rounds`` times,
rounds interleaved, after one warm-up round, each on a new connection as the API opens one
per report: median and worst, against the 0.2 s target. The load average is printed with the
figures; a JSON line ends the output.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alarmdesk.analytics.parts import PartStore
from alarmdesk.analytics.queries import Analytics, Selection
from alarmdesk.bootstrap import audit_chain
from alarmdesk.config import Config
from alarmdesk.domain.history import Interval
from alarmdesk.domain.kpi import NFPA_1710, Dimension
from alarmdesk.domain.taxonomy import default_types
from alarmdesk.service.analytics import export, open_analytics, store_for
from alarmdesk.store.database import make_engine, upgrade

YEAR_START = datetime(2026, 1, 1, tzinfo=UTC)
SF = ZoneInfo("America/Los_Angeles")
TARGET_S = 0.2
SOUTH, NORTH, WEST, EAST = 37.70, 37.81, -122.51, -122.37
HOT_SPOTS = [  # (lat, lon) of busy districts: downtown, the Tenderloin, the Mission, …
    (37.7849, -122.4094), (37.7838, -122.4167), (37.7599, -122.4148), (37.7765, -122.4172),
    (37.7946, -122.3999), (37.7694, -122.4862), (37.7219, -122.4435), (37.7301, -122.3857),
    (37.8014, -122.4367), (37.7544, -122.4477), (37.7879, -122.4330), (37.7395, -122.4180),
]  # fmt: skip
TYPES = {  # APCO code: weight (medical calls dominate, as in any fire department's export)
    "SICK": 14, "FALL": 8, "BREATH": 0, "RESP": 6, "CHESPAIN": 5, "CARDIAC": 3, "TRAUMA": 5,
    "OD": 3, "PERUNCON": 4, "SEIZURE": 2, "MVA": 5, "MVAINJY": 3, "ALRF": 10, "FSTRU": 2,
    "FSMOKE": 2, "FTRASH": 2, "FVEH": 1, "GASLEAK": 2, "HAZMAT": 1, "ELECHZD": 1, "RESCUE": 1,
    "ENTRAP": 1, "WATER": 1, "WIRES": 2, "ASSIST": 5, "CITASST": 3, "ODOR": 2, "EQTRBL": 1,
}  # fmt: skip
KINDS = ("engine", "medic", "truck", "chief")
KIND_WEIGHTS = (0.45, 0.35, 0.12, 0.08)
UNITS_PER_KIND = 60


def storage(us: np.ndarray) -> list[str | None]:
    """Microseconds since the epoch (NaN: none) as SQLAlchemy stores a UTC time on SQLite."""
    missing = np.isnan(us)
    ints = pa.array(np.where(missing, 0, us).astype(np.int64), mask=missing)
    texts = pc.strftime(ints.cast(pa.timestamp("us")), format="%Y-%m-%d %H:%M:%S")
    return list(texts.to_pylist())


def generate(
    path: Path,
    count: int,
    seed: int = 7,
    chunk: int = 250_000,
    in_order: bool = True,
    days: int = 365,
) -> int:
    """Writes ``count`` closed calls with their units into the database file; returns the
    unit responses written. ``in_order``: the days follow one another as in a CAD export
    (each chunk of rows a stretch of the year); else each row's day is drawn at random.
    ``days``: the calls fall on the year's last ``days`` days."""
    rng = np.random.default_rng(seed)
    types = {t.code: t for t in default_types()}
    codes = [c for c in TYPES if c in types and TYPES[c]]
    weights = np.array([TYPES[c] for c in codes], float)
    weights /= weights.sum()
    hour_weights = np.array(
        [2, 1.5, 1, 1, 1, 1.5, 2.5, 4, 5, 5.5, 6, 6, 6, 6, 6, 6, 6, 6, 5.5, 5, 4.5, 4, 3.5, 3]
    )
    hour_weights /= hour_weights.sum()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")  # generating input, not storing alarms
    calls_sql = (
        "INSERT INTO history_calls (id, source, call_id, type_code, category, priority, "
        "station_area, lat, lon, received, answered, entered, dispatched, en_route, on_scene, "
        "transport, cleared, closed_at, imported_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    units_sql = (
        "INSERT INTO history_units (history_call_id, position, unit_id, kind, dispatched, "
        "en_route, on_scene, transport, cleared) VALUES (?,?,?,?,?,?,?,?,?)"
    )
    imported = storage(
        np.array(
            [float((datetime.now(UTC) - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6)]
        )
    )[0]
    base_us = (YEAR_START - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1e6
    units_written = 0
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        ids = np.arange(start + 1, start + n + 1)
        if in_order:
            day = np.sort(rng.integers(days * start // count, -(-days * (start + n) // count), n))
        else:
            day = rng.integers(0, days, n)
        day += 365 - days
        hour = rng.choice(24, n, p=hour_weights)
        second = rng.integers(0, 3600, n)
        received = base_us + ((day * 24 + hour) * 3600 + second) * 1e6
        # where: 70 % around hot spots, the rest anywhere in the city; 2 % without
        spot = rng.integers(0, len(HOT_SPOTS), n)
        near = rng.random(n) < 0.7
        lat = np.where(
            near,
            np.array([HOT_SPOTS[s][0] for s in spot]) + rng.normal(0, 0.006, n),
            rng.uniform(SOUTH, NORTH, n),
        ).clip(SOUTH, NORTH)
        lon = np.where(
            near,
            np.array([HOT_SPOTS[s][1] for s in spot]) + rng.normal(0, 0.006, n),
            rng.uniform(WEST, EAST, n),
        ).clip(WEST, EAST)
        row = ((lat - SOUTH) / (NORTH - SOUTH) * 5.999).astype(int)
        col = ((lon - WEST) / (EAST - WEST) * 6.999).astype(int)
        area = [f"{a:02d}" for a in row * 7 + col + 1]
        located = rng.random(n) >= 0.02
        lat_stored = [
            float(round(x, 6)) if ok else None for x, ok in zip(lat, located, strict=True)
        ]
        lon_stored = [
            float(round(x, 6)) if ok else None for x, ok in zip(lon, located, strict=True)
        ]
        code = rng.choice(len(codes), n, p=weights)
        priority = rng.choice([1, 2, 3, 4, 5], n, p=[0.45, 0.2, 0.25, 0.07, 0.03])
        # the call's own phases
        answered = np.where(rng.random(n) < 0.7, received + rng.uniform(3, 30, n) * 1e6, np.nan)
        entered = received + rng.uniform(10, 60, n) * 1e6
        # up to three units, each with its own times; the first goes at dispatch
        units = rng.choice([1, 2, 3], n, p=[0.5, 0.35, 0.15])
        dispatch = received + rng.lognormal(np.log(55), 0.5, n).round() * 1e6
        dispatch = np.where(rng.random(n) < 0.005, received, dispatch)  # zero: same second
        per_unit: list[dict[str, np.ndarray]] = []
        for u in range(3):
            present = units > u
            sent = dispatch + (0 if u == 0 else rng.uniform(0, 120, n).round() * 1e6)
            en_route = sent + rng.lognormal(np.log(60), 0.4, n).round() * 1e6
            en_route = np.where(rng.random(n) < 0.03, np.nan, en_route)  # not reported
            on_scene = (
                np.nan_to_num(en_route, nan=sent) + rng.lognormal(np.log(240), 0.5, n).round() * 1e6
            )
            swap = rng.random(n) < 0.005  # on scene before en route: a clock or entry error
            on_scene = np.where(swap, en_route - 30e6, on_scene)
            transport = np.where(
                rng.random(n) < 0.25, on_scene + rng.uniform(300, 1500, n).round() * 1e6, np.nan
            )
            cleared = (
                np.fmax(on_scene, np.nan_to_num(transport, nan=0))
                + rng.lognormal(np.log(1200), 0.6, n).round() * 1e6
            )
            kind = rng.choice(len(KINDS), n, p=KIND_WEIGHTS)
            number = rng.integers(1, UNITS_PER_KIND + 1, n)
            nan = np.full(n, np.nan)
            per_unit.append(
                {
                    "present": present,
                    "kind": kind,
                    "number": number,
                    "dispatched": np.where(present, sent, nan),
                    "en_route": np.where(present, en_route, nan),
                    "on_scene": np.where(present, on_scene, nan),
                    "transport": np.where(present, transport, nan),
                    "cleared": np.where(present, cleared, nan),
                }
            )
        phases = ("dispatched", "en_route", "on_scene", "transport", "cleared")
        call_times = {
            p: (np.fmax if p == "cleared" else np.fmin).reduce([u[p] for u in per_unit])
            for p in phases
        }
        closed = np.fmax.reduce([received, call_times["cleared"], entered])
        texts = {
            "received": storage(received),
            "answered": storage(answered),
            "entered": storage(entered),
            **{p: storage(call_times[p]) for p in phases},
            "closed_at": storage(closed),
        }
        rows = zip(
            ids.tolist(),
            ["bench"] * n,
            [f"B{i}" for i in ids],
            [codes[c] for c in code],
            [types[codes[c]].category.value for c in code],
            priority.tolist(),
            area,
            lat_stored,
            lon_stored,
            texts["received"],
            texts["answered"],
            texts["entered"],
            *(texts[p] for p in phases),
            texts["closed_at"],
            [imported] * n,
            strict=True,
        )
        db.executemany(calls_sql, rows)
        for position, u in enumerate(per_unit):
            present = u["present"]
            unit_texts = {p: storage(u[p][present]) for p in phases}
            kinds = u["kind"][present]
            numbers = u["number"][present]
            unit_rows = zip(
                ids[present].tolist(),
                [position] * int(present.sum()),
                [f"{KINDS[k][0].upper()}{m}" for k, m in zip(kinds, numbers, strict=True)],
                [KINDS[k] for k in kinds],
                *(unit_texts[p] for p in phases),
                strict=True,
            )
            db.executemany(units_sql, unit_rows)
            units_written += int(present.sum())
        db.commit()
    db.close()
    return units_written


def timed(run: Callable[[], Any]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def queries_over(sel: Selection, hours: float) -> dict[str, Callable[[Analytics], Any]]:
    """What the /kpi page and the heat layer ask, each on its own, and the page's report as
    a whole (service/kpi_report.py: the count, the table, compliance, workload and the
    areas over target, on one connection)."""

    def report(a: Analytics) -> None:
        a.count(sel)
        a.kpis(sel, (), tz=SF)
        a.compliance(sel, NFPA_1710, tz=SF)
        a.workload(sel, hours)
        a.kpis(sel, (Dimension.STATION_AREA,), intervals=(Interval.CALL_TO_ON_SCENE,))

    return {
        "KPIs all together (the page's default)": lambda a: a.kpis(sel, (), tz=SF),
        "KPIs by station area": lambda a: a.kpis(sel, (Dimension.STATION_AREA,)),
        "KPIs by priority": lambda a: a.kpis(sel, (Dimension.PRIORITY,)),
        "KPIs by hour of day (SF time)": lambda a: a.kpis(sel, (Dimension.HOUR,), tz=SF),
        "KPIs by unit kind": lambda a: a.kpis(sel, (Dimension.UNIT_KIND,)),
        "KPIs by H3 cell, res 8": lambda a: a.kpis(sel, (Dimension.H3,), resolution=8),
        "heat: call→on scene by H3 res 8": lambda a: a.kpis(
            sel, (Dimension.H3,), intervals=(Interval.CALL_TO_ON_SCENE,), resolution=8
        ),
        "NFPA 1710 compliance": lambda a: a.compliance(sel, NFPA_1710, tz=SF),
        "workload per station area": lambda a: a.workload(sel, hours),
        "the page's whole report (5 queries)": report,
    }


def time_queries(
    parts: PartStore,
    queries: dict[str, Callable[[Analytics], Any]],
    rounds: int,
    threads: int | None,
) -> dict[str, list[float]]:
    """Each query timed ``rounds`` times, rounds interleaved, after one warm-up round; each
    on a new connection opened inside the timing, as the API opens one per report (so the
    files' footers are read each time, from the page cache)."""

    def once(query: Callable[[Analytics], Any]) -> None:
        with open_analytics(parts, threads=threads) as figures:
            query(figures)

    for query in queries.values():
        once(query)
    times: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(rounds):
        for name, query in queries.items():
            times[name].append(timed(lambda q=query: once(q)))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5_000_000, help="closed incidents")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of each query")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default: cores)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--reuse",
        metavar="DIR",
        help="time the queries over the store a run with --keep left in DIR (no generate, "
        "no export)",
    )
    parser.add_argument(
        "--shuffled",
        action="store_true",
        help="draw each call's day at random (default: in time order, as a CAD export is)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=365,
        help="spread the calls over the year's last DAYS days (default 365); e.g. "
        "--count 420000 --days 31 gives the page's thirty days the density of 5,000,000 a "
        "year in a tenth of the export time",
    )
    args = parser.parse_args()
    if not 30 <= args.days <= 365:
        parser.error("--days must be between 30 and 365")
    reused = args.reuse is not None
    workdir = Path(args.reuse or tempfile.mkdtemp(prefix="alarmdesk-analytics-bench-"))
    print(f"load average at start: {os.getloadavg()}; {os.cpu_count()} cores; in {workdir}")
    try:
        url = f"sqlite:///{workdir / 'bench.db'}"
        exported: dict[str, Any] = {}
        if not reused:
            upgrade(url)
            began = time.perf_counter()
            units = generate(
                workdir / "bench.db", args.count, in_order=not args.shuffled, days=args.days
            )
            seconds = time.perf_counter() - began
            print(f"generated {args.count:,} calls, {units:,} unit responses in {seconds:.1f} s")
        engine = make_engine(url)
        parts = store_for(workdir / "analytics", engine)
        if not reused:
            cfg = Config()
            cfg.database.url = url
            cfg.audit.key_file = str(workdir / "audit.key")
            run = export(engine, parts, audit_chain(cfg), now=datetime.now(UTC))
            rate = run.calls / run.seconds
            size = sum(p.stat().st_size for p in (workdir / "analytics").glob("*.parquet"))
            print(
                f"export: {run.calls:,} calls, {run.units:,} unit responses, {run.parts} parts, "
                f"{run.seconds:.1f} s = {rate:,.0f} calls/s; {size / 2**20:.0f} MiB of Parquet; "
                f"load average {os.getloadavg()}"
            )
            exported = {
                "units": run.units,
                "export_seconds": round(run.seconds, 2),
                "export_calls_per_s": round(rate),
                "parquet_mib": round(size / 2**20),
            }
        else:
            args.count = parts.manifest().calls
            print(f"reusing the store of {args.count:,} calls in {workdir / 'analytics'}")
        year = Selection(YEAR_START, datetime(2027, 1, 1, tzinfo=UTC), source="bench")
        # the /kpi page opens on the last thirty days (static/js/kpi.js)
        month = Selection(
            datetime(2026, 12, 2, tzinfo=SF), datetime(2027, 1, 1, tzinfo=SF), source="bench"
        )
        with open_analytics(parts, threads=args.threads) as figures:
            assert figures.count(year) == args.count
            in_month = figures.count(month)
        spans = {
            f"the last 30 days ({in_month:,} calls)": month,
            f"the year ({args.count:,} calls)": year,
        }
        results: dict[str, dict[str, float]] = {}
        for label, sel in spans.items():
            hours = (sel.end - sel.start).total_seconds() / 3600
            times = time_queries(parts, queries_over(sel, hours), args.rounds, args.threads)
            print(f"over {label}: {args.rounds} rounds, interleaved, each on a new connection")
            print(f"{'query':40} {'median s':>9} {'worst s':>8}  target {TARGET_S} s")
            for name, seconds in times.items():
                median = statistics.median(seconds)
                verdict = "PASS" if median <= TARGET_S else "MISS"
                print(f"{name:40} {median:9.3f} {max(seconds):8.3f}  {verdict}")
            results[label] = {n: round(statistics.median(s), 4) for n, s in times.items()}
        print(f"load average at end: {os.getloadavg()}")
        print(
            json.dumps(
                {
                    "count": args.count,
                    "in_order": not args.shuffled,
                    **exported,
                    "parts": len(parts.manifest().parts),
                    "queries_median_s": results,
                    "loadavg": os.getloadavg(),
                }
            )
        )
        engine.dispose()
    finally:
        if args.keep or reused:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
