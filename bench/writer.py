"""The writer alone, in process: CPU per signal by how many requests a transaction takes.

    .venv/bin/python bench/writer.py                 # groups 1, 8, 32, 128; ~1 minute
    .venv/bin/python bench/writer.py --signals 20000 --groups 1,32 --rounds 3

No HTTP, no sockets: a fresh copy of a demo database (``alarmdesk db upgrade`` and ``demo
load``), the services ``alarmdesk serve`` builds, and the signal mix of ``_signals.py``. For a
group size G, G single-signal requests are handed to ``Writer.submit_signals`` together, each
its own request with its actor (as ``POST /api/v1/signals`` hands them over), and the next G
once all are committed, so every transaction holds G requests. ``one request`` hands the same
signals over as one request of G (as ``/signals/batch`` does).

It prints the process CPU per signal (the writer thread, and the event loop's small part:
decoding and awaiting) and fits ``cost(G) = F / G + v`` by least squares over the group sizes:
F is what a transaction costs whatever it holds (COMMIT, the idempotency look-up, the audit
chain's append, the metrics), v what each single-signal request adds. Run pinned to one core
(``taskset -c 0``) on a shared machine; CPU time is steadier than wall time there. The
collector runs at the thresholds ``alarmdesk serve`` sets (``web/server.GC_THRESHOLDS``).

``--floor`` also measures what SQLite alone costs for the same work: every statement the
writer's connection ran during a run (reads, inserts, updates, with the driver's own
parameters, recorded from SQLAlchemy's ``before_cursor_execute``) is replayed with the stdlib
``sqlite3`` on a fresh copy of the same database, with the same pragmas (WAL,
``synchronous=FULL``), each transaction committed where the writer committed it. No Python
work remains but the driver calls, so the figure is the floor under the writer's CPU per
signal while it stores these rows this way: the pipeline, the unit of work and the
interpreter cost the difference.

``--wal`` shows what each commit writes to SQLite's log: the same recorded statements are
replayed with automatic checkpoints off, the log's frames are read back (each frame is one
whole page, written by two ``write`` calls and flushed at COMMIT; a checkpoint later copies
it into the database file), and each page is named by the table or index that owns it
(SQLite's ``dbstat`` table). It prints frames per commit by B-tree and the log's bytes per
signal, for the last group given (``--groups 32``: 32 single-signal requests a transaction,
about what 64 connections give over HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _signals

from alarmdesk import config as config_mod
from alarmdesk.bootstrap import build_services
from alarmdesk.domain.signal import decode_one
from alarmdesk.safeguards.audit import Actor
from alarmdesk.web.server import GC_THRESHOLDS

ACTOR = Actor("token:1", "intake", "0123456789abcdef", "127.0.0.1")


def prepare(tmp: Path) -> Path:
    template = tmp / "template.db"
    url = f"sqlite:///{template}"
    for args in (["db", "upgrade"], ["demo", "load"]):
        subprocess.run(
            [sys.executable, "-m", "alarmdesk.cli", *args, "--database-url", url],
            check=True,
            capture_output=True,
        )
    return template


# One transaction as the driver saw it: (statement, parameters, executemany) in order.
Transaction = list[tuple[str, Any, bool]]


def run(
    template: Path,
    tmp: Path,
    group: int,
    signals: int,
    one_request: bool,
    tag: str,
    record: list[Transaction] | None = None,
) -> float:
    """Process CPU seconds per signal for ``signals`` signals in transactions of ``group``.

    With ``record``, the statements of the timed part are appended to it, a list a commit."""
    db = tmp / f"{tag}.db"
    shutil.copy(template, db)
    cfg = config_mod.load(None, env={"ALARMDESK_DATABASE_URL": f"sqlite:///{db}"})
    cfg.audit.key_file = str(tmp / "audit.key")
    svc = build_services(cfg)
    writer = svc.writer
    writer.start()
    if record is not None:
        recorder(svc.engine, record)
    try:
        now = datetime.now(UTC)
        pool = _signals.variants(5000, 7, now)
        bodies = []
        for i in range(signals):
            d = dict(pool[i % len(pool)])
            d["idempotency_key"] = f"{tag}-{i:09d}"
            bodies.append(msgspec.json.encode(d))

        async def drive() -> float:
            started = time.process_time()
            for i in range(0, signals, group):
                chunk = [decode_one(b, datetime.now(UTC)) for b in bodies[i : i + group]]
                if one_request:
                    await writer.submit_signals(chunk, actor=ACTOR)
                else:
                    await asyncio.gather(*(writer.submit_signals([s], actor=ACTOR) for s in chunk))
            return time.process_time() - started

        cpu = asyncio.run(drive())
    finally:
        writer.stop()
        svc.engine.dispose()
    _remove(db)
    return cpu / signals


def recorder(engine: sa.Engine, into: list[Transaction]) -> None:
    """Appends every statement ``engine`` runs from now on to ``into``, a list a commit.

    Recording costs the writer a little CPU; a recorded run's own figure is not reported."""
    current: Transaction = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _statement(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
    ) -> None:
        current.append((statement, list(parameters) if many else parameters, many))

    @sa.event.listens_for(engine, "commit")
    def _commit(_conn: Any) -> None:
        if current:
            into.append(list(current))
            current.clear()


def replay(template: Path, tmp: Path, transactions: list[Transaction], tag: str) -> float:
    """Process CPU seconds the stdlib ``sqlite3`` takes to run ``transactions`` on a fresh
    copy of ``template``, with the pragmas of ``store/database.make_engine``."""
    db = tmp / f"{tag}.db"
    conn = _fresh_copy(template, db)
    started = time.process_time()
    _run_all(conn, transactions)
    cpu = time.process_time() - started
    conn.close()
    _remove(db)
    return cpu


