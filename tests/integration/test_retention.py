"""Data expires (docs/architecture.md, "The line we hold", 4): retention erases exactly what
expired, logs one erase entry per chunk erased without the erased content, never touches
unfinished incidents, and the audit log still verifies after its own content was erased.

Seeded through the writer with a fake clock; retention runs with injected times; SQLite and
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alarmdesk.bootstrap import Services, audit_chain
from alarmdesk.domain import commands as c
from alarmdesk.domain.signal import Location, SignalIn, SourceKind
from alarmdesk.safeguards.audit import Actor
from alarmdesk.safeguards.auditlog_file import verify_export
from alarmdesk.safeguards.retention_policy import (
    CEILINGS,
    DataClass,
    RetentionCeilingError,
    RetentionConfig,
    RetentionPolicyError,
)
from alarmdesk.service.retention import retention_loop, run_retention
from alarmdesk.store import tables as t
from alarmdesk.store.audit import AuditChain, export_lines
from alarmdesk.store.retention import (
    ERASED_KEY,
    NOTE_MARKER,
)
from tests.conftest import FakeClock

T0 = datetime(2025, 1, 1, 10, 0, tzinfo=UTC)
OPERATOR = Actor("user:7", "operator", "0123456789abcdef", "10.0.0.7")
SECRETS = ("Ann Example", "+31 6 1234 5678", "secret note", "resolve note", "cancel note")

# Short periods so a few injected "days" cross every cutoff.
POLICY = RetentionConfig(
    signals_days=10,
    incidents_days=200,
    incidents_by_category={"fire": 100},
    notes_days=50,
    people_days=20,
    media_days=5,
    audit_days=300,
)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def signal(
    key: str,
    code: str,
    *,
    lat: float,
    payload: dict[str, Any] | None = None,
    record_only: bool = False,
    kind: SourceKind = SourceKind.CALL,
) -> SignalIn:
    return SignalIn(
        source_kind=kind,
        source_id=f"src-{key}",
        type_code=code,
        occurred_at=T0,
        location=Location(lat=lat, lon=5.0),
        summary="as the caller said",
        idempotency_key=key,
        payload=payload or {},
        record_only=record_only,
    )


PEOPLE = {"people": [{"role": "caller", "name": "Ann Example", "callback": "+31 6 1234 5678"}]}
MEDIA = {"snapshot_ref": "/api/events/1/snapshot.jpg", "has_snapshot": True, "label": "person"}


class Seeded:
    """Incidents in every state that matters, all at T0 (the clock then moves on)."""

    def __init__(self, svc: Services, loop: asyncio.AbstractEventLoop) -> None:
        self.svc, self.loop = svc, loop

        def submit(*signals: SignalIn) -> int | None:
            (r, *_) = loop.run_until_complete(svc.writer.submit_signals(signals, actor=OPERATOR))
            return r.incident_id

        def act(command: c.Command) -> None:
            loop.run_until_complete(svc.writer.submit_command(command, actor=OPERATOR))

        # fire, closed: 100-day category override; people, media and notes on it.
        self.fire = submit(signal("fire", "FSTRU", lat=50.0, payload={**PEOPLE, **MEDIA}))
        assert self.fire is not None
        act(c.AddNote(self.fire, "op", text="secret note"))
        act(c.Resolve(self.fire, "op", disposition="handled", note="resolve note"))
        act(c.Close(self.fire, "op"))
        # medical, cancelled: default 200 days; a cancel note.
        self.medical = submit(signal("med", "CARDIAC", lat=51.0, payload=PEOPLE))
        assert self.medical is not None
        act(c.Cancel(self.medical, "op", reason="false_alarm", note="cancel note"))
        # violence, still open: nothing of it may ever go.
        self.open = submit(signal("open", "ASSAULT", lat=52.0, payload={**PEOPLE, **MEDIA}))
        assert self.open is not None
        act(c.AddNote(self.open, "op", text="secret note"))
        # property, resolved but not closed: not final, kept too.
        self.resolved = submit(signal("res", "BURGLARY", lat=53.0, payload=PEOPLE))
        assert self.resolved is not None
        act(c.AddNote(self.resolved, "op", text="secret note"))
        act(c.Resolve(self.resolved, "op", disposition="handled", note="resolve note"))
        # record-only signals (periodic tests), one with a media reference.
        for i in range(3):
            submit(
                signal(
                    f"test{i}",
                    "ALRBS",
                    lat=54.0,
                    kind=SourceKind.EQUIPMENT,
                    record_only=True,
                    payload=MEDIA if i == 0 else {},
                )
            )

    def count(self, table: sa.Table, *where: Any) -> int:
        with self.svc.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()
            )

    def incident_ids(self) -> set[int]:
        with self.svc.engine.connect() as conn:
            return set(conn.execute(sa.select(t.incidents.c.id)).scalars())

    def payload(self, key: str) -> dict[str, Any]:
        with self.svc.engine.connect() as conn:
            return dict(
                conn.execute(
                    sa.select(t.signals.c.payload).where(t.signals.c.idempotency_key == key)
                ).scalar_one()
            )

    def details(self, incident_id: int) -> list[dict[str, Any]]:
        with self.svc.engine.connect() as conn:
            return [
                dict(d)
                for d in conn.execute(
                    sa.select(t.events.c.detail)
                    .where(t.events.c.incident_id == incident_id)
                    .order_by(t.events.c.id)
                ).scalars()
            ]


def entries(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.audit_entries.c.entry)
            .where(t.audit_entries.c.entry.is_not(None))
            .order_by(t.audit_entries.c.seq)
        ).scalars()
        return [json.loads(r) for r in rows]


def erase_entries(engine: sa.Engine) -> list[dict[str, Any]]:
    return [e for e in entries(engine) if e["op"] == "erase"]


def verify(engine: sa.Engine, chain: AuditChain) -> Any:
    with engine.begin() as conn:
        chain.checkpoint(conn, datetime.now(UTC) + timedelta(days=3650))
    with engine.connect() as conn:
        lines = [json.dumps(line) for line in export_lines(conn)]
    return verify_export(lines, chain.signer.vkey)


@pytest.fixture
def seeded(db_url: str, services_factory: Any, loop: asyncio.AbstractEventLoop) -> Seeded:
    clock = FakeClock(T0)
    svc = services_factory(db_url, clock=clock, loop=loop)
    return Seeded(svc, loop)


def test_retention_erases_exactly_what_expired_and_logs_it_without_content(
    seeded: Seeded,
) -> None:
    svc = seeded.svc
    chain = audit_chain(svc.config)
    s = t.signals

    # Day 30: record-only signals (10 d), people (20 d), media (5 d) of what is not open.
    run = run_retention(svc.engine, POLICY, chain, T0 + timedelta(days=30))
    assert run.counts == {
        "incidents": 0,
        "signals": 3,
        "notes": 0,
        "people": 2,  # fire (closed) and medical (cancelled); not open, not resolved
        "media": 1,  # fire; the record-only one went with the signals class
        "audit": 0,
    }
    assert seeded.count(s, s.c.incident_id.is_(None)) == 0
    fire = seeded.payload("fire")
    assert "people" not in fire and "snapshot_ref" not in fire
    assert fire[ERASED_KEY] == ["media", "people"]
    assert fire["label"] == "person" and fire["has_snapshot"] is True  # other keys stay
    assert "people" in seeded.payload("open") and "snapshot_ref" in seeded.payload("open")
    assert "people" in seeded.payload("res")
    log = erase_entries(svc.engine)
    assert [(e["object_type"], e["detail"]["count"]) for e in log] == [
        ("signals", 3),
        ("people", 2),
        ("media", 1),
    ]
    for e in log:
        assert e["actor"] == "system:retention" and e["outcome"] == "allowed"
        assert datetime.fromisoformat(e["detail"]["cutoff"]) < T0 + timedelta(days=30)

    # A second run at the same time finds nothing more and logs nothing.
    again = run_retention(svc.engine, POLICY, chain, T0 + timedelta(days=30))
    assert again.total == 0
    assert len(erase_entries(svc.engine)) == 3

    # Day 60: notes (50 d): the note and resolve note of fire, the cancel note of medical.
    run = run_retention(svc.engine, POLICY, chain, T0 + timedelta(days=60))
    assert run.counts["notes"] == 3 and run.total == 3
    fire_details = seeded.details(seeded.fire)  # type: ignore[arg-type]
    assert {"text": NOTE_MARKER} in fire_details
    assert any(d.get("note") == NOTE_MARKER and d.get("disposition") for d in fire_details)
    assert any(
        d.get("note") == NOTE_MARKER
        for d in seeded.details(seeded.medical)  # type: ignore[arg-type]
    )
    assert {"text": "secret note"} in seeded.details(seeded.open)  # type: ignore[arg-type]
    assert {"text": "secret note"} in seeded.details(seeded.resolved)  # type: ignore[arg-type]

    # Day 150: fire incidents (100 d) go, with their signals, timeline and the webhook
    # deliveries that name them; medical (200 d) stays.
    with svc.engine.begin() as conn:
        conn.execute(
            sa.insert(t.webhook_deliveries),
            [
                {
                    "webhook_id": 1,
                    "event_id": 1,
                    "incident_id": inc,
                    "attempt": 1,
                    "at": T0,
                    "outcome": "delivered",
                    "status": 204,
                    "duration_ms": 3,
                }
                for inc in (seeded.fire, seeded.medical)
            ],
        )
    run = run_retention(svc.engine, POLICY, chain, T0 + timedelta(days=150))
    wd = t.webhook_deliveries
    assert seeded.count(wd, wd.c.incident_id == seeded.fire) == 0
    assert seeded.count(wd, wd.c.incident_id == seeded.medical) == 1
    assert run.counts["incidents"] == 1 and run.incidents_by_category == {"fire": 1}
    assert seeded.fire not in seeded.incident_ids()
    assert seeded.count(s, s.c.incident_id == seeded.fire) == 0
    assert seeded.count(t.events, t.events.c.incident_id == seeded.fire) == 0
    assert seeded.count(t.incident_desks, t.incident_desks.c.incident_id == seeded.fire) == 0

    # Day 250: medical (200 d) goes. Open and resolved incidents never do.
    run = run_retention(svc.engine, POLICY, chain, T0 + timedelta(days=250))
    assert run.counts["incidents"] == 1 and run.incidents_by_category == {"medical": 1}
    assert seeded.incident_ids() == {seeded.open, seeded.resolved}
    incidents_log = [e for e in erase_entries(svc.engine) if e["object_type"] == "incidents"]
    assert [e["detail"]["by_category"] for e in incidents_log] == [{"fire": 1}, {"medical": 1}]
    assert incidents_log[0]["detail"]["signals"] == 1 and incidents_log[0]["detail"]["events"] >= 4

    # Day 400: audit entries older than 300 days lose their content, not their place.
    cutoff = T0 + timedelta(days=100)
    with svc.engine.connect() as conn:
        expected = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.audit_entries)
            .where(t.audit_entries.c.at < cutoff, t.audit_entries.c.entry.is_not(None))
        ).scalar_one()
        rows_before = conn.execute(
            sa.select(sa.func.count()).select_from(t.audit_entries)
        ).scalar_one()
    assert expected > 10
    run = run_retention(svc.engine, POLICY, chain, T0 + timedelta(days=400))
    assert run.counts["audit"] == expected
    assert seeded.count(t.audit_entries) == rows_before + 1  # only the new erase entry
    assert seeded.count(t.audit_entries, t.audit_entries.c.entry.is_(None)) == expected
    assert (
        seeded.count(
            t.audit_entries, t.audit_entries.c.at < cutoff, t.audit_entries.c.entry.is_not(None)
        )
        == 0
    )

    # Nothing erased was ever written into the log.
    everything = json.dumps(entries(svc.engine))
    for secret in SECRETS:
        assert secret not in everything

    # The Merkle tree still verifies, with the erased entries as hashes only.
    report = verify(svc.engine, chain)
    assert report.ok, report.problems
    assert report.erased == expected

    # The writer keeps appending after another chain appended (it resynchronises).
    (receipt,) = seeded.loop.run_until_complete(
        svc.writer.submit_signals([signal("later", "FSTRU", lat=55.0)], actor=OPERATOR)
    )
    assert receipt.incident_id is not None
    assert verify(svc.engine, chain).ok


def test_a_dry_run_counts_and_changes_nothing(seeded: Seeded) -> None:
    svc = seeded.svc
    chain = audit_chain(svc.config)
    later = T0 + timedelta(days=400)
    with svc.engine.connect() as conn:
        before = {
            tb.name: conn.execute(sa.select(sa.func.count()).select_from(tb)).scalar_one()
            for tb in (t.signals, t.incidents, t.events, t.audit_entries)
        }
    dry = run_retention(svc.engine, POLICY, chain, later, dry_run=True)
    assert dry.dry_run and dry.counts["incidents"] == 2 and dry.counts["signals"] == 3
    assert dry.counts["audit"] > 0
    with svc.engine.connect() as conn:
        after = {
            tb.name: conn.execute(sa.select(sa.func.count()).select_from(tb)).scalar_one()
            for tb in (t.signals, t.incidents, t.events, t.audit_entries)
        }
    assert after == before
    assert erase_entries(svc.engine) == []
    real = run_retention(svc.engine, POLICY, chain, later)
    # The dry run counted what a real run erases (notes, people and media of the two final
    # incidents are gone with them, so a real run at once counts only their deletion).
    assert real.counts["incidents"] == dry.counts["incidents"]
    assert real.counts["signals"] == dry.counts["signals"]


def test_batches_and_the_per_run_limit(seeded: Seeded) -> None:
    svc = seeded.svc
    chain = audit_chain(svc.config)
    later = T0 + timedelta(days=30)
    first = run_retention(svc.engine, POLICY, chain, later, batch=1, max_rows=2)
    assert first.counts["signals"] == 2 and "signals" in first.incomplete
    second = run_retention(svc.engine, POLICY, chain, later, batch=1, max_rows=2)
    assert second.counts["signals"] == 1 and "signals" not in second.incomplete
    # One entry a chunk, each in the transaction that erased it; a run's share its time.
    logged = [e for e in erase_entries(svc.engine) if e["object_type"] == "signals"]
    assert [e["detail"]["count"] for e in logged] == [1, 1, 1]
    assert {e["at"] for e in logged} == {later.isoformat()}


def test_each_chunk_reads_on_from_where_the_chunk_before_stopped(
    sqlite_url: str, services_factory: Any, loop: asyncio.AbstractEventLoop
) -> None:
    """Final incidents, history calls and signals of no incident are read a chunk at a time,
    each chunk walking an index from where the one before stopped. Before, SQLite read every
    closed and cancelled incident (every expired call, every signal of no incident) and
    sorted them on each chunk: a run's time grew with the square of what was stored. Ties of
    closing time are all taken, in id order."""
    svc = services_factory(sqlite_url, clock=FakeClock(T0), loop=loop)
    Seeded(svc, loop)
    closed = T0 + timedelta(hours=1)  # three calls closed at the same instant
    with svc.engine.begin() as conn:
        conn.execute(
            t.history_calls.insert(),
            [
                {
                    "source": "old-cad",
                    "call_id": f"C{n}",
                    "type_code": "FSTRU",
                    "category": cat,
                    "priority": 2,
                    "received": T0,
                    "closed_at": closed,
                    "imported_at": T0,
                }
                for n, cat in enumerate(("fire", "medical", "medical", "fire"))
            ],
        )
    statements: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        if statement.startswith("SELECT") and "LIMIT" in statement:
            statements.append((statement, params))

    sa.event.listen(svc.engine, "before_cursor_execute", record)
    later = T0 + timedelta(days=400)
    chain = audit_chain(svc.config)
    kw: dict[str, Any] = {"batch": 1, "classes": [DataClass.INCIDENTS, DataClass.SIGNALS]}
    dry = run_retention(svc.engine, POLICY, chain, later, dry_run=True, **kw)
    sa.event.remove(svc.engine, "before_cursor_execute", record)
    assert dry.counts["incidents"] == 2 + 4 and dry.history_calls == 4
    assert dry.counts["signals"] == 3  # the record-only ones
    assert dry.incidents_by_category == {"fire": 1, "medical": 1}

    plans: dict[str, str] = {}
    with svc.engine.connect() as conn:
        for statement, params in statements:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            plans[statement] = " / ".join(r[3] for r in rows)
    on_incidents = [p for s, p in plans.items() if "FROM incidents" in s]
    on_history = [p for s, p in plans.items() if "FROM history_calls" in s]
    on_signals = [p for s, p in plans.items() if "FROM signals" in s]
    assert on_incidents and on_history and on_signals
    for plan in plans.values():
        assert "TEMP B-TREE" not in plan, plan  # no sort of everything on each chunk
    # A chunk after the first starts where the one before stopped, on the primary key...
    assert any("sqlite_autoindex_incidents_1 (id>? AND id<?)" in p for p in on_incidents)
    # ... or on the history's closing time, within the expired range.
    assert any("ix_history_calls_closed_at (closed_at>? AND closed_at<?)" in p for p in on_history)
    # ... or on the incident_id index's entries for none, in the row-id order SQLite keeps.
    assert any(
        "ix_signals_incident_id (incident_id=? AND rowid>? AND rowid<?)" in p for p in on_signals
    )

    real = run_retention(svc.engine, POLICY, chain, later, **kw)
    assert real.counts["incidents"] == dry.counts["incidents"]
    assert real.counts["signals"] == 3
    assert real.history_calls == 4 and real.incidents_by_category == dry.incidents_by_category
    with svc.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.history_calls)).scalar() == 0


def seeded_with_a_second_connection(
    sqlite_url: str, services_factory: Any, loop: asyncio.AbstractEventLoop
) -> tuple[Services, sqlite3.Connection]:
    """The seeded services on SQLite, and another connection to their database that never
    waits for a lock."""
    svc = services_factory(sqlite_url, clock=FakeClock(T0), loop=loop)
    Seeded(svc, loop)
    path = sa.engine.make_url(sqlite_url).database
    assert path is not None
    return svc, sqlite3.connect(path, timeout=0, isolation_level=None)


def may_write(other: sqlite3.Connection) -> bool:
    """Whether ``other`` can take the database's write lock now, as the writer takes it."""
    try:
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    except sqlite3.OperationalError:
        return False
    return True


