"""A reproducible, realistic feed for a running alarmdesk.

The mix replays a real week of San Francisco fire-department calls (the demo city) in
order, and interleaves what a control room also gets: duty reports from staff, intruder
and fire panels (with their repeats, troubles and the odd unknown code) and camera
detections. The same ``seed`` gives the same sequence of signals; ``run_id`` keeps the
idempotency keys of two runs apart.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import httpx

DUTY_TYPES = ["SUSP", "VANDAL", "FSMOKE", "TRESPASS", "WELFARE", "ODOR", "WIRES", "THAZ", "OPEN"]
PANEL_EVENTS = [  # (weight, type code, zone, summary)
    (50, "ALRBS", "1", "Burglary, entry/exit door"),
    (15, "ALRBS", "2", "Burglary, interior PIR"),
    (10, "ALRF", "3", "Fire alarm, smoke detector"),
    (5, "ALRPANS", "4", "Silent panic, reception"),
    (17, "EQTRBL", "0", "AC power loss"),
    (3, "X99", "9", "Panel reported an unmapped code"),
]


def load_city() -> dict[str, Any]:
    text = (resources.files("alarmdesk") / "data" / "demo_city.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def _jitter(rng: random.Random, lat: float, lon: float, metres: float) -> tuple[float, float]:
    d = metres / 111_320
    return round(lat + rng.uniform(-d, d), 6), round(lon + rng.uniform(-d, d), 6)


def feed(
    city: dict[str, Any],
    seed: int,
    run_id: str,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Iterator[dict[str, Any]]:
    """An endless sequence of signals (JSON-ready dicts), deterministic for a seed."""
    rng = random.Random(seed)
    calls = city["calls"]
    accounts = city["accounts"]
    cameras = city["cameras"]
    panel_weights = [w for w, *_ in PANEL_EVENTS]
    i = 0
    call_i = rng.randrange(len(calls))
    pending_repeat: dict[str, Any] | None = None
    while True:
        i += 1
        roll = rng.random()
        base: dict[str, Any]
        if pending_repeat is not None and roll < 0.5:
            base, pending_repeat = pending_repeat, None  # a second caller, same incident
        elif roll < 0.55:
            call = calls[call_i % len(calls)]
            call_i += 1
            lat, lon = call["lat"], call["lon"]
            base = {
                "source_kind": "call",
                "source_id": f"calltaker-{rng.randint(1, 6)}",
                "type_code": call["type"],
                "location": {"lat": lat, "lon": lon, "address": call["address"]},
                "summary": f"Caller reports: {call['sf_type']}",
            }
            if rng.random() < 0.1:
                rlat, rlon = _jitter(rng, lat, lon, 40)
                pending_repeat = {
                    **base,
                    "source_id": f"calltaker-{rng.randint(1, 6)}",
                    "location": {"lat": rlat, "lon": rlon, "address": call["address"]},
                    "summary": "Second caller, same incident",
                }
        elif roll < 0.65:
            call = calls[rng.randrange(len(calls))]
            lat, lon = _jitter(rng, call["lat"], call["lon"], 100)
            base = {
                "source_kind": "duty",
                "source_id": f"staff-{rng.randint(1, 20)}",
                "type_code": rng.choice(DUTY_TYPES),
                "location": {"lat": lat, "lon": lon},
                "summary": "Reported by staff on patrol",
            }
        elif roll < 0.9:
            acct = accounts[rng.randrange(len(accounts))]
            _, code, zone, summary = rng.choices(PANEL_EVENTS, panel_weights)[0]
            base = {
                "source_kind": "equipment",
                "source_id": f"panel-{acct['account']}",
                "type_code": code,
                "location": {
                    "lat": acct["lat"],
                    "lon": acct["lon"],
                    "site": acct["site"],
                    "zone": zone,
                },
                "summary": f"{summary} ({acct['zones'].get(zone, 'zone ' + zone)})",
                "payload": {"account": acct["account"], "zone": zone},
            }
        else:
            cam = cameras[rng.randrange(len(cameras))]
            label = rng.choice(["person", "person", "car"])
            base = {
                "source_kind": "equipment",
                "source_id": cam["id"],
                "type_code": "TRESPASS" if label == "person" else "VEHSUSP",
                "location": {
                    "lat": cam["lat"],
                    "lon": cam["lon"],
                    "site": cam["site"],
                    "zone": rng.choice(cam["zones"]),
                },
                "summary": f"Camera detected a {label} after hours",
                "payload": {"label": label, "score": round(rng.uniform(0.7, 0.99), 2)},
            }
        yield {**base, "occurred_at": now().isoformat(), "idempotency_key": f"sim-{run_id}-{i}"}


@dataclass
class SimulationReport:
    sent: int = 0
    accepted: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


async def run(
    url: str,
    rate: float,
    duration: float,
    *,
    seed: int = 1,
    run_id: str | None = None,
    concurrency: int = 64,
    on_progress: Callable[[SimulationReport], None] | None = None,
    headers: dict[str, str] | None = None,
) -> SimulationReport:
    """Sends ``rate`` signals a second for ``duration`` seconds (0: until cancelled)."""
    report = SimulationReport()
    signals = feed(load_city(), seed, run_id or uuid.uuid4().hex[:8])
    sem = asyncio.Semaphore(concurrency)
    start = time.monotonic()
    total = int(rate * duration) if duration > 0 else None
    tasks: set[asyncio.Task[None]] = set()

    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=30, headers=headers) as client:

        async def send(body: dict[str, Any]) -> None:
            try:
                r = await client.post("/api/v1/signals", json=body)
                if r.status_code == 202:
                    report.accepted += 1
                else:
                    report.failed += 1
                    code = r.json().get("error", {}).get("code", str(r.status_code))
                    report.errors[code] = report.errors.get(code, 0) + 1
            except httpx.HTTPError as exc:
                report.failed += 1
                name = type(exc).__name__
                report.errors[name] = report.errors.get(name, 0) + 1
            finally:
                sem.release()
                if on_progress is not None:
                    on_progress(report)

        try:
            while total is None or report.sent < total:
                due = start + report.sent / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await sem.acquire()
                task = asyncio.create_task(send(next(signals)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                report.sent += 1
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            report.seconds = time.monotonic() - start
    return report
