"""CPU per DC-09 frame in the receiver itself, in process, without sockets or a database.

    PYTHONPATH=src .venv/bin/python bench/dc09_frame_cost.py            # 20,000 frames x 5
    PYTHONPATH=src .venv/bin/python bench/dc09_frame_cost.py --frames 5000 --rounds 3

``Dc09Receiver.handle`` is driven directly with the frames of bench/dc09.py (500 panels, half
AES-128, the same event mix) and a sink that stores nothing, so the figure is what the
receiver does per frame before the writer: parse, decrypt, check, build and validate the
signal, build the ACK. It is process CPU time, so neighbours taking the core barely move it
(they still share the caches). Each round is timed on its own and the lowest is reported with
all rounds. Where ``domain.signal.validate`` exists, its own cost per call is timed in the same
loop as well (thread CPU time around each call).

bench/dc09.py measures the receiver with the writer and TCP; this isolates the part that
``validate`` made dearer, to compare commits on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))
sys.path.insert(0, str(BENCH))

import dc09  # noqa: E402  (the panels and the mix of the receiver benchmark)

import alarmdesk.intake.dc09.receiver as receiver_module  # noqa: E402
from alarmdesk.intake.devices import DeviceRegistry, device_from_row  # noqa: E402


class NullSink:
    async def submit_signals(self, signals: Sequence[Any]) -> list[Any]:
        return [None] * len(signals)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--frames", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--panels", type=int, default=500)
    args = ap.parse_args()

    at = datetime.now(UTC).replace(microsecond=0)
    rows = [
        {
            "id": f"panel-{dc09.account(i)}",
            "kind": "panel",
            "site": f"Bench site {i}",
            "lat": 37.7 + (i % 100) / 1000,
            "lon": -122.4 - (i // 100) / 1000,
            "zones": {str(z): f"Zone {z}" for z in range(1, 5)},
            "checkin_seconds": 90,
            "settings": {
                "account": dc09.account(i),
                **({"key_hex": dc09.KEY.hex()} if i % 2 else {}),
            },
        }
        for i in range(args.panels)
    ]
    validate_cpu = [0.0, 0]
    original = getattr(receiver_module, "validate", None)
    if original is not None:

        def timed_validate(signal: Any, now: datetime) -> Any:
            t0 = time.thread_time()
            try:
                return original(signal, now)
            finally:
                validate_cpu[0] += time.thread_time() - t0
                validate_cpu[1] += 1

        receiver_module.validate = timed_validate  # type: ignore[attr-defined]

    registry = DeviceRegistry([device_from_row(r) for r in rows])
    rx = receiver_module.Dc09Receiver(NullSink(), registry, clock=lambda: at)
    rng = random.Random(1)
    panels = [dc09.Panel(i, rng, at) for i in range(args.panels)]

    def frames(n: int) -> list[bytes]:
        return [panels[k % len(panels)].next_frame() for k in range(n)]

    async def run(batch: list[bytes]) -> None:
        handle = rx.handle
        for frame in batch:
            await handle(frame)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(frames(2_000)))  # warm-up: caches, imports
    validate_cpu[:] = [0.0, 0]
    rounds = []
    for _ in range(args.rounds):
        batch = frames(args.frames)
        t0 = time.process_time()
        loop.run_until_complete(run(batch))
        rounds.append((time.process_time() - t0) / args.frames * 1e6)
    loop.close()
    stored = rx.stats["stored_signals"]
    if stored != 2_000 + args.frames * args.rounds:
        raise SystemExit(f"frames not all stored: {dict(rx.stats)}")
    out = {
        "frames": args.frames,
        "rounds_us_per_frame": [round(r, 1) for r in rounds],
        "best_us_per_frame": round(min(rounds), 1),
        "validate_us": round(validate_cpu[0] / validate_cpu[1] * 1e6, 2)
        if validate_cpu[1]
        else None,
    }
    print(
        f"DC-09 receiver, in process: {out['best_us_per_frame']} us CPU per frame (best of"
        f" {args.rounds}: {out['rounds_us_per_frame']}); validate {out['validate_us']} us"
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