def test_the_writer_is_never_locked_out_while_retention_reads(
    sqlite_url: str, services_factory: Any, loop: asyncio.AbstractEventLoop
) -> None:
    """On SQLite one connection at a time may write. Each class finds what expired before
    it erases any of it, so while a run reads (the walks, a chunk at a time) another writer
    can take the lock: only the erasing itself holds it. Before, every chunk's read after
    the first ran inside the class's write transaction."""
    svc, other = seeded_with_a_second_connection(sqlite_url, services_factory, loop)
    reads: list[str] = []
    locked_out: list[str] = []

    def probe(_c: Any, _cur: Any, statement: str, _p: Any, _ctx: Any, _many: bool) -> None:
        walk = "LIMIT" in statement and "audit_checkpoints" not in statement  # not the chain's
        if statement.startswith("SELECT") and walk:  # a chunk of a walk
            reads.append(statement)
            if not may_write(other):
                locked_out.append(statement)

    sa.event.listen(svc.engine, "before_cursor_execute", probe)
    try:
        run = run_retention(
            svc.engine, POLICY, audit_chain(svc.config), T0 + timedelta(days=400), batch=1
        )
    finally:
        sa.event.remove(svc.engine, "before_cursor_execute", probe)
        other.close()
    assert run.counts["incidents"] == 2 and run.counts["signals"] == 3
    assert run.counts["audit"] > 10  # one entry a chunk: many chunks read
    assert len(reads) > run.total
    assert locked_out == []


