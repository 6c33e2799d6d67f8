"""The writer: one thread owns every write, with group commit.

Callers (HTTP handlers, device receivers, the console, account and type changes) hand it
signals, commands or actions and await a future. The thread drains its queue — whatever has
gathered while the last commit was on disk (under load a moment longer: ``GATHER_BUSY``), up
to ``max_batch`` signals — runs each through
its handler (``service/batch.py``: one batch in its transaction, ``service/handlers.py``
per request), has the unit of work write the changes and their audit
entries in ONE transaction, commits, and only then completes the futures and hands the events
to the live stream. So a source hears "received" only for what is durably stored, an action
and its audit entry commit together or not at all, and throughput comes from sharing one
fsync between many signals (docs/architecture.md, "Durability contract").

If a transaction fails, nothing of the batch is stored and the pipeline's in-memory state is
rebuilt from the database, so memory never runs ahead of what was committed. A request its
handler refuses (an ``AlarmdeskError``) fails alone; on anything else each request of the
batch is tried again alone (``_commit_alone``), so that a poison request fails alone and the
alarms that queued with it are stored, unless the cause is every request's (the database, the
fence: ``_may_be_one_request``).

In distributed mode (docs/operations.md, "Several nodes") the writer is fenced: every
transaction first checks, in the database, that this node still holds the ``writer`` lease
(``fence``), and a batch of signals from a partition that its partition lease is still this
node's (``lease``); a node that lost either stores nothing more. When the writer lease comes
back with a new token (another node wrote meanwhile), the state is reloaded first.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from alarmdesk import logs
from alarmdesk.bus.commands import WriterSide
from alarmdesk.clock import Clock, utcnow
from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import AlarmdeskError, LeaseLost, WriterStopped
from alarmdesk.domain.events import EventType, IncidentEvent
from alarmdesk.domain.routing import compile_routes
from alarmdesk.domain.signal import Receipt, SignalIn
from alarmdesk.pipeline import Pipeline
from alarmdesk.safeguards.audit import Actor, AuditEvent
from alarmdesk.service import handlers
from alarmdesk.service.actions import Action
from alarmdesk.service.batch import Queued, Work, apply_batch, outcomes, settle
from alarmdesk.service.metrics import Metrics
from alarmdesk.store import repository as repo
from alarmdesk.store.audit import AuditChain
from alarmdesk.store.centre import revision as setup_revision
from alarmdesk.store.unit_of_work import Changes, UnitOfWork

__all__ = ["FailedAlone", "Writer", "WriterStopped"]

if TYPE_CHECKING:
    from alarmdesk.service.standby import Elsewhere

log = logs.get_logger(__name__)

# Group commit under load, as PostgreSQL's commit_delay with commit_siblings: when the last
# transaction held GATHER_BUSY requests or more, the writer waits up to ``gather`` seconds
# (``[writer] gather_ms``) for more before it commits, so that one flush of the log serves
# more of them. A lone alarm never waits: after a quiet transaction, the next commits at once.
# Under 64 connections of single signals it gave 7 % more signals a second for 9 % less CPU
# each, p99 lower (bench/README.md, "Gathering under load"); batches were unchanged.
GATHER_BUSY = 8
IDLE_TICK_SECONDS = 30.0  # how often the writer reloads types and checks for a due checkpoint
# How stale the silences may be before a batch: a silence made from the command line (another
# process) holds signals back at most this long after it is committed.
SILENCES_REREAD = timedelta(seconds=5)
# A failed transaction's requests are tried alone until this many failed alone (_commit_alone).
ALONE_FAILURES = 3

PipelineFactory = Callable[[sa.Connection], Pipeline]
Publish = Callable[[list[IncidentEvent]], None]
# Checks inside a transaction that this node may write; returns the writer lease's token.
Fence = Callable[[sa.Connection, datetime], int]


@dataclass(frozen=True, slots=True)
class FailedAlone:
    """A queued request's result when it failed in a transaction of its own, on what may be
    its own fault (``_may_be_one_request``): not stored, and not refused either."""

    error: Exception


def _may_be_one_request(exc: Exception) -> bool:
    """Whether a failed transaction may have failed for one of its requests rather than for
    all of them: not the fence (this node no longer writes: ``LeaseLost``, an
    ``AlarmdeskError``), not the database away, locked or out of space (``OperationalError``,
    ``InterfaceError``, a connection lost). A defect one signal meets, or a constraint or
    value one request breaks (``IntegrityError``, ``DataError``), may be one request's."""
    if isinstance(exc, AlarmdeskError):
        return False
    if isinstance(exc, sa.exc.DBAPIError):
        return not exc.connection_invalidated and not isinstance(
            exc, sa.exc.OperationalError | sa.exc.InterfaceError
        )
    return True


