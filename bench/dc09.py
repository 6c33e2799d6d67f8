"""DC-09 receiver benchmark: many panel connections, ACKs only after commit.

    .venv/bin/python bench/dc09.py                 # 500 connections, about 1 minute
    .venv/bin/python bench/dc09.py --quick         # 100 connections, short phases
    .venv/bin/python bench/dc09.py --connections 500 --seconds 10 --paced-rate 1000

The receiver runs as its own process (alarmdesk's Services + IntakeService on uvloop, a
fresh SQLite file, WAL + synchronous=FULL), pinned to one core; the panels run in this
process, pinned to the other. Each panel is one TCP connection with its own account (half
of them AES-128 encrypted); it sends a frame, waits for the ACK, sends the next.

Phases:
1. closed loop: every connection sends as fast as its ACKs come back (frames/s, p50/p99
   ACK latency, receiver CPU).
2. paced: ``--paced-rate`` frames/s in total, each connection at an even share with a
   random phase (p50/p99/max ACK latency).

Every frame is an event that is stored as one signal (the mix below), so at the end the
number of ACKs received must equal the number of signals in the store: an ACK is only ever
sent after its signal is committed. Link tests are not in the mix (they are not stored and
cost far less). Mix: Contact ID openings 30 %, closings 10 %, periodic tests 20 %, SIA
burglary alarms 15 % and restores 15 % (zones 1-4, folding into open incidents), Contact ID
fire alarms 5 % and restores 5 %.

Each panel's frames are encrypted once, at the start (only the sequence number and the CRC
change per frame), so the receiver runs with a timestamp window of [-600, 20] s instead of
[-40, 20]; the check itself costs the same.

Targets: >= 5,000 ACKed frames/s (phase 1); p99 ACK <= 50 ms at 1,000 frames/s (phase 2).
Everything runs on 127.0.0.1 on a free port, in a temp dir deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(BENCH))

from loadgen import cpu_of, runq_wait  # noqa: E402  (CPU accounting: loadgen.py)

from alarmdesk.intake.dc09.codec import FrameBuffer, crc16_arc  # noqa: E402
from alarmdesk.intake.dc09.crypto import encrypt  # noqa: E402
from alarmdesk.intake.dc09.timestamps import format_timestamp  # noqa: E402

KEY = b"0123456789abcdef"
MIX = [  # (weight, token, data template with {a}=account and {z}=zone)
    (30, "ADM-CID", "#{a}|1401 01 00{z}"),
    (10, "ADM-CID", "#{a}|3401 01 00{z}"),
    (20, "ADM-CID", "#{a}|1602 00 000"),
    (15, "SIA-DCS", "#{a}|Nri1/BA{z}"),
    (15, "SIA-DCS", "#{a}|Nri1/BR{z}"),
    (5, "ADM-CID", "#{a}|1110 01 00{z}"),
    (5, "ADM-CID", "#{a}|3110 01 00{z}"),
]
DESKS = [
    {"id": "alarms", "name": "Alarm monitoring", "categories": ["*"], "sources": ["equipment"]}
]


def account(i: int) -> str:
    return f"B{i:05X}"


# ------------------------------------------------------------------------------ receiver


def prepare(url: str, connections: int) -> None:
    from alarmdesk.domain.taxonomy import default_types
    from alarmdesk.store import repository as repo
    from alarmdesk.store.database import make_engine, upgrade

    upgrade(url)
    engine = make_engine(url)
    devices = [
        {
            "id": f"panel-{account(i)}",
            "kind": "panel",
            "site": f"Bench site {i}",
            "lat": 37.7 + (i % 100) / 1000,
            "lon": -122.4 - (i // 100) / 1000,
            "zones": {str(z): f"Zone {z}" for z in range(1, 5)},
            "checkin_seconds": 90,
            "settings": {"account": account(i), **({"key_hex": KEY.hex()} if i % 2 else {})},
        }
        for i in range(connections)
    ]
    with engine.begin() as conn:
        repo.upsert_types(conn, default_types())
        repo.upsert_desks(conn, DESKS)
        repo.upsert_devices(conn, devices)
    engine.dispose()


def serve(url: str, tmp: Path) -> None:
    """The receiver process: prints its port, serves until SIGTERM, writes its stats."""
    import uvloop

    from alarmdesk.bootstrap import build_services
    from alarmdesk.config import Config
    from alarmdesk.intake.service import IntakeConfig, IntakeService

    cfg = Config()
    cfg.database.url = url
    if hasattr(cfg, "audit"):
        cfg.audit.key_file = str(tmp / "audit.key")
    svc = build_services(cfg)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        svc.start(loop)
        intake = IntakeService()
        # The frames of a phase are built once, so their timestamps age during the run.
        intake.start(
            svc, loop, IntakeConfig(dc09_port=0, dc09_udp=False, dc09_timestamp_window=[-600, 20])
        )
        assert intake.tcp_address is not None
        print(intake.tcp_address[1], flush=True)
        await stop.wait()
        stats = {
            "receiver": dict(intake.receiver.stats) if intake.receiver else {},
            "writer_batches": svc.writer.batches,
            "writer_signals": svc.writer.committed_signals,
        }
        (tmp / "server-stats.json").write_text(json.dumps(stats))
        await intake.aclose()
        svc.stop()

    uvloop.run(main())


# -------------------------------------------------------------------------------- panels


class Panel:
    """One connection: a cycle of pre-encrypted contents; per frame only seq and CRC change."""

    def __init__(self, i: int, rng: random.Random, at: datetime) -> None:
        self.account = account(i)
        self.encrypted = bool(i % 2)
        weights = [w for w, *_ in MIX]
        stamp = format_timestamp(at)
        self.contents: list[tuple[str, str]] = []
        for _ in range(16):
            _, token, template = rng.choices(MIX, weights)[0]
            data = template.format(a=self.account, z=rng.randint(1, 4))
            content = f"{data}]_{stamp}"
            if self.encrypted:
                self.contents.append((f"*{token}", encrypt(content, KEY)))
            else:
                self.contents.append((token, content))
        self.seq = rng.randrange(1, 5000)
        self.k = 0

    def next_frame(self) -> bytes:
        token, after = self.contents[self.k % len(self.contents)]
        self.k += 1
        self.seq = self.seq % 9999 + 1
        body = f'"{token}"{self.seq:04d}#{self.account}[{after}'.encode("latin-1")
        return b"\n%04X%04X%s\r" % (crc16_arc(body), len(body), body)


async def run_panel(
    panel: Panel,
    port: int,
    start: float,
    end: float,
    measure_from: float,
    interval: float | None,
    out: dict[str, Any],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    buffer = FrameBuffer()
    lat: list[float] = out["lat"]
    next_at = start + (random.random() * interval if interval else 0.0)
    try:
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            if interval is not None:
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                next_at += interval
                if time.perf_counter() >= end:
                    break
            frame = panel.next_frame()
            t0 = time.perf_counter()
            writer.write(frame)
            replies: list[Any] = []
            while not replies:
                data = await reader.read(4096)
                if not data:
                    raise ConnectionError("receiver closed the connection")
                replies = buffer.feed(data)
            t1 = time.perf_counter()
            reply = replies[0]
            if isinstance(reply, bytes) and reply[9:14] in (b'"ACK"', b'"*ACK'):
                out["acks"] += 1
                if t0 >= measure_from:
                    out["measured"] += 1
                    lat.append(t1 - t0)
                    out["buckets"].setdefault(int(t0 - measure_from), []).append(t1 - t0)
            else:
                out["other"] += 1
    finally:
        writer.close()


async def phase(
    port: int,
    panels: list[Panel],
    seconds: float,
    warmup: float,
    rate: float | None,
    server_pid: int,
) -> dict[str, Any]:
    out: dict[str, Any] = {"acks": 0, "measured": 0, "other": 0, "lat": [], "buckets": {}}
    start = time.perf_counter()
    measure_from = start + warmup
    end = measure_from + seconds
    interval = len(panels) / rate if rate else None
    cpu0: float | None = None
    runq0 = 0.0

    async def sample_cpu() -> None:
        nonlocal cpu0, runq0
        await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
        cpu0, runq0 = cpu_of(server_pid) or 0.0, runq_wait(server_pid) or 0.0

    sampler = asyncio.create_task(sample_cpu())
    await asyncio.gather(
        *(run_panel(p, port, start, end, measure_from, interval, out) for p in panels)
    )
    await sampler
    cpu1, runq1 = cpu_of(server_pid) or 0.0, runq_wait(server_pid) or 0.0
    lat = sorted(out.pop("lat"))
    out["seconds"] = seconds
    out["rate"] = out["measured"] / seconds
    out["p50_ms"] = pct(lat, 0.50) * 1000
    out["p99_ms"] = pct(lat, 0.99) * 1000
    out["max_ms"] = (lat[-1] if lat else float("nan")) * 1000
    out["server_cpu"] = (cpu1 - cpu0) / seconds if cpu0 is not None else float("nan")
    out["runq_ms_per_s"] = (runq1 - runq0) / seconds * 1000
    out["per_second_p99_ms"] = [
        round(pct(sorted(b), 0.99) * 1000, 1) for b in out.pop("buckets").values() if b
    ]
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def pin(cores: set[int]) -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, cores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--connections", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--paced-rate", type=float, default=1000.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-pin", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--serve", nargs=2, metavar=("URL", "TMP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], Path(args.serve[1]))
        return
    if args.quick:
        args.connections, args.seconds, args.warmup = min(args.connections, 100), 3.0, 1.0
    multi = (os.cpu_count() or 1) > 1 and not args.no_pin
    tmp = Path(tempfile.mkdtemp(prefix="alarmdesk-bench-dc09-"))
    db = tmp / "bench.db"
    url = f"sqlite:///{db}"
    load_before = os.getloadavg()
    t = time.perf_counter()
    prepare(url, args.connections)
    print(f"prepared {args.connections} accounts in {time.perf_counter() - t:.1f} s", flush=True)

    def pre() -> None:
        if multi:
            pin({0})

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", url, str(tmp)],
        stdout=subprocess.PIPE,
        stderr=open(tmp / "server.log", "wb"),  # noqa: SIM115
        preexec_fn=pre,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        if multi:
            pin({1})
        import uvloop

        rng = random.Random(7)
        at = datetime.now(UTC).replace(microsecond=0)
        panels = [Panel(i, rng, at) for i in range(args.connections)]
        closed = uvloop.run(phase(port, panels, args.seconds, args.warmup, None, server.pid))
        paced = uvloop.run(
            phase(port, panels, args.seconds, args.warmup, args.paced_rate, server.pid)
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    acks = closed["acks"] + paced["acks"]
    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT count(*) FROM signals WHERE source_id LIKE 'panel-B%'"
        ).fetchone()[0]
        incidents = conn.execute("SELECT count(*) FROM incidents").fetchone()[0]
    stats_file = tmp / "server-stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    print()
    print(f"DC-09 receiver, {args.connections} TCP connections, half AES-128 encrypted, SQLite")
    print(
        f"  machine: {os.cpu_count()} cores; receiver pinned: {multi}; load average before "
        f"{load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  1. closed loop   {closed['rate']:8.0f} ACKed frames/s   "
        f"p50 {closed['p50_ms']:6.1f} ms   p99 {closed['p99_ms']:6.1f} ms   "
        f"receiver CPU {closed['server_cpu'] * 100:4.0f} %   (target >= 5,000/s)"
    )
    print(
        f"  2. paced {args.paced_rate:5.0f}/s {paced['rate']:8.0f} ACKed frames/s   "
        f"p50 {paced['p50_ms']:6.1f} ms   p99 {paced['p99_ms']:6.1f} ms   "
        f"max {paced['max_ms']:6.1f} ms   (target p99 <= 50 ms)"
    )
    print(
        f"  receiver threads runnable but waiting for a CPU (each other, other processes): closed "
        f"{closed['runq_ms_per_s']:.0f} ms/s, paced {paced['runq_ms_per_s']:.0f} ms/s; "
        f"paced p99 per second (ms): {paced['per_second_p99_ms']}"
    )
    print(
        f"  ACKs received {acks}, signals in the store {stored}: "
        + ("equal" if acks == stored else "DIFFERENT")
        + f"; replies other than ACK: {closed['other'] + paced['other']}; incidents {incidents}"
    )
    if stats:
        w = stats
        print(
            f"  writer: {w['writer_batches']} transactions for {w['writer_signals']} signals "
            f"({w['writer_signals'] / max(1, w['writer_batches']):.0f} per commit); "
            f"receiver counters {w['receiver']}"
        )
    result = {
        "connections": args.connections,
        "closed_rate": round(closed["rate"]),
        "closed_p50_ms": round(closed["p50_ms"], 2),
        "closed_p99_ms": round(closed["p99_ms"], 2),
        "paced_rate": round(paced["rate"]),
        "paced_p50_ms": round(paced["p50_ms"], 2),
        "paced_p99_ms": round(paced["p99_ms"], 2),
        "acks": acks,
        "stored": stored,
    }
    print(json.dumps(result))
    if args.keep:
        print(f"kept {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