def test_a_class_erases_a_chunk_a_transaction_and_the_writer_stores_between_chunks(
    sqlite_url: str, services_factory: Any, loop: asyncio.AbstractEventLoop
) -> None:
    """On SQLite a transaction that erases holds the database's one write lock until it
    ends. A class was one transaction: the writer (every alarm) waited for all of it, 1.7 s
    for 100,000 incidents. Now each chunk is a transaction with its own audit entry, and the
    run rests between chunks as long as the chunk took: there the lock is free, and an alarm
    submitted then is stored while the run is still going."""
    svc, other = seeded_with_a_second_connection(sqlite_url, services_factory, loop)
    rests: list[float] = []
    locked: list[int] = []
    stored: list[int | None] = []

    def rest(seconds: float) -> None:
        rests.append(seconds)
        if not may_write(other):
            locked.append(len(rests))
        if not stored:  # and the writer itself: a new alarm, committed between two chunks
            (receipt,) = loop.run_until_complete(
                svc.writer.submit_signals([signal("between", "FSTRU", lat=56.0)], actor=OPERATOR)
            )
            stored.append(receipt.incident_id)

    later = T0 + timedelta(days=400)
    try:
        run = run_retention(svc.engine, POLICY, audit_chain(svc.config), later, batch=1, rest=rest)
    finally:
        other.close()
    assert run.counts["incidents"] == 2 and run.counts["signals"] == 3
    assert run.counts["audit"] > 10
    assert locked == []
    assert stored and stored[0] is not None
    assert all(seconds >= 0 for seconds in rests)
    # One entry a chunk, each with its chunk's count, all with the run's time; a rest
    # between every two chunks of a class.
    logged = erase_entries(svc.engine)
    assert len(logged) == run.total and {e["detail"]["count"] for e in logged} == {1}
    assert {e["at"] for e in logged} == {later.isoformat()}
    erased_classes = sum(1 for n in run.counts.values() if n)
    assert len(rests) == run.total - erased_classes
    # The alarm stored meanwhile is whole, and the log still verifies.
    assert verify(svc.engine, audit_chain(svc.config)).ok


