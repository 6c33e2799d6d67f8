"""Supervision benchmark: 100,000 accounts checking in every 90 seconds.

    .venv/bin/python bench/supervision.py                # 100,000 accounts, 60 s live
    .venv/bin/python bench/supervision.py --accounts 100000 --seconds 60 --silent 0.01

1. memory: bytes per supervised account held by the tracker (tracemalloc, exact), and the
   process RSS growth per account (what the OS sees), measured apart from the device
   registry (which the receivers need anyway; reported on its own line).
2. live: the real :class:`~alarmdesk.intake.supervision.Supervisor` on uvloop with the real
   clock, its timer task running; every account checks in once per 90 s (evenly spread:
   ~1,111 check-ins/s), except a ``--silent`` share that stopped; those go missing (EQCOMM)
   as their deadline passes. Signals go to an in-memory sink (the writer is measured by
   bench/dc09.py). Reported: CPU share of the process, check-ins/s, misses raised.
3. cost of one check-in in a tight loop (µs), and of popping a due deadline.

Target: <= 1 KiB per supervised account.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import resource
import sys
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from alarmdesk.intake.devices import DeviceRegistry, device_from_row
from alarmdesk.intake.supervision import StoredState, Supervisor, Tracker

INTERVAL = 90


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def registry(n: int) -> DeviceRegistry:
    return DeviceRegistry(
        device_from_row(
            {
                "id": f"panel-{i:06X}",
                "kind": "panel",
                "site": f"Site {i}",
                "lat": 37.7,
                "lon": -122.4,
                "zones": {},
                "checkin_seconds": INTERVAL,
                "settings": {"account": f"{i:06X}"},
            }
        )
        for i in range(n)
    )


class CountingSink:
    def __init__(self) -> None:
        self.signals = 0
        self.batches = 0

    async def submit_signals(self, signals: Any) -> list[None]:
        self.signals += len(signals)
        self.batches += 1
        return [None] * len(signals)


def memory(n: int) -> dict[str, float]:
    ids = [f"panel-{i:06X}" for i in range(n)]  # the registry owns these strings
    now = time.time()
    gc.collect()
    tracemalloc.start()
    tracker = Tracker(grace=30)
    for i, device_id in enumerate(ids):
        tracker.watch(device_id, INTERVAL, now, last=now - (i % INTERVAL))
    traced, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del tracker
    gc.collect()
    rss0 = rss_bytes()
    tracker = Tracker(grace=30)
    for i, device_id in enumerate(ids):
        tracker.watch(device_id, INTERVAL, now, last=now - (i % INTERVAL))
    rss1 = rss_bytes()
    gc.collect()
    rss_reg0 = rss_bytes()
    reg = registry(n)
    rss_reg1 = rss_bytes()
    out = {
        "tracker_bytes": traced / n,
        "tracker_rss_bytes": (rss1 - rss0) / n,
        "registry_rss_bytes": (rss_reg1 - rss_reg0) / n,
        "heap": tracker.heap_size,
    }
    del reg, tracker
    return out


async def live(n: int, seconds: float, silent_share: float, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    reg = registry(n)
    sink = CountingSink()
    sup = Supervisor(sink, lambda: datetime.now(UTC), grace=30, tick=1.0)
    now = time.time()
    ids = [d.id for d in reg.supervised()]
    silent = set(rng.sample(ids, int(n * silent_share)))
    # Where each account is in its 90 s cycle: last heard of ``phase`` seconds ago. The
    # silent ones never check in again: missing 90 + 30 s after their last check-in.
    phase = {i: rng.uniform(0, INTERVAL) for i in ids}
    last = {i: datetime.fromtimestamp(now - phase[i], UTC) for i in ids}
    sup.load(reg, StoredState(failed=frozenset(), last=last), startup=False)
    del last
    # An account last heard of ``phase`` seconds ago checks in again INTERVAL - phase from now.
    active = sorted((INTERVAL - p, i) for i, p in phase.items() if i not in silent)
    runner = asyncio.create_task(sup.run())
    start = time.monotonic()
    cpu0 = time.process_time()
    checkins = k = lap = 0
    while (elapsed := time.monotonic() - start) < seconds:
        while k < len(active) and active[k][0] + lap * INTERVAL <= elapsed:
            sup.checkin(active[k][1])
            checkins += 1
            k += 1
        if k == len(active):
            k, lap = 0, lap + 1
        await asyncio.sleep(0.01)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - start
    runner.cancel()
    return {
        "cpu_share": cpu / wall,
        "checkins_per_s": checkins / wall,
        "missed": sup.stats.missed,
        "silent": len(silent),
        "wall": wall,
        "heap": sup.tracker.heap_size,
    }


def micro(n: int) -> dict[str, float]:
    tracker = Tracker(grace=30)
    now = time.time()
    ids = [f"panel-{i:06X}" for i in range(n)]
    for device_id in ids:
        tracker.watch(device_id, INTERVAL, now)
    t0 = time.perf_counter()
    for i, device_id in enumerate(ids):
        tracker.checkin(device_id, now + 1 + i * 1e-6)
    checkin_us = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    due = tracker.due(now + 10 * INTERVAL)
    due_us = (time.perf_counter() - t0) / max(1, len(due)) * 1e6
    return {"checkin_us": checkin_us, "due_us": due_us, "due": len(due)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--silent", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import uvloop

    n = args.accounts
    mem = memory(n)
    result = uvloop.run(live(n, args.seconds, args.silent, args.seed))
    m = micro(n)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"supervision of {n:,} accounts, check-in every {INTERVAL} s, grace 30 s")
    print(
        f"  memory per account: tracker {mem['tracker_bytes']:.0f} B (tracemalloc), "
        f"{mem['tracker_rss_bytes']:.0f} B (RSS growth)   (target <= 1,024 B); "
        f"heap entries {mem['heap']:,} (one per account)"
    )
    print(
        f"  device registry (shared with the receivers): {mem['registry_rss_bytes']:.0f} B "
        f"per account (RSS growth); process max RSS {maxrss / 2**20:.0f} MiB"
    )
    print(
        f"  live {result['wall']:.0f} s: {result['checkins_per_s']:,.0f} check-ins/s, "
        f"CPU share {result['cpu_share'] * 100:.1f} % of one core, "
        f"{result['missed']} of {result['silent']} silent accounts reported missing so far, "
        f"heap entries {result['heap']:,}"
    )
    print(
        f"  one check-in {m['checkin_us']:.2f} us; one due deadline popped "
        f"{m['due_us']:.2f} us ({m['due']:,} at once)"
    )


if __name__ == "__main__":
    main()
