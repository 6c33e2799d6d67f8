"""Routing and silence matching per signal, with 10,000 rules, 10,000 silences and 100,000 open
incidents; and the escalation timers' cost when idle (issue 9's benchmark).

    .venv/bin/python bench/routing.py            # about a minute
    .venv/bin/python bench/routing.py --quick    # smaller counts, seconds

Prints a table and one JSON line. The figures are CPU time of the pure functions the writer
calls for every new signal (``domain.routing.evaluate``, ``domain.silences.silencing``) and of
the pipeline's ``ingest`` with and without them, so the ratio is what routing and silences add;
a measurement, not a test: the exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.escalation import EscalationSpec
from alarmdesk.domain.routing import Facts, RouteSpec, compile_routes, evaluate
from alarmdesk.domain.signal import Location, Signal, SourceKind
from alarmdesk.domain.silences import (
    Silences,
    SilenceSpec,
    compile_silence,
    silencing,
)
from alarmdesk.domain.taxonomy import Taxonomy, default_types
from alarmdesk.domain.units import Desk
from alarmdesk.pipeline import Pipeline

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
CATEGORIES = [h.value for h in HarmCategory]
TARGET_US = 50.0


def rules(n: int, rng: random.Random) -> list[RouteSpec]:
    """The rules a large alarm-receiving centre writes: mostly one per panel (90 %, a tenth
    of them for a family of panels, ``panel-03*``), per site (9 %), and a few general ones
    (1 %: category and priority, night-time), the last one catching everything."""
    out: list[dict[str, object]] = []
    for i in range(n):
        share = i % 100
        if share < 81:
            match: dict[str, object] = {"devices": [f"panel-{rng.randrange(200_000):05X}"]}
        elif share < 90:
            match = {"devices": [f"panel-{rng.randrange(4096):03X}*"]}
        elif share < 99:
            match = {"sites": [f"site {rng.randrange(100_000)} *"]}
        elif i % 2:
            match = {"categories": [rng.choice(CATEGORIES)], "priorities": [rng.randint(1, 5)]}
        else:
            match = {
                "categories": [rng.choice(CATEGORIES)],
                "hours": "18:00-07:00",
                "timezone": "Europe/London",
            }
        out.append({"id": f"r{i}", "match": match, "desks": [f"d{i % 20}"]})
    out.append({"id": "catch-all", "desks": ["d0"]})
    return msgspec.convert(out, list[RouteSpec])


def silences(n: int, rng: random.Random) -> list:
    made = []
    for i in range(n):  # 90 % for one panel, 10 % for a site and a type
        if i % 10:
            match: dict[str, object] = {"devices": [f"panel-{rng.randrange(200_000):05X}"]}
        else:
            match = {"sites": [f"site {rng.randrange(100_000)} *"], "types": ["ALRBS"]}
        spec = msgspec.convert(
            {
                "match": match,
                "reason": "maintenance",
                "starts_at": T0.isoformat(),
                "weekly": [{"days": ["tue"], "hours": "06:00-08:00", "timezone": "UTC"}],
            },
            SilenceSpec,
        )
        made.append(compile_silence(i + 1, spec, T0, CATEGORIES))
    return made


def facts_stream(n: int, rng: random.Random) -> list[Facts]:
    out = []
    for i in range(n):
        out.append(
            Facts(
                rng.choice(list(HarmCategory)),
                "ALRBS",
                rng.randint(1, 5),
                SourceKind.EQUIPMENT,
                f"panel-{rng.randrange(200_000):05X}",
                Location(lat=51.5, lon=-0.1, site=f"site {rng.randrange(100_000)} north"),
                T0 + timedelta(seconds=i),
            )
        )
    return out


def per_call_us(fn, items) -> float:  # type: ignore[no-untyped-def]
    start = time.process_time()
    for x in items:
        fn(x)
    return (time.process_time() - start) / len(items) * 1e6


def ingest_cost(pipeline: Pipeline, n: int, rng: random.Random) -> float:
    sigs = [
        Signal(
            id=10_000_000 + i,
            idempotency_key=f"b{i}",
            content_digest="d",
            received_at=T0 + timedelta(seconds=i),
            source_kind=SourceKind.EQUIPMENT,
            source_id=f"panel-{rng.randrange(200_000):05X}",
            type_code="ALRF",
            occurred_at=T0 + timedelta(seconds=i),
            location=Location(lat=51.5, lon=-0.1, zone=str(rng.randrange(8)), site="site 1 x"),
            summary="",
            payload={},
        )
        for i in range(n)
    ]
    return per_call_us(pipeline.ingest, sigs)


def populated(
    n_open: int, routes: tuple, held: list, policies: list[EscalationSpec], rng: random.Random
) -> Pipeline:
    p = Pipeline(
        Taxonomy(default_types()),
        [Desk(f"d{i}", f"Desk {i}") for i in range(20)],
        routes=routes,
        silences=held,
        policies=policies,
    )
    for i in range(n_open):
        p.ingest(
            Signal(
                id=i + 1,
                idempotency_key=f"o{i}",
                content_digest="d",
                received_at=T0,
                source_kind=SourceKind.CALL,
                source_id="ct",
                type_code="MEDIC" if "MEDIC" in p.taxonomy else "FSTRU",
                occurred_at=T0,
                location=Location(lat=50 + rng.random() * 5, lon=-5 + rng.random() * 5),
                summary="",
                payload={},
            )
        )
    return p


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_rules = 1_000 if args.quick else 10_000
    n_open = 10_000 if args.quick else 100_000
    n_signals = 500 if args.quick else 2_000
    rng = random.Random(7)

    specs = rules(n_rules, rng)
    t = time.perf_counter()
    compiled = compile_routes(specs)
    compile_s = time.perf_counter() - t
    held = silences(n_rules, rng)
    stream = facts_stream(n_signals, rng)
    route_us = per_call_us(lambda f: evaluate(compiled, f, "fb"), stream)
    indexed = Silences(held)
    silence_us = per_call_us(lambda f: silencing(indexed, f), stream)

    policies = msgspec.convert(
        [{"id": "p", "steps": [{"after_seconds": 60}, {"after_seconds": 120}]}],
        list[EscalationSpec],
    )
    plain = populated(n_open, (), [], [], random.Random(1))
    full = populated(n_open, compiled, held, policies, random.Random(1))
    base_us = ingest_cost(plain, n_signals, random.Random(2))
    with_us = ingest_cost(full, n_signals, random.Random(2))

    # Escalation when idle: the writer asks for the next due time, and fires what is due.
    samples = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(1000):
            full.next_due()
            full.fire_due(T0)  # nothing is due yet at T0
        samples.append((time.process_time() - start) / 1000 * 1e6)
    idle_us = statistics.median(samples)

    per_signal = route_us + silence_us
    rows = [
        ("routing rules", f"{n_rules + 1:,}"),
        ("silences", f"{n_rules:,}"),
        ("open incidents", f"{n_open:,}"),
        ("compile the routing tree", f"{compile_s * 1000:.0f} ms"),
        ("routing, per signal", f"{route_us:.1f} µs"),
        ("silence matching, per signal", f"{silence_us:.1f} µs"),
        (
            "routing + silences, per signal",
            f"{per_signal:.1f} µs "
            f"({'PASS' if per_signal <= TARGET_US else 'MISS'} ≤ {TARGET_US:.0f})",
        ),
        ("pipeline ingest, no rules", f"{base_us:.1f} µs"),
        ("pipeline ingest, rules + silences + escalation", f"{with_us:.1f} µs"),
        ("ratio", f"{with_us / base_us:.2f}"),
        ("escalation check when idle", f"{idle_us:.2f} µs per wake-up"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    print(
        json.dumps(
            {
                "rules": n_rules + 1,
                "silences": n_rules,
                "open_incidents": n_open,
                "route_us": round(route_us, 2),
                "silence_us": round(silence_us, 2),
                "ingest_us": round(base_us, 2),
                "ingest_with_rules_us": round(with_us, 2),
                "idle_escalation_us": round(idle_us, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