def test_a_stopped_run_commits_what_it_did_and_stops(seeded: Seeded) -> None:
    svc = seeded.svc
    chain = audit_chain(svc.config)
    stop = threading.Event()
    stop.set()
    run = run_retention(svc.engine, POLICY, chain, T0 + timedelta(days=400), stop=stop)
    assert run.total == 0 and run.incomplete == {c.value for c in DataClass}
    assert erase_entries(svc.engine) == []


def test_shortening_retention_erases_sooner(seeded: Seeded) -> None:
    svc = seeded.svc
    chain = audit_chain(svc.config)
    at = T0 + timedelta(days=3)
    assert run_retention(svc.engine, POLICY, chain, at).total == 0
    shorter = msgspec.structs.replace(POLICY, signals_days=1, media_days=1, people_days=1)
    run = run_retention(svc.engine, shorter, chain, at)
    assert run.counts["signals"] == 3 and run.counts["people"] == 2 and run.counts["media"] == 1
    assert seeded.count(t.signals, t.signals.c.incident_id == seeded.open) == 1


def test_the_scheduled_job_runs_and_logs(seeded: Seeded) -> None:
    EXPECTED = {"signals", "people", "media"}
    svc = seeded.svc
    svc.clock = lambda: T0 + timedelta(days=30)  # type: ignore[method-assign]

    async def briefly() -> None:
        task = asyncio.create_task(
            retention_loop(svc, POLICY, 1 / 3600, first_delay_seconds=0, backlog_pause_seconds=0)
        )
        for _ in range(200):
            await asyncio.sleep(0.05)
            # one transaction per class: wait for all of them, not the first
            if {e["object_type"] for e in erase_entries(svc.engine)} >= EXPECTED:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(briefly())
    assert {e["object_type"] for e in erase_entries(svc.engine)} == EXPECTED
    assert asyncio.run(retention_loop(svc, POLICY, 0)) is None  # 0: never scheduled