def _fresh_copy(template: Path, db: Path) -> sqlite3.Connection:
    """A connection to a new copy of ``template`` at ``db``, with the server's pragmas."""
    shutil.copy(template, db)
    conn = sqlite3.connect(db, timeout=30)  # as pysqlite under SQLAlchemy: implicit BEGIN
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _run_all(conn: sqlite3.Connection, transactions: list[Transaction]) -> None:
    """Runs the recorded statements, committed where the writer committed."""
    cur = conn.cursor()
    for statements in transactions:
        for sql, params, many in statements:
            if many:
                cur.executemany(sql, params)
            else:
                cur.execute(sql, params)
                cur.fetchall()
        conn.commit()


def _remove(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def wal_pages(template: Path, tmp: Path, transactions: list[Transaction]) -> dict[str, Any]:
    """Replays ``transactions`` on a fresh copy of ``template`` with automatic checkpoints off
    and reads the frames the log holds then: per commit, how many pages of each B-tree."""
    db = tmp / "wal.db"
    conn = _fresh_copy(template, db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the log starts empty
    conn.execute("PRAGMA wal_autocheckpoint=0")
    _run_all(conn, transactions)
    try:
        owner: dict[int, str] = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    except sqlite3.OperationalError as exc:  # a SQLite built without the dbstat table
        conn.close()
        raise SystemExit(f"--wal needs SQLite's dbstat table: {exc}") from None
    log = Path(f"{db}-wal").read_bytes()
    conn.close()
    _remove(db)
    page_size = struct.unpack(">I", log[8:12])[0]
    frame = 24 + page_size  # a frame: its 24-byte header, then the page
    by_tree: dict[str, int] = {}
    commits = frames = 0
    for offset in range(32, len(log) - frame + 1, frame):  # after the log's 32-byte header
        page, size_after_commit = struct.unpack(">II", log[offset : offset + 8])
        name = owner.get(page, "(freed since)")
        by_tree[name] = by_tree.get(name, 0) + 1
        frames += 1
        commits += size_after_commit != 0  # a commit's last frame says the database's size
    return {
        "commits": commits,
        "frames_per_commit": frames / commits,
        "log_bytes": frames * frame,
        "by_tree": {k: n / commits for k, n in sorted(by_tree.items(), key=lambda kv: -kv[1])},
    }


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares of cost = F * (1/G) + v; returns (F, v) in the cost's unit."""
    xs = [1 / g for g, _ in points]
    ys = [c for _, c in points]
    n = len(points)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    f = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return f, my - f * mx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--signals", type=int, default=8000, help="signals per run")
    ap.add_argument("--groups", default="1,8,32,128", help="requests per transaction")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each; the least CPU counts")
    ap.add_argument(
        "--floor",
        action="store_true",
        help="also replay each group's statements with the stdlib sqlite3 (SQLite alone)",
    )
    ap.add_argument(
        "--wal",
        action="store_true",
        help="also show the pages each commit writes to the log, by table and index",
    )
    args = ap.parse_args()
    groups = [int(g) for g in args.groups.split(",")]
    gc.set_threshold(*GC_THRESHOLDS)  # as the server runs (its cost was a fifth at the default)
    tmp = Path(tempfile.mkdtemp(prefix="alarmdesk-writer-bench-"))
    wal: dict[str, Any] = {}
    try:
        template = prepare(tmp)
        best: dict[str, float] = {}
        for r in range(args.rounds):
            for g in groups:
                for one in (False, True):
                    if one and g == 1:
                        continue  # the same as one single request
                    key = f"{'one request of' if one else 'requests of 1 x'} {g}"
                    us = run(template, tmp, g, args.signals, one, f"r{r}g{g}{int(one)}") * 1e6
                    best[key] = min(best.get(key, us), us)
                    print(f"round {r + 1}: {key:24} {us:8.1f} us CPU/signal", flush=True)
            if args.floor:
                for g in groups:
                    for one in (False, True):
                        if one and g == 1:
                            continue
                        txns: list[Transaction] = []
                        tag = f"f{r}g{g}{int(one)}"
                        run(template, tmp, g, args.signals, one, tag, txns)
                        kind = "one request of" if one else "requests of 1 x"
                        key = f"SQLite alone, {kind} {g}"
                        us = replay(template, tmp, txns, f"r{tag}") / args.signals * 1e6
                        best[key] = min(best.get(key, us), us)
                        print(f"round {r + 1}: {key:36} {us:8.1f} us CPU/signal", flush=True)
        if args.wal:
            recorded: list[Transaction] = []
            run(template, tmp, groups[-1], args.signals, False, "wal", recorded)
            wal = wal_pages(template, tmp, recorded)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    singles = [(g, best[f"requests of 1 x {g}"]) for g in groups]
    print(f"\nwriter in process, {args.signals:,} signals a run, least CPU of {args.rounds}:")
    for key, us in best.items():
        print(f"  {key:36} {us:8.1f} us CPU/signal")
    result: dict[str, object] = {"us_per_signal": best, "signals": args.signals}
    if len(singles) >= 2:
        f, v = fit(singles)
        print(f"  fit of single requests: F = {f:,.0f} us a transaction, v = {v:.0f} us a request")
        result |= {"fixed_us_per_transaction": f, "us_per_request": v}
    if args.wal:
        g = groups[-1]
        print(
            f"\nthe log, {g} single-signal requests a transaction: "
            f"{wal['frames_per_commit']:.1f} pages a commit "
            f"({wal['log_bytes'] / args.signals / 1024:.1f} KiB a signal), by B-tree:"
        )
        for name, n in wal["by_tree"].items():
            print(f"  {n:6.2f}  {name}")
        result["wal"] = wal
    print(json.dumps(result))


if __name__ == "__main__":
    main()
