"""The writer: one thread owns every write, with group commit.

Callers (HTTP handlers, device receivers, the console) hand it signals or commands and
await a future. The thread drains its queue — whatever has gathered while the last commit
was on disk, up to ``max_batch`` signals — applies everything to the pipeline, writes
signals, incident changes, unit changes and events in ONE transaction, commits, and only
then completes the futures and hands the events to the live stream. So a source hears
"received" only for what is durably stored, and throughput comes from sharing one fsync
between many signals (shared/DESIGN.md, "Durability contract").

If a transaction fails, nothing of the batch is stored, every caller gets the error, and
the pipeline's in-memory state is rebuilt from the database, so memory never runs ahead of
what was committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import (
    AlarmdeskError,
    IdempotencyKeyReused,
    InvalidField,
    InvalidTransition,
    NotFound,
    WriterStopped,
)
from alarmdesk.domain.events import EventType, IncidentEvent
from alarmdesk.domain.incident import Incident, incident_dict
from alarmdesk.domain.signal import Receipt, SignalIn, content_digest, settle_key, to_signal
from alarmdesk.domain.units import Unit
from alarmdesk.pipeline import Pipeline
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation, Outcome
from alarmdesk.safeguards.minimise import minimise
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.store.audit import AuditChain
from alarmdesk.store.bulk import BulkInsert

log = logging.getLogger(__name__)

IDLE_TICK_SECONDS = 30.0  # how often the writer reloads types and checks for a due checkpoint

Clock = Callable[[], datetime]
PipelineFactory = Callable[[sa.Connection], Pipeline]
Publish = Callable[[list[IncidentEvent]], None]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Work:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    signals: Sequence[SignalIn] = ()
    command: c.Command | None = None
    actor: Actor | None = None  # who submitted it; its audit entry is written with it
    audit: Sequence[AuditEvent] = ()  # entries to append, alone or beside the work
    reload_taxonomy: bool = False  # the types in force changed (a custom type was approved)
    result: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class _Batch:
    """What one transaction writes."""

    signals: list[dict[str, Any]] = field(default_factory=list)
    opened: dict[int, Incident] = field(default_factory=dict)
    touched: dict[int, Incident] = field(default_factory=dict)
    rerouted: set[int] = field(default_factory=set)
    commanded: set[int] = field(default_factory=set)  # incidents an operator command changed
    units: dict[str, Unit] = field(default_factory=dict)
    events: list[IncidentEvent] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)


class Writer:
    def __init__(
        self,
        engine: sa.Engine,
        pipeline_factory: PipelineFactory,
        *,
        max_batch: int = 2000,
        clock: Clock = utcnow,
        publish: Publish | None = None,
        audit: AuditChain | None = None,
    ) -> None:
        self.engine = engine
        self.pipeline_factory = pipeline_factory
        self.max_batch = max_batch
        self.clock = clock
        self.publish = publish
        self.audit = audit
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self.pipeline: Pipeline | None = None
        self.next_signal_id = 1
        self.next_event_id = 1
        self._last_tick = time.monotonic()
        self._bulk_inserts: dict[str, BulkInsert] | None = None
        self.batches = 0  # for metrics and tests: transactions committed
        self.committed_signals = 0
        self.minimised = 0  # payload keys and objects dropped by minimisation (a count only)

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Loads state from the database and starts the thread; raises if loading fails."""
        self._thread = threading.Thread(target=self._run, name="alarmdesk-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._start_error is not None:
            raise self._start_error

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _load(self) -> None:
        with self.engine.connect() as conn:
            self.pipeline = self.pipeline_factory(conn)
            self.next_signal_id = repo.max_id(conn, t.signals) + 1
            self.next_event_id = repo.max_id(conn, t.events) + 1

    # -- the API for callers (on the event loop) ---------------------------------------------

    async def submit_signals(
        self, signals: Sequence[SignalIn], actor: Actor | None = None
    ) -> list[Receipt]:
        """Stores the signals (all or none) and returns their receipts once committed.

        Raises:
            IdempotencyKeyReused: a key was used before with different content.
        """
        receipts: list[Receipt] = await self._submit(
            _Work(asyncio.get_running_loop(), self._future(), signals=signals, actor=actor)
        )
        return receipts

    async def submit_command(
        self, command: c.Command, actor: Actor | None = None
    ) -> dict[str, Any]:
        """Applies an operator command; returns the incident as it is after it."""
        view: dict[str, Any] = await self._submit(
            _Work(asyncio.get_running_loop(), self._future(), command=command, actor=actor)
        )
        return view

    async def reload_taxonomy(self, audit: Sequence[AuditEvent] = ()) -> None:
        """Puts the types in force now into the pipeline (after an approval)."""
        await self._submit(
            _Work(asyncio.get_running_loop(), self._future(), audit=audit, reload_taxonomy=True)
        )

    async def submit_audit(self, events: Sequence[AuditEvent]) -> None:
        """Appends audit entries; returns once they are committed."""
        if self.audit is None or not events:
            return
        await self._submit(_Work(asyncio.get_running_loop(), self._future(), audit=events))

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _submit(self, work: _Work) -> Any:
        if not self.alive:
            raise WriterStopped("the writer is not running")
        self._queue.put(work)
        # shield: a client that goes away does not cancel what is being committed.
        return await asyncio.shield(work.future)

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._load()
        except BaseException as exc:  # reported to start()
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        conn = self.engine.connect()
        try:
            while True:
                try:
                    first = self._queue.get(timeout=IDLE_TICK_SECONDS)
                except queue.Empty:
                    conn = self._tick(conn)
                    continue
                if first is None:
                    return
                works = [first]
                size = len(first.signals) or 1
                stop = False
                while size < self.max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    works.append(nxt)
                    size += len(nxt.signals) or 1
                conn = self._commit(conn, works)
                if stop:
                    return
                if time.monotonic() - self._last_tick > IDLE_TICK_SECONDS:
                    conn = self._tick(conn)  # under constant load too
        finally:
            conn.close()

    def _tick(self, conn: sa.Connection) -> sa.Connection:
        """While idle: take up types approved from the command line, and sign a checkpoint
        if one is due by time."""
        try:
            with conn.begin():
                if self.pipeline is not None:
                    self.pipeline.taxonomy = repo.load_taxonomy(conn)
                if self.audit is not None:
                    self.audit.append(conn, (), self.clock())
        except Exception:
            log.exception("periodic writer work failed")
            if self.audit is not None:
                self.audit.reset()
            conn.close()
            conn = self.engine.connect()
        self._last_tick = time.monotonic()
        return conn

    def _commit(self, conn: sa.Connection, works: list[_Work]) -> sa.Connection:
        batch = _Batch()
        try:
            with conn.begin():
                self._apply(conn, works, batch)
                self._write(conn, batch)
        except Exception as exc:
            log.exception("writer transaction failed; %d requests get the error", len(works))
            for w in works:
                if w.error is None:
                    w.error = exc
            with contextlib.suppress(Exception):
                conn.close()
            conn = self.engine.connect()
            if self.audit is not None:
                self.audit.reset()
            try:
                self._load()  # memory must not run ahead of the database
            except Exception:
                log.exception("reloading the pipeline failed")
        else:
            self.batches += 1
            self.committed_signals += len(batch.signals)
            if self.publish is not None and batch.events:
                try:
                    self.publish(batch.events)
                except Exception:
                    log.exception("publishing events failed (they stay in the outbox)")
        self._complete(works)
        return conn

    def _complete(self, works: list[_Work]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Work]] = {}
        for w in works:
            by_loop.setdefault(w.loop, []).append(w)
        for loop, ws in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, ws)

    # -- applying a batch ------------------------------------------------------------------------

    def _apply(self, conn: sa.Connection, works: list[_Work], batch: _Batch) -> None:
        assert self.pipeline is not None
        now = self.clock()
        # One query for every key in the batch: earlier receipts, to answer resends.
        keyed = [(w, [settle_key(s) for s in w.signals]) for w in works if w.signals]
        all_keys = [k for _, ks in keyed for k in ks if not k.startswith("auto:")]
        known: dict[str, tuple[Receipt, str]] = {}
        for i in range(0, len(all_keys), 500):
            chunk = all_keys[i : i + 500]
            q = sa.select(
                t.signals.c.idempotency_key,
                t.signals.c.id,
                t.signals.c.incident_id,
                t.signals.c.received_at,
                t.signals.c.content_digest,
            ).where(t.signals.c.idempotency_key.in_(chunk))
            for r in conn.execute(q):
                known[r.idempotency_key] = (
                    Receipt(
                        signal_id=r.id,
                        incident_id=r.incident_id,
                        idempotency_key=r.idempotency_key,
                        received_at=r.received_at,
                    ),
                    r.content_digest,
                )
        keys_of = {id(w): ks for w, ks in keyed}
        collected: dict[Actor, list[_Work]] = {}
        for w in works:
            if w.command is not None:
                self._apply_command(conn, w, w.command, now, batch)
            elif w.signals:
                self._apply_signals(w, keys_of[id(w)], known, now, batch)
            if w.reload_taxonomy:
                self.pipeline.taxonomy = repo.load_taxonomy(conn)
            if self.audit is not None:
                batch.audit.extend(w.audit)
                if w.actor is not None and w.signals and w.error is None:
                    collected.setdefault(w.actor, []).append(w)
                elif w.actor is not None:
                    batch.audit.append(_audit_of(w))
        # One "collect" entry per source and transaction, however many requests it sent:
        # every signal is still on record (ids and count), at a fraction of the cost.
        for actor, ws in collected.items():
            batch.audit.append(_collected(actor, ws))

    def _apply_signals(
        self,
        w: _Work,
        keys: list[str],
        known: dict[str, tuple[Receipt, str]],
        now: datetime,
        batch: _Batch,
    ) -> None:
        assert self.pipeline is not None
        try:
            digests = [content_digest(s) for s in w.signals]
        except (OverflowError, ValueError) as exc:  # one bad request never fails its batch
            w.error = InvalidField(f"a signal cannot be stored: {exc}", code="invalid_value")
            return
        # All or nothing per request: look for a reused key before applying any signal.
        local: dict[str, str] = {}
        for key, fp in zip(keys, digests, strict=True):
            seen = known[key][1] if key in known else local.get(key)
            if seen is not None and seen != fp:
                w.error = IdempotencyKeyReused(
                    f"idempotency key {key!r} was used before for a different signal",
                    field="idempotency_key",
                )
                return
            local[key] = fp
        receipts: list[Receipt] = []
        for s, key, fp in zip(w.signals, keys, digests, strict=True):
            if key in known:
                receipts.append(known[key][0])
                continue
            # Minimisation, the one step every source passes (adapters may have run it too;
            # it is idempotent): special-category keys never reach the store.
            s, dropped = minimise(s)
            self.minimised += dropped
            signal = to_signal(s, id=self.next_signal_id, key=key, fp=fp, received_at=now)
            self.next_signal_id += 1
            result = self.pipeline.ingest(signal)
            batch.signals.append(
                t.row(
                    t.signals,
                    id=signal.id,
                    idempotency_key=key,
                    content_digest=fp,
                    source_kind=signal.source_kind.value,
                    source_id=signal.source_id,
                    type_code=signal.type_code,
                    occurred_at=signal.occurred_at,
                    received_at=now,
                    location=repo.location_json(signal.location),
                    summary=signal.summary,
                    payload=signal.payload,
                    condition=signal.condition,
                    record_only=signal.record_only,
                    incident_id=result.incident_id,
                )
            )
            self._collect(result.incidents, result.units, result.events, batch)
            receipt = Receipt(
                signal_id=signal.id,
                incident_id=result.incident_id,
                idempotency_key=key,
                received_at=now,
            )
            known[key] = (receipt, fp)
            receipts.append(receipt)
        w.result = receipts

    def _apply_command(
        self, conn: sa.Connection, w: _Work, cmd: c.Command, now: datetime, batch: _Batch
    ) -> None:
        assert self.pipeline is not None
        try:
            result = self.pipeline.handle(cmd, now)
        except NotFound as exc:
            status = conn.execute(
                sa.select(t.incidents.c.status).where(t.incidents.c.id == cmd.incident_id)
            ).scalar()
            w.error = (
                exc
                if status is None
                else InvalidTransition(
                    f"incident {cmd.incident_id} is {status}; nothing more can be done to it",
                    field="status",
                )
            )
            return
        except AlarmdeskError as exc:
            w.error = exc
            return
        self._collect(result.incidents, result.units, result.events, batch)
        batch.commanded.add(cmd.incident_id)
        w.result = incident_dict(result.incidents[cmd.incident_id])

    def _collect(
        self,
        incidents: dict[int, Incident],
        units: dict[str, Unit],
        events: list[IncidentEvent],
        batch: _Batch,
    ) -> None:
        for ev in events:
            ev.id = self.next_event_id
            self.next_event_id += 1
            batch.events.append(ev)
            if ev.type is EventType.OPENED:
                batch.opened[ev.incident_id] = incidents[ev.incident_id]
            elif ev.type is EventType.RECLASSIFIED:
                batch.rerouted.add(ev.incident_id)
        batch.touched.update(incidents)
        batch.units.update(units)

    def _bulk(self, conn: sa.Connection) -> dict[str, BulkInsert]:
        if self._bulk_inserts is None:
            name = conn.dialect.name
            self._bulk_inserts = {
                tb.name: BulkInsert(tb, name)
                for tb in (t.incidents, t.signals, t.incident_desks, t.events)
            }
        return self._bulk_inserts

    def _write(self, conn: sa.Connection, batch: _Batch) -> None:
        bulk = self._bulk(conn)
        if batch.opened:
            bulk[t.incidents.name].execute(
                conn, [repo.incident_row(i) for i in batch.opened.values()]
            )
        if batch.signals:
            bulk[t.signals.name].execute(conn, batch.signals)
        # A repeat signal changes a few counters; a command may change anything.
        repeats = [
            i
            for k, i in batch.touched.items()
            if k not in batch.opened and k not in batch.commanded
        ]
        if repeats:
            conn.execute(
                _UPDATE_REPEAT,
                [
                    {
                        "b_id": i.id,
                        "b_count": i.signal_count,
                        "b_last_seen": i.last_seen,
                        "b_priority": i.priority,
                        "b_condition": i.condition.value,
                        "b_version": i.version,
                    }
                    for i in repeats
                ],
            )
        updated = [
            repo.incident_row(i)
            for k, i in batch.touched.items()
            if k not in batch.opened and k in batch.commanded
        ]
        if updated:
            conn.execute(
                t.incidents.update().where(t.incidents.c.id == sa.bindparam("b_id")),
                [{**{k: v for k, v in r.items() if k != "id"}, "b_id": r["id"]} for r in updated],
            )
        routes = [
            {"incident_id": i.id, "desk_id": d} for i in batch.opened.values() for d in i.desks
        ]
        if batch.rerouted:
            conn.execute(
                t.incident_desks.delete().where(t.incident_desks.c.incident_id.in_(batch.rerouted))
            )
            routes += [
                {"incident_id": i, "desk_id": d}
                for i in batch.rerouted
                if i not in batch.opened
                for d in batch.touched[i].desks
            ]
        if routes:
            bulk[t.incident_desks.name].execute(conn, routes)
        if batch.units:
            conn.execute(
                t.units.update().where(t.units.c.id == sa.bindparam("b_id")),
                [
                    {"b_id": u.id, "status": u.status.value, "incident_id": u.incident_id}
                    for u in batch.units.values()
                ],
            )
        if self.audit is not None and batch.audit:
            self.audit.append(conn, batch.audit, self.clock())
        if batch.events:
            bulk[t.events.name].execute(
                conn,
                [
                    t.row(
                        t.events,
                        id=e.id,
                        incident_id=e.incident_id,
                        type=e.type.value,
                        at=e.at,
                        actor=e.actor,
                        desks=list(e.desks),
                        detail=e.detail,
                        snapshot=e.snapshot,
                    )
                    for e in batch.events
                ],
            )