def test_with_two_nodes_on_one_database_one_runs_the_job_until_it_stops(seeded: Seeded) -> None:
    """Two nodes on one database: the first to take the retention lease runs the job; the
    other skips it while the lease is renewed, and takes over once the first stops."""
    import dataclasses
    import time

    EXPECTED = {"signals", "people", "media"}
    first = seeded.svc
    began = time.monotonic()
    # a clock that moves, 30 days after the seed: leases lapse with time
    first.clock = lambda: T0 + timedelta(days=30, seconds=time.monotonic() - began)  # type: ignore[method-assign]
    second = dataclasses.replace(first, node_id=first.node_id + "-other")
    every = 1 / 3600  # a second

    async def run(node: Any, seconds: float) -> None:
        task = asyncio.create_task(
            retention_loop(node, POLICY, every, first_delay_seconds=0, backlog_pause_seconds=0)
        )
        await asyncio.sleep(seconds)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    async def both() -> None:
        await asyncio.gather(run(first, 2.5), run(second, 2.5))

    asyncio.run(both())
    erased = erase_entries(first.engine)
    assert {e["object_type"] for e in erased} == EXPECTED
    assert {e["actor"] for e in erased} == {erased[0]["actor"]}  # one job's entries
    with first.engine.connect() as conn:
        (lease,) = conn.execute(sa.select(t.leases)).mappings().all()
    holder = lease["holder"]
    assert holder in (first.node_id, second.node_id) and lease["token"] == 1
    # The holder stops; once its lease has lapsed (1.5 periods), the other node takes over.
    other = second if holder == first.node_id else first
    asyncio.run(run(other, 3.5))
    with first.engine.connect() as conn:
        (lease,) = conn.execute(sa.select(t.leases)).mappings().all()
    assert lease["holder"] == other.node_id and lease["token"] == 2