class Writer:
    def __init__(
        self,
        engine: sa.Engine,
        pipeline_factory: PipelineFactory,
        *,
        max_batch: int = 2000,
        gather: float = 0.0005,
        clock: Clock = utcnow,
        publish: Publish | None = None,
        audit: AuditChain | None = None,
        metrics: Metrics | None = None,
        fence: Fence | None = None,
    ) -> None:
        self.engine = engine
        self.fence = fence
        # Distributed mode: where work goes while this node does not write (a standby's
        # consoles act through it: service/standby.py). None: nowhere, 503 writer_stopped.
        self.elsewhere: Elsewhere | None = None
        self._fence_token: int | None = None  # the writer lease's token the state was read under
        self._stale = False  # a reload after a failed transaction could not reach the database
        self.metrics = metrics or Metrics()
        self.pipeline_factory = pipeline_factory
        self.max_batch = max_batch
        self.gather = gather  # seconds; see GATHER_BUSY
        self._last_requests = 0  # requests in the last transaction
        self.clock = clock
        self.publish = publish
        self.audit = audit
        self.uow = UnitOfWork(audit)
        self._queue: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self.state: handlers.State | None = None
        self._last_tick = time.monotonic()
        self._silences_read: datetime | None = None
        self._setup_seen: int | None = None  # the set-up revision the pipeline holds
        self.batches = 0  # for metrics and tests: transactions committed
        self.committed_signals = 0

    @property
    def pipeline(self) -> Pipeline | None:
        return self.state.pipeline if self.state is not None else None

    @property
    def minimised(self) -> int:
        return self.state.minimised if self.state is not None else 0

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
    def backlog(self) -> int:
        """Requests waiting for the writer (a transaction's worth is taken at a time)."""
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _load(self) -> None:
        minimised = self.minimised
        with self.engine.connect() as conn:
            self.state = handlers.load_state(conn, self.pipeline_factory)
        self.state.minimised = minimised

    # -- the API for callers (on the event loop) ---------------------------------------------

    async def submit_signals(
        self, signals: Sequence[SignalIn], actor: Actor | None = None
    ) -> list[Receipt]:
        """Stores the signals (all or none) and returns their receipts once committed.

        Raises:
            IdempotencyKeyReused: a key was used before with different content.
        """
        receipts: list[Receipt] = await self._submit(
            Work(asyncio.get_running_loop(), self._future(), signals=signals, actor=actor)
        )
        return receipts

    async def submit_queued(self, requests: Sequence[Queued]) -> list[Any]:
        """Stores requests taken from the intake log, in their order; returns once every one
        is committed or failed. Per request:

        - its receipts: stored;
        - the ``AlarmdeskError`` that refused it alone (a key reused with other content);
        - :class:`FailedAlone`: it failed in a transaction of its own on what may be its own
          fault (a defect it meets); the caller decides how often to try it again;
        - another exception: not stored, for a cause that may be every request's (the
          database away) or untried (``_commit_alone`` gave up); it is tried again.

        Raises:
            LeaseLost: a partition lease is no longer this node's (nothing of that request
                was stored; the log redelivers it to the new holder).
        """
        loop = asyncio.get_running_loop()
        works = [
            Work(
                loop,
                loop.create_future(),
                signals=r.signals,
                actor=r.actor,
                received_at=r.received_at,
                lease=r.lease,
            )
            for r in requests
        ]
        if not self.alive:
            raise WriterStopped("the writer is not running")
        for w in works:  # in order, without a suspension between: one thread drains them
            self._queue.put(w)
        results: list[Any] = []
        for w in works:
            try:
                results.append(await asyncio.shield(w.future))
            except LeaseLost:
                raise
            except AlarmdeskError as exc:
                results.append(exc)
            except Exception as exc:
                results.append(FailedAlone(exc) if w.failed_alone else exc)
        return results

    async def reload(self) -> None:
        """Rebuilds the pipeline's state from the database, in the writer's order: work queued
        after this sees what every other node committed before it."""
        await self._submit(Work(asyncio.get_running_loop(), self._future(), reload_state=True))

    def side(self, *, same_machine: bool = False) -> WriterSide:
        """This writer's entry points for requests from another process, while it runs: a
        standby's over NATS, or (``same_machine``) an HTTP worker's over the link, which also
        hands over audit entries and has the types in force taken up."""
        return WriterSide(
            lambda: self.alive,
            self.submit_command,
            self.submit_unit_report,
            self.submit_signals,
            self.submit_audit if same_machine else None,
            self.reload_taxonomy if same_machine else None,
        )

    @property
    def serving(self) -> bool:
        """Whether work submitted here is done: this writer runs, or (distributed mode) the
        node that writes takes it (:attr:`elsewhere`)."""
        return self.alive or self.elsewhere is not None

    async def submit_command(
        self, command: c.Command, actor: Actor | None = None
    ) -> dict[str, Any]:
        """Applies an operator command; returns the incident as it is after it."""
        view: dict[str, Any] = await self._submit(
            Work(asyncio.get_running_loop(), self._future(), command=command, actor=actor)
        )
        return view

    async def run(self, action: Action) -> Any:
        """Runs a configuration or account change and its audit entries in one transaction.

        A refused action (an AlarmdeskError, raised to the caller) stores nothing but its
        denial entry; if appending the audit entries fails, the action is not stored either.
        """
        return await self._submit(
            Work(
                asyncio.get_running_loop(),
                self._future(),
                action=action,
                reload_taxonomy=action.reload_taxonomy,
                reload_silences=action.reload_silences,
                reload_setup=action.reload_setup,
            )
        )

    async def reload_taxonomy(self, audit: Sequence[AuditEvent] = ()) -> None:
        """Puts the types in force now into the pipeline (after an approval)."""
        await self._submit(
            Work(asyncio.get_running_loop(), self._future(), audit=audit, reload_taxonomy=True)
        )

    async def submit_unit_report(
        self, report: c.UnitReport, actor: Actor | None = None
    ) -> dict[str, Any]:
        """Applies a unit's status or position report; returns the unit as it is after it."""
        view: dict[str, Any] = await self._submit(
            Work(asyncio.get_running_loop(), self._future(), unit_report=report, actor=actor)
        )
        return view

    async def fire_due(self) -> None:
        """Fires the escalation timers due now and returns once they are committed. The
        writer does this by itself when a timer falls due; a test moving a clock by hand
        calls it."""
        await self._submit(Work(asyncio.get_running_loop(), self._future()))

    async def submit_audit(self, events: Sequence[AuditEvent]) -> None:
        """Appends audit entries; returns once they are committed."""
        if self.audit is None or not events:
            return
        await self._submit(Work(asyncio.get_running_loop(), self._future(), audit=events))

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _submit(self, work: Work) -> Any:
        if not self.alive:
            if self.elsewhere is not None:  # a node that does not write: service/standby.py
                return await self.elsewhere.take(work)
            raise WriterStopped("the writer is not running")
        self._queue.put(work)
        # shield: a client that goes away does not cancel what is being committed.
        return await asyncio.shield(work.future)

    # -- the thread ----------------------------------------------------------------------------

    def _run(self) -> None:
        logs.bind(component="writer")
        try:
            self._load()
        except BaseException as exc:  # reported to start()
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        conn: sa.Connection | None = self.engine.connect()
        try:
            while True:
                try:
                    first = self._queue.get(timeout=self._wait())
                except queue.Empty:
                    # Woken for an escalation timer: a batch of its own fires it.
                    escalate = self._escalation_due()
                    conn = self._commit(conn, []) if escalate else self._tick(conn)
                    if time.monotonic() - self._last_tick > IDLE_TICK_SECONDS:
                        conn = self._tick(conn)
                    continue
                if first is None:
                    return
                works = [first]
                size = len(first.signals) or 1
                stop = False
                # under load, a short wait for more requests (GATHER_BUSY); else none
                gather = self.gather if self._last_requests >= GATHER_BUSY else 0.0
                gather_end = time.monotonic() + gather
                while size < self.max_batch:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        left = gather_end - time.monotonic()
                        if left <= 0:
                            break
                        try:
                            nxt = self._queue.get(timeout=left)
                        except queue.Empty:
                            break
                    if nxt is None:
                        stop = True
                        break
                    works.append(nxt)
                    size += len(nxt.signals) or 1
                self._last_requests = len(works)
                conn = self._commit(conn, works)
                if stop:
                    return
                if time.monotonic() - self._last_tick > IDLE_TICK_SECONDS:
                    conn = self._tick(conn)  # under constant load too
        finally:
            if conn is not None:
                conn.close()

    def _reload_setup(self, conn: sa.Connection, state: handlers.State) -> None:
        """Takes up a new set-up: new incidents route and escalate by it; open ones keep
        the desks and the policy they have. Units come back as last committed (this writer
        committed every change of theirs), so none of their state is lost."""
        p = state.pipeline
        p.taxonomy = repo.load_taxonomy(conn)  # the centre's own procedures
        p.desks = repo.load_desks(conn)
        if p.desks and p.fallback_desk not in {d.id for d in p.desks}:
            p.fallback_desk = p.desks[0].id  # the configured fallback desk was removed
        p.routes = compile_routes(repo.load_routes(conn), {d.id: d.area for d in p.desks})
        p.policies = tuple(repo.load_policies(conn))
        p.units = {u.id: u for u in repo.load_units(conn)}

    def _setup_changed(self, conn: sa.Connection, state: handlers.State) -> None:
        """A set-up applied in this batch: taken up now, and known as read."""
        self._reload_setup(conn, state)
        self._setup_seen = setup_revision(conn)

    def _fenced(self, conn: sa.Connection, now: datetime) -> None:
        """Distributed mode: refuses the transaction unless this node holds the writer
        lease; a new token (the lease was another node's meanwhile) reloads the state."""
        if self.fence is None:
            return
        token = self.fence(conn, now)  # raises LeaseLost
        if self._fence_token is not None and token != self._fence_token:
            log.warning("the writer lease changed hands since the state was read; reloading")
            self._reload_in(conn)
        self._fence_token = token

    def _reload_in(self, conn: sa.Connection) -> None:
        minimised = self.minimised
        self.state = handlers.load_state(conn, self.pipeline_factory)
        self.state.minimised = minimised
        self._setup_seen = None

    def _escalation_due(self) -> bool:
        due = self.state.pipeline.next_due() if self.state is not None else None
        return due is not None and due <= self.clock()

    def _wait(self) -> float:
        """How long the idle writer may sleep: until the next escalation timer at most."""
        due = self.state.pipeline.next_due() if self.state is not None else None
        if due is None:
            return IDLE_TICK_SECONDS
        return min(IDLE_TICK_SECONDS, max(0.0, (due - self.clock()).total_seconds()))

    def _tick(self, conn: sa.Connection | None) -> sa.Connection | None:
        """While idle: take up types approved from the command line, and sign a checkpoint
        if one is due by time."""
        try:
            conn = self._ready_connection(conn)
            with conn.begin():
                self._fenced(conn, self.clock())
                if self.state is not None:
                    self.state.pipeline.taxonomy = repo.load_taxonomy(conn)
                self.uow.append_audit(conn, [], self.clock())
        except Exception:
            log.exception("periodic writer work failed")
            if self.audit is not None:
                self.audit.reset()
            conn = self._reconnect(conn)
        self._last_tick = time.monotonic()
        return conn

    def _ready_connection(self, conn: sa.Connection | None) -> sa.Connection:
        """A connection to write with (a new one after the database was lost), and the
        state reloaded if an earlier reload could not reach the database. Raises what the
        database raises: the caller's transaction fails, the thread goes on."""
        if conn is None:
            conn = self.engine.connect()
        if self._stale:
            self._reload_in(conn)
            conn.commit()  # ends the reading transaction before the writing one begins
            self._stale = False
        return conn

    def _reconnect(self, conn: sa.Connection | None) -> sa.Connection | None:
        """After a failed transaction: a new connection, or None while the database cannot
        be reached (the next transaction tries again; the writer thread never dies of it)."""
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        try:
            return self.engine.connect()
        except Exception:
            log.warning("the database cannot be reached; the next transaction tries again")
            return None

    def _commit(self, conn: sa.Connection | None, works: list[Work]) -> sa.Connection | None:
        changes = Changes()
        now = self.clock()
        started = time.perf_counter()
        try:
            conn = self._ready_connection(conn)
            with conn.begin():
                self._apply(conn, works, changes, now)
                self.uow.write(conn, changes, now)
        except Exception as exc:
            one_request = _may_be_one_request(exc)
            alone = len(works) > 1 and one_request
            if len(works) == 1:
                works[0].failed_alone = one_request
            log.exception(
                "writer transaction failed; each request of it is tried alone"
                if alone
                else "writer transaction failed; every request of it gets the error",
                requests=len(works),
                signals=sum(len(w.signals) for w in works),
                incident_ids=[w.command.incident_id for w in works if w.command is not None],
            )
            self.metrics.commit_failures.inc()
            conn = self._reconnect(conn)
            if self.audit is not None:
                self.audit.reset()
            try:
                self._load()  # memory must not run ahead of the database
            except Exception:
                # the database is gone: the state may hold what was never committed, so it
                # is reloaded before the next transaction, which fails until it can be
                self._stale = True
                alone = False
                log.exception("reloading the pipeline failed; reloaded before the next batch")
            if alone:
                return self._commit_alone(conn, works, exc)
            for w in works:
                if w.error is None:
                    w.error = exc
            for source, outcome, n in outcomes(works, failed=True):
                self.metrics.signals.labels(source, outcome).inc(n)
        else:
            self.batches += 1
            self.committed_signals += len(changes.signals)
            self.metrics.committed(
                outcomes(works, failed=False),
                len(changes.signals),
                time.perf_counter() - started,
                (w.queued for w in works),
                sum(1 for e in changes.events if e.type is EventType.ESCALATED),
            )
            if self.publish is not None and changes.events:
                try:
                    self.publish(changes.events)
                except Exception:
                    log.exception("publishing events failed (they stay in the outbox)")
        self._complete(works)
        return conn

    def _commit_alone(
        self, conn: sa.Connection | None, works: list[Work], exc: Exception
    ) -> sa.Connection | None:
        """After a transaction of several requests failed on something no handler refuses
        (a defect one signal meets, a value one request breaks a constraint with): each
        request in a transaction of its own, so that one poison request fails alone and the
        alarms that queued with it are stored. After ``ALONE_FAILURES`` failures alone the
        cause is taken to be every request's, and the rest get the error untried: each
        failure costs a reload of the pipeline's state."""
        failures = 0
        for i, w in enumerate(works):
            if failures >= ALONE_FAILURES or self._stale:
                for rest in works[i:]:
                    rest.error = rest.error or exc
                for source, outcome, n in outcomes(works[i:], failed=True):
                    self.metrics.signals.labels(source, outcome).inc(n)
                self._complete(works[i:])
                break
            w.result, w.error, w.failed_alone = None, None, False  # void with the transaction
            committed = self.batches
            conn = self._commit(conn, [w])
            failures += self.batches == committed
        return conn

    def _complete(self, works: list[Work]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Work]] = {}
        for w in works:
            by_loop.setdefault(w.loop, []).append(w)
        for loop, ws in by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, ws)

    # -- applying a batch ------------------------------------------------------------------------

    def _apply(
        self, conn: sa.Connection, works: list[Work], changes: Changes, now: datetime
    ) -> None:
        self._fenced(conn, now)
        if any(w.reload_state for w in works):
            self._reload_in(conn)
        state = self.state
        assert state is not None
        # Silences and set-up changes made by another process (the command line) take effect
        # within seconds.
        if self._silences_read is None or now - self._silences_read >= SILENCES_REREAD:
            state.pipeline.silences = repo.load_silences(conn, now)
            self._silences_read = now
            seen = setup_revision(conn)
            if self._setup_seen is not None and seen != self._setup_seen:
                self._reload_setup(conn, state)
                log.info(
                    "set-up changed; desks, units, routing, escalation and procedures reloaded"
                )
            self._setup_seen = seen
        apply_batch(conn, state, works, changes, now, self._setup_changed)
        if self.audit is None:
            changes.audit.clear()
