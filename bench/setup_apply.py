"""Applying a centre's set-up with 100,000 panels: read, check, plan, apply, then one panel
changed item by item; time and memory.

    .venv/bin/python bench/setup_apply.py              # 100,000 panels, SQLite in a temp dir
    .venv/bin/python bench/setup_apply.py --panels 10000
    .venv/bin/python bench/setup_apply.py --database-url postgresql://…   # a database to wipe

Prints each phase's wall time and the process's peak resident size, then one JSON line. The
second apply of the same files must change nothing (and says so). ``…_writer_s`` is the part of
an apply spent in its transaction, which a running server's writer runs: every alarm waits
behind it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from alarmdesk.bootstrap import audit_chain
from alarmdesk.config import Config
from alarmdesk.domain.centre import check
from alarmdesk.domain.taxonomy import default_types
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import centre, centre_files, centre_items
from alarmdesk.service.actions import Action, perform
from alarmdesk.store import repository as repo
from alarmdesk.store.database import make_engine, upgrade

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def write_setup(folder: Path, panels: int) -> None:
    (folder / "desks.yaml").write_text(
        "desks:\n  - {id: alarms, name: Alarm desk}\n  - {id: fire, name: Fire desk}\n"
    )
    lines = ["panels:"]
    for i in range(panels):
        lines += [
            f"  - account: '{0x100000 + i:X}'",
            f"    site: Site {i:06d}",  # a bare 1987 reads as leetspeak (docs/safeguards.md)
            f"    lat: {50 + (i % 1000) / 1000:.4f}",
            f"    lon: {(i // 1000) / 1000:.4f}",
            "    checkin_seconds: 3600",
            "    zones: {1: Front door, 2: Hall PIR, 3: Smoke detector}",
        ]
    (folder / "panels.yaml").write_text("\n".join(lines) + "\n")


def in_transaction(action: Action, figures: dict[str, float], key: str) -> Action:
    """The action, timing the part of it that runs in its transaction under ``key``."""
    inner = action.apply

    def apply(conn: Any, now: datetime) -> Any:
        started = time.perf_counter()
        try:
            return inner(conn, now)
        finally:
            figures[key] = time.perf_counter() - started

    return dataclasses.replace(action, apply=apply)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panels", type=int, default=100_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "centre"
        folder.mkdir()
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        cfg = Config()
        cfg.database.url = url
        cfg.audit.key_file = f"{tmp}/audit.key"
        chain = audit_chain(cfg)
        engine = make_engine(url)
        with engine.begin() as conn:
            repo.upsert_types(conn, default_types())
        figures: dict[str, float] = {}
        t = time.perf_counter()
        write_setup(folder, args.panels)
        figures["write_files_s"] = time.perf_counter() - t
        t = time.perf_counter()
        located = centre_files.load(folder)
        figures["read_s"] = time.perf_counter() - t
        t = time.perf_counter()
        check(located.centre, located.where)
        figures["check_s"] = time.perf_counter() - t
        t = time.perf_counter()
        planned = centre.plan(engine, located)
        figures["plan_s"] = time.perf_counter() - t
        actor = Actor("bench", "operator_of_machine")
        t = time.perf_counter()
        action = in_transaction(centre.apply(actor, located, engine), figures, "apply_writer_s")
        applied = perform(engine, chain, action, NOW)
        figures["apply_s"] = time.perf_counter() - t
        t = time.perf_counter()
        action = in_transaction(centre.apply(actor, located, engine), figures, "again_writer_s")
        again = perform(engine, chain, action, NOW)
        figures["apply_again_s"] = time.perf_counter() - t
        # One panel's site changed from the console or PUT /api/v1/setup/panels/{id}: the same
        # check as a whole set-up's, over every stored item.
        first = located.centre.panels[0]
        edited = msgspec.structs.replace(first, site="Site renamed", key_hex=None)
        t = time.perf_counter()
        one = centre_items.change(engine, actor, "panels", first.device_id, edited)
        changed = perform(engine, chain, in_transaction(one, figures, "change_writer_s"), NOW)
        figures["change_one_item_s"] = time.perf_counter() - t
        figures["peak_rss_mib"] = peak_mib()
        engine.dispose()
    assert planned.counts()["panels"]["added"] == args.panels
    assert applied.counts()["panels"]["added"] == args.panels and again.empty
    assert [c.id for c in changed.plan.changed] == [first.device_id], changed
    width = max(len(k) for k in figures)
    print(f"{args.panels:,} panels")
    for k, v in figures.items():
        print(f"{k:<{width}}  {v:8.1f}")
    print(json.dumps({"panels": args.panels, **{k: round(v, 2) for k, v in figures.items()}}))


if __name__ == "__main__":
    main()