# -- the policy: ceilings and checks (pure) ------------------------------------------------------


@pytest.mark.parametrize("cls", list(DataClass))
def test_lengthening_past_a_ceiling_is_refused(cls: DataClass) -> None:
    name = f"{cls.value}_days"
    RetentionConfig(**{name: CEILINGS[cls]})  # up to the ceiling: fine
    with pytest.raises(RetentionCeilingError) as info:
        RetentionConfig(**{name: CEILINGS[cls] + 1})
    assert info.value.code == "retention_ceiling"
    assert info.value.field == f"retention.{name}"
    assert "ceiling" in str(info.value) and "[retention_ceiling]" in str(info.value)


def test_the_ceiling_is_enforced_when_configuration_loads() -> None:
    with pytest.raises(msgspec.ValidationError, match="ceiling"):
        msgspec.convert({"media_days": CEILINGS[DataClass.MEDIA] + 1}, RetentionConfig)
    with pytest.raises(msgspec.ValidationError, match="ceiling"):
        msgspec.convert({"incidents_by_category": {"fire": 99_999}}, RetentionConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"people_days": 0}, RetentionConfig)
    with pytest.raises(msgspec.ValidationError, match="unknown"):
        msgspec.convert({"typo_days": 3}, RetentionConfig)
    ok = msgspec.convert({"media_days": 1, "incidents_by_category": {"fire": 10}}, RetentionConfig)
    assert (
        ok.media_days == 1 and ok.incident_days("fire") == 10 and ok.incident_days("medical") == 730
    )