_UPDATE_REPEAT = (
    t.incidents.update()
    .where(t.incidents.c.id == sa.bindparam("b_id"))
    .values(
        signal_count=sa.bindparam("b_count"),
        last_seen=sa.bindparam("b_last_seen"),
        priority=sa.bindparam("b_priority"),
        condition=sa.bindparam("b_condition"),
        version=sa.bindparam("b_version"),
    )
)


def _audit_of(w: _Work) -> AuditEvent:
    """The entry for a submission: what was collected or altered, never its content."""
    assert w.actor is not None
    outcome, rule = Outcome.ALLOWED, ""
    if w.error is not None:
        outcome, rule = Outcome.DENIED, getattr(w.error, "code", type(w.error).__name__)
    if w.command is not None:
        return AuditEvent(
            w.actor,
            Operation.ALTER,
            "incident",
            str(w.command.incident_id),
            outcome,
            rule or type(w.command).__name__.lower(),
        )
    receipts: list[Receipt] = w.result or []
    ids = [r.signal_id for r in receipts]
    return AuditEvent(
        w.actor,
        Operation.COLLECT,
        "signal",
        f"{min(ids)}-{max(ids)}" if ids else "",
        outcome,
        rule,
        detail={"count": len(w.signals)},
    )


def _collected(actor: Actor, works: list[_Work]) -> AuditEvent:
    ids = [r.signal_id for w in works for r in (w.result or [])]
    return AuditEvent(
        actor,
        Operation.COLLECT,
        "signal",
        f"{min(ids)}-{max(ids)}" if ids else "",
        Outcome.ALLOWED,
        "",
        detail={"count": sum(len(w.signals) for w in works), "requests": len(works)},
    )


def _settle(works: list[_Work]) -> None:
    for w in works:
        if w.future.done():
            continue
        if w.error is not None:
            w.future.set_exception(w.error)
        else:
            w.future.set_result(w.result)
