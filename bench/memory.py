"""Resident size of ``alarmdesk serve`` with many open incidents and supervised panels.

    .venv/bin/python bench/memory.py                       # 100,000 of each, SQLite, temp dir
    .venv/bin/python bench/memory.py --incidents 20000 --panels 20000

Three servers, one after the other, on one SQLite database (the DC-09 receiver on, so panels
are loaded into its registry and into supervision):

1. the demo city only: the baseline;
2. plus ``--panels`` panels applied as a centre's set-up (as ``alarmdesk config apply``
   does), each supervised with a check-in period;
3. plus ``--incidents`` open incidents, each opened by a call at its own place (so none
   folds into another), sent in batches of 1,000 to a running server, then that server
   stopped and a fresh one started on the database: its state is what it loads.

Each server's resident size (VmRSS) is read once it answers and has settled; the differences
give the bytes per panel and per open incident. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from ingest import AlarmdeskServer, Cores, Procs, cli, free_port, make_tokens  # noqa: E402
from setup_apply import write_setup  # noqa: E402

SETTLE_SECONDS = 3.0


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measured(procs: Procs, url: str, name: str) -> tuple[float, AlarmdeskServer]:
    srv = AlarmdeskServer(procs, None, name, url=url)
    time.sleep(SETTLE_SECONDS)
    return rss_mib(srv.pid), srv


def apply_panels(tmp: Path, url: str, panels: int) -> float:
    from alarmdesk.bootstrap import audit_chain
    from alarmdesk.config import Config
    from alarmdesk.safeguards.audit import Actor
    from alarmdesk.service import centre, centre_files
    from alarmdesk.service.actions import perform
    from alarmdesk.store.database import make_engine

    folder = tmp / "centre"
    folder.mkdir()
    write_setup(folder, panels)
    cfg = Config()
    cfg.database.url = url
    cfg.audit.key_file = str(tmp / "audit.key")
    engine = make_engine(url)
    started = time.perf_counter()
    try:
        located = centre_files.load(folder)
        perform(
            engine,
            audit_chain(cfg),
            centre.apply(Actor("bench", "admin"), located),
            datetime.now(UTC),
        )
    finally:
        engine.dispose()
    return time.perf_counter() - started


def open_incidents(srv: AlarmdeskServer, token: str, count: int) -> float:
    """``count`` calls, each at a place of its own (a grid 330 m by 350 m apart)."""
    now = datetime.now(UTC).isoformat()
    started = time.perf_counter()
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.port}", timeout=120) as client:
        for first in range(0, count, 1000):
            batch = [
                {
                    "source_kind": "call",
                    "source_id": "bench-memory",
                    "type_code": "FSTRU",
                    "occurred_at": now,
                    "idempotency_key": f"mem-{i}",
                    "location": {
                        "lat": 37.0 + (i // 400) * 0.003,
                        "lon": -122.5 + (i % 400) * 0.004,
                    },
                    "summary": "smoke from a window",
                }
                for i in range(first, min(first + 1000, count))
            ]
            r = client.post(
                "/api/v1/signals/batch",
                json={"signals": batch},
                headers={"Authorization": f"Bearer {token}"},
            )
            r.raise_for_status()
    return time.perf_counter() - started


def open_count(url: str) -> int:
    import sqlalchemy as sa

    from alarmdesk.store import tables as t
    from alarmdesk.store.database import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            q = sa.select(sa.func.count()).select_from(t.incidents)
            return int(
                conn.execute(
                    q.where(t.incidents.c.status.not_in(("resolved", "closed", "cancelled")))
                ).scalar_one()
            )
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--panels", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="alarmdesk-memory-") as name:
        tmp = Path(name)
        procs = Procs(tmp, Cores(pin=False))
        procs.env["ALARMDESK_DC09_PORT"] = str(free_port())
        template = tmp / "memory.db"
        url = f"sqlite:///{template}"
        figures: dict[str, Any] = {"incidents": args.incidents, "panels": args.panels}
        try:
            cli(procs, "db", "upgrade", "--database-url", url)
            cli(procs, "demo", "load", "--database-url", url)
            tokens = make_tokens(template)
            base, srv = measured(procs, url, "base")
            srv.stop()
            figures["apply_panels_s"] = apply_panels(tmp, url, args.panels)
            with_panels, srv = measured(procs, url, "panels")
            srv.stop()
            loader = AlarmdeskServer(procs, None, "load", url=url)
            figures["open_incidents_s"] = open_incidents(loader, tokens["intake"], args.incidents)
            loader.stop()
            figures["open_incidents"] = open_count(url)
            with_both, srv = measured(procs, url, "both")
            srv.stop()
        finally:
            procs.stop_all()
    figures |= {
        "rss_base_mib": base,
        "rss_with_panels_mib": with_panels,
        "rss_with_panels_and_incidents_mib": with_both,
        "bytes_per_panel": (with_panels - base) * 2**20 / max(args.panels, 1),
        "bytes_per_open_incident": (with_both - with_panels)
        * 2**20
        / max(figures["open_incidents"], 1),
    }
    for key, value in figures.items():
        print(f"{key:36} {value:,.1f}" if isinstance(value, float) else f"{key:36} {value:,}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