def test_unknown_categories_and_zero_days_are_refused() -> None:
    with pytest.raises(RetentionPolicyError) as info:
        RetentionConfig(incidents_by_category={"protest": 10})
    assert info.value.code == "invalid_retention"
    with pytest.raises(RetentionPolicyError):
        RetentionConfig(notes_days=0)


def test_cutoffs_need_an_aware_time_and_cover_every_category() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    cut = POLICY.cutoffs(now)
    assert cut["signals"] == now - timedelta(days=10)
    assert cut["incidents.fire"] == now - timedelta(days=100)
    assert cut["incidents.medical"] == cut["incidents"] == now - timedelta(days=200)
    with pytest.raises(ValueError, match="aware"):
        POLICY.cutoffs(datetime(2026, 1, 1))


# -- the command line ---------------------------------------------------------------------------


def test_cli_dry_run_and_run(seeded: Seeded, tmp_path: Any) -> None:
    from alarmdesk.cli import app

    svc = seeded.svc
    cfg = tmp_path / "alarmdesk.toml"
    cfg.write_text(f'[audit]\nkey_file = "{svc.config.audit.key_file}"\n')
    url = svc.config.database.url
    runner = CliRunner()
    # The CLI uses the real clock, well over a year after T0: under the default policy the
    # record-only signals (90 d), people (90 d), media (30 d) and notes (365 d) of the final
    # incidents have expired.
    result = runner.invoke(
        app, ["retention", "run", "--dry-run", "-c", str(cfg), "--database-url", url]
    )
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output
    assert erase_entries(svc.engine) == []
    result = runner.invoke(app, ["retention", "run", "-c", str(cfg), "--database-url", url])
    assert result.exit_code == 0, result.output
    assert {e["object_type"] for e in erase_entries(svc.engine)} >= {"signals", "people", "media"}
    assert all(e["actor"].startswith("cli:") for e in erase_entries(svc.engine))
    result = runner.invoke(app, ["retention", "show", "-c", str(cfg)])
    assert result.exit_code == 0 and "ceiling" in result.output
    assert verify(svc.engine, audit_chain(svc.config)).ok


