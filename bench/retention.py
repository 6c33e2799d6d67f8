"""Retention's reads over a large store: how long a run of the incidents class takes.

    .venv/bin/python bench/retention.py                       # 200,000 incidents, SQLite, temp dir
    .venv/bin/python bench/retention.py --incidents 50000 --history 20000
    .venv/bin/python bench/retention.py --database-url postgresql://postgres@127.0.0.1/empty_db

A database at the newest schema (``--database-url``: an empty one, which the benchmark
migrates and fills) gets ``--incidents`` incidents opened three minutes apart from
2025-01-01, 90 % closed an hour later, 6 % cancelled, 4 % still open (new or acknowledged),
over seven of the taxonomy's categories; ``--deliveries`` rows of a webhook's delivery log
naming them; and ``--history`` imported history calls closed over the same years. The policy
keeps incidents 30 days and fire 20 (one category override, so two groups are walked).
Then, as ``alarmdesk retention run`` does it (``service.retention.run_retention``, the
incidents class only, chunks of 500):

1. a dry run of everything expired: it only reads, chunk by chunk;
2. a real run up to ``max_rows_per_run`` (100,000 by default): a transaction a chunk, each
   with its audit entry, resting between chunks as long as the chunk took. On SQLite a probe
   thread meanwhile takes the database's write lock and gives it back (``BEGIN IMMEDIATE``,
   ``ROLLBACK``, no wait) every millisecond, as the writer would take it for the next alarm:
   the longest stretch it was locked out is how long an alarm would have waited.

Prints the seconds and milliseconds a chunk of each, then one JSON line. Compare two
checkouts with ``bench/ab.py retention.py``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from alarmdesk.safeguards.retention_policy import DataClass, RetentionConfig
from alarmdesk.service.retention import run_retention
from alarmdesk.store import tables as t
from alarmdesk.store.audit import AuditChain, Signer
from alarmdesk.store.database import make_engine, upgrade

START = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, tzinfo=UTC)
POLICY = RetentionConfig(incidents_days=30, incidents_by_category={"fire": 20})
BATCH = 500
CATEGORIES = ("fire", "medical", "violence", "property", "traffic", "hazard", "rescue")


def fill(engine: sa.Engine, incidents: int, history: int, deliveries: int = 0) -> None:
    def incident(n: int) -> dict[str, Any]:
        opened = START + timedelta(minutes=3 * n)
        status = ("closed",) * 90 + ("cancelled",) * 6 + ("new",) * 3 + ("acknowledged",)
        st = status[(n * 37) % 100]
        ended = opened + timedelta(hours=1)
        return {
            "id": n,
            "type_code": "FSTRU",
            "category": CATEGORIES[n % len(CATEGORIES)],
            "priority": 1 + n % 5,
            "status": st,
            "condition": "active",
            "source_kind": "call",
            "source_id": f"call-{n}",
            "summary": "bench",
            "desks": [],
            "units": [],
            "signal_count": 1,
            "version": 1,
            "first_seen": opened,
            "last_seen": opened,
            "opened_at": opened,
            "closed_at": ended if st == "closed" else None,
            "cancelled_at": ended if st == "cancelled" else None,
        }

    def call(n: int) -> dict[str, Any]:
        # imported in one go, in the old system's order, not in time order
        at = START + timedelta(minutes=(n * 7919) % (history * 3 or 1))
        return {
            "source": "bench",
            "call_id": str(n),
            "type_code": "FSTRU",
            "category": CATEGORIES[n % len(CATEGORIES)],
            "priority": 2,
            "received": at,
            "closed_at": at + timedelta(hours=1),
            "imported_at": NOW,
        }

    def delivery(n: int) -> dict[str, Any]:
        # a webhook's log: the incidents' events delivered to another system, in turn
        return {
            "webhook_id": 1,
            "event_id": n + 1,
            "incident_id": 1 + n % incidents,
            "attempt": 1,
            "at": START + timedelta(minutes=3 * (1 + n % incidents)),
            "outcome": "delivered",
            "status": 204,
            "duration_ms": 3,
        }

    with engine.begin() as conn:
        for lo in range(1, incidents + 1, 10_000):
            conn.execute(
                t.incidents.insert(),
                [incident(n) for n in range(lo, min(lo + 10_000, incidents + 1))],
            )
        for lo in range(0, deliveries, 10_000):
            conn.execute(
                t.webhook_deliveries.insert(),
                [delivery(n) for n in range(lo, min(lo + 10_000, deliveries))],
            )
        for lo in range(0, history, 10_000):
            conn.execute(
                t.history_calls.insert(), [call(n) for n in range(lo, min(lo + 10_000, history))]
            )


class LockProbe(threading.Thread):
    """Takes SQLite's write lock and gives it back every millisecond; keeps the longest
    stretch and the sum of the time it could not."""

    def __init__(self, path: str) -> None:
        super().__init__(daemon=True)
        self.path, self.done = path, threading.Event()
        self.longest = self.total = 0.0

    def run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        since: float | None = None
        while not self.done.is_set():
            now = time.perf_counter()
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                if since is not None:
                    self.longest = max(self.longest, now - since)
                    self.total += now - since
                    since = None
            except sqlite3.OperationalError:
                since = now if since is None else since
            time.sleep(0.001)
        conn.close()


def timed(engine: sa.Engine, chain: AuditChain, **kw: Any) -> dict[str, Any]:
    probe = None
    if engine.dialect.name == "sqlite" and not kw.get("dry_run"):
        probe = LockProbe(str(engine.url.database))
        probe.start()
    started = time.perf_counter()
    run = run_retention(
        engine, POLICY, chain, NOW, batch=BATCH, classes=[DataClass.INCIDENTS], **kw
    )
    seconds = time.perf_counter() - started
    rows = run.counts[DataClass.INCIDENTS.value]
    chunks = max(1, -(-rows // BATCH))
    out = {
        "rows": rows,
        "history_calls": run.history_calls,
        "seconds": round(seconds, 3),
        "ms_per_chunk": round(1000 * seconds / chunks, 2),
    }
    if probe is not None:
        time.sleep(0.01)  # the probe's next try, after the commit
        probe.done.set()
        probe.join()
        out["locked_out_longest_s"] = round(probe.longest, 3)
        out["locked_out_total_s"] = round(probe.total, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--incidents", type=int, default=200_000)
    ap.add_argument("--history", type=int, default=100_000)
    ap.add_argument(
        "--deliveries", type=int, default=400_000, help="webhook deliveries logged, by incident"
    )
    ap.add_argument(
        "--max-rows", type=int, default=POLICY.max_rows_per_run, help="the real run's limit"
    )
    ap.add_argument("--database-url", help="an empty database (default: SQLite in a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'retention.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            started = time.perf_counter()
            fill(engine, args.incidents, args.history, args.deliveries)
            print(
                f"filled {args.incidents:,} incidents, {args.deliveries:,} webhook deliveries"
                f" and {args.history:,} history calls "
                f"in {time.perf_counter() - started:.1f} s ({engine.dialect.name})",
                file=sys.stderr,
            )
            chain = AuditChain(Signer.load_or_create(Path(tmp) / "audit.key"), "bench")
            dry = timed(engine, chain, dry_run=True, max_rows=10**9)
            real = timed(engine, chain, max_rows=args.max_rows)
        finally:
            engine.dispose()
    for name, r in (
        ("dry run, everything expired", dry),
        ("real run, a transaction a chunk", real),
    ):
        print(
            f"{name:30} {r['rows']:>9,} rows ({r['history_calls']:,} history calls)"
            f" {r['seconds']:>8.2f} s  {r['ms_per_chunk']:>7.2f} ms a chunk"
        )
    if "locked_out_longest_s" in real:
        print(
            f"{'':30} a writer locked out for {real['locked_out_longest_s'] * 1000:.1f} ms at"
            f" the longest, {real['locked_out_total_s']:.2f} s in all"
        )
    print(
        json.dumps(
            {
                "store": engine.dialect.name,
                "incidents": args.incidents,
                "history": args.history,
                "dry": dry,
                "real": real,
            }
        )
    )


if __name__ == "__main__":
    main()
