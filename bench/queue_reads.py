"""The console's reads over a large store, filtered by desk: what an operator's reload costs.

    .venv/bin/python bench/queue_reads.py                     # 200,000 incidents, SQLite, temp dir
    .venv/bin/python bench/queue_reads.py --database-url postgresql://postgres@127.0.0.1/empty_db

The incidents of ``bench/retention.py`` (200,000 opened three minutes apart, 4 % still open:
about 8,000 in the queue), each heard by one of six desks and three in ten by a second one,
as routing gives them. Then, for an operator of one desk and of two, and for a supervisor of
all (no desk filter), median milliseconds of ``--rounds`` of each read the console and the
API make: the queue's counts, its first page of 100 and a whole queue of 2,000, the incident
list's first 50 (every status, and open only), and the map's open incidents in a box (a
sixth of the city).
Prints a table, then one JSON line. Compare two checkouts with ``bench/ab.py queue_reads.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from retention import fill  # noqa: E402

from alarmdesk.domain.incident import OPEN  # noqa: E402
from alarmdesk.service.console_queries import queue_counts, queue_page  # noqa: E402
from alarmdesk.store import repository as repo  # noqa: E402
from alarmdesk.store import tables as t  # noqa: E402
from alarmdesk.store.database import make_engine, upgrade  # noqa: E402
from alarmdesk.store.repository import IncidentFilter  # noqa: E402

DESKS = tuple(f"desk-{n}" for n in range(6))


def route(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        ids = list(conn.execute(sa.select(t.incidents.c.id)).scalars())
        rows = [{"incident_id": i, "desk_id": DESKS[i % 6]} for i in ids]
        rows += [{"incident_id": i, "desk_id": DESKS[(i + 1) % 6]} for i in ids if i % 10 < 3]
        for lo in range(0, len(rows), 20_000):
            conn.execute(t.incident_desks.insert(), rows[lo : lo + 20_000])
        # each at a place of its own in a city 0.1 degree across, for the map's box
        place = "('lat', 37.7 + (id % 100) / 1000.0, 'lon', -122.5 + (id % 97) / 1000.0)"
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(f"UPDATE incidents SET location = jsonb_build_object{place}"))
            conn.exec_driver_sql("ANALYZE")  # as autovacuum would have by now
        else:
            conn.execute(sa.text(f"UPDATE incidents SET location = json_object{place}"))


def reads(
    engine: sa.Engine, conn: sa.Connection, opened: tuple[str, ...], desks: tuple[str, ...]
) -> dict[str, Callable[[], object]]:
    queue = IncidentFilter(statuses=opened, desks=desks)
    listed = IncidentFilter(desks=desks)
    return {
        "queue counts": lambda: queue_counts(engine, queue),
        "queue page of 100": lambda: queue_page(engine, queue, limit=100),
        "queue of 2,000": lambda: queue_page(engine, queue, limit=2000),
        "list 50, every status": lambda: repo.list_incidents(
            conn, listed, limit=50, before_id=None
        ),
        "list 50, open": lambda: repo.list_incidents(conn, queue, limit=50, before_id=None),
        "map box": lambda: repo.open_incidents_in_box(
            conn, (37.72, 37.76), (-122.48, -122.44), desks or None
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--incidents", type=int, default=200_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--database-url", help="an empty database (default: SQLite in a temp dir)")
    args = ap.parse_args()
    opened = tuple(s.value for s in OPEN)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'queue.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            fill(engine, args.incidents, 0)
            route(engine)
            for label, desks in (("all desks", ()), ("1 desk", DESKS[:1]), ("2 desks", DESKS[:2])):
                with engine.connect() as conn:
                    for name, read in reads(engine, conn, opened, desks).items():
                        times = []
                        for _ in range(args.rounds):
                            started = time.perf_counter()
                            read()
                            times.append(1000 * (time.perf_counter() - started))
                        figures.setdefault(name, {})[label] = round(statistics.median(times), 2)
        finally:
            engine.dispose()
    labels = ("all desks", "1 desk", "2 desks")
    print(f"{'median ms (' + engine.dialect.name + ')':24}" + "".join(f"{x:>12}" for x in labels))
    for name, by in figures.items():
        print(f"{name:24}" + "".join(f"{by[x]:>12.1f}" for x in labels))
    print(json.dumps({"store": engine.dialect.name, "incidents": args.incidents, "ms": figures}))


if __name__ == "__main__":
    main()