def test_ids_of_erased_rows_are_never_given_again(
    db_url: str, services_factory: Any, loop: asyncio.AbstractEventLoop
) -> None:
    """Retention may erase the newest incident, its signals and events (a quiet desk, a
    category with a short period). The writer numbers from the highest id stored when it
    loads (a restart, a fail-over, a failed transaction): without a mark of the highest id
    ever given it gave those ids again, so an audit entry, a webhook delivery, an EIDO
    export or a console's Last-Event-ID that named the erased one named a new one."""
    clock = FakeClock(T0)
    svc = services_factory(db_url, clock=clock, loop=loop)
    older = loop.run_until_complete(
        svc.writer.submit_signals([signal("kept", "CARDIAC", lat=51.0)], actor=OPERATOR)
    )[0].incident_id
    newest = loop.run_until_complete(
        svc.writer.submit_signals([signal("gone", "FSTRU", lat=50.0)], actor=OPERATOR)
    )[0].incident_id
    assert older is not None and newest is not None and newest > older
    for command in (c.Resolve(newest, "op", disposition="handled"), c.Close(newest, "op")):
        loop.run_until_complete(svc.writer.submit_command(command, actor=OPERATOR))
    tables = (t.incidents, t.signals, t.events)
    with svc.engine.connect() as conn:
        given = {
            tb.name: conn.execute(sa.select(sa.func.max(tb.c.id))).scalar_one() for tb in tables
        }

    # the fire category's 100 days are past; the cardiac call is still open
    run = run_retention(svc.engine, POLICY, audit_chain(svc.config), T0 + timedelta(days=150))
    assert run.counts["incidents"] == 1
    with svc.engine.connect() as conn:
        left = {
            tb.name: conn.execute(sa.select(sa.func.max(tb.c.id))).scalar_one() for tb in tables
        }
    assert all(left[name] < given[name] for name in given)  # the newest of each went
    svc.stop()  # last: it closes the engine's connections (one used after would stay open)

    clock.advance(days=150)
    again = services_factory(db_url, clock=clock, loop=loop, prepare=False)  # a restart
    assert again.hub.last_id == 0  # (the app's start sets it: hub_after_stored)
    again.hub_after_stored()
    assert again.hub.last_id == given["events"]  # consoles continue after the highest given
    (receipt,) = loop.run_until_complete(
        again.writer.submit_signals([signal("after", "FSTRU", lat=50.5)], actor=OPERATOR)
    )
    assert receipt.incident_id is not None and receipt.incident_id > newest
    with again.engine.connect() as conn:
        signal_id = conn.execute(
            sa.select(t.signals.c.id).where(t.signals.c.idempotency_key == "after")
        ).scalar_one()
        event_ids = list(
            conn.execute(
                sa.select(t.events.c.id).where(t.events.c.incident_id == receipt.incident_id)
            ).scalars()
        )
    assert signal_id > given["signals"]
    assert event_ids and min(event_ids) == given["events"] + 1
