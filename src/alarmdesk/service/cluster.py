"""Distributed mode: this node among others, on one PostgreSQL database and one intake log
(docs/operations.md, "Several nodes").

- **Intake** (:meth:`Node.publish`): the edge settles each signal's idempotency key, finds
  its partition (``domain/correlation.fold_scope``; a call-taker's ``join`` takes the scope of
  the incident it joins) and publishes it to JetStream; the sender hears 202 "queued" once
  JetStream has stored it.
- **Ownership** (:class:`Ownership`): a node consumes partition ``p`` only while it holds the
  lease ``intake-<p>`` (``store/leases.py``). Each node keeps a heartbeat lease
  ``node-<id>``; the live heartbeats say how many nodes share the work, and a node holds at
  most ``ceil(partitions / live nodes)``: it takes free or expired partitions up to that,
  and gives back the ones above it (a node that joins gets its share within a few renewals).
  Leases are renewed every third of their time to live; a partition whose renewal fails is
  stopped at once, and one that expires (its node died) is taken by another node.
- **Fencing**: the consumer hands a batch to the writer with its partition lease, and the
  writer's transaction checks the lease in the database (``leases.holds``, FOR SHARE) before
  it stores anything: a node that lost a partition cannot commit into it, and a node that
  takes over waits for the old holder's transaction to end. A node that gains a partition
  has its writer reload the pipeline's state before consuming it.
- **One writer node** (this slice): the in-memory state of open incidents, escalation
  timers, operator commands and the id counters are still one writer's. So a node writes only
  while it holds the ``writer`` lease, checked in every writer transaction; another node
  waits at start-up as a standby and takes over when the lease expires. The partitions and
  their leases are what lets later slices spread that work over several writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from alarmdesk import logs
from alarmdesk.bus.jetstream import (
    IntakeLog,
    LogSettings,
    PartitionConsumer,
    QueuedSignal,
    message_id,
    partition_of,
)
from alarmdesk.clock import Clock, utcnow
from alarmdesk.domain.correlation import fold_scope, scope_of_incident
from alarmdesk.domain.errors import AlarmdeskError, LeaseLost, Unavailable
from alarmdesk.domain.signal import SignalIn
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import parked
from alarmdesk.service.batch import Queued
from alarmdesk.service.writer import FailedAlone, Writer
from alarmdesk.store import leases
from alarmdesk.store import repository as repo

__all__ = [
    "NODE_PREFIX",
    "PARTITION_PREFIX",
    "WRITER_LEASE",
    "Node",
    "Ownership",
    "fair_share",
    "publish_queued",
]

log = logs.get_logger(__name__)

WRITER_LEASE = "writer"
NODE_PREFIX = "node-"
PARTITION_PREFIX = "intake-"
FORGET_NODES_AFTER = timedelta(hours=1)  # a stopped node's heartbeat row is deleted then

BatchStore = Callable[[int, leases.Lease, list[QueuedSignal]], Awaitable[None]]


def fair_share(partitions: int, live_nodes: int) -> int:
    """How many partitions one node may hold: every partition has an owner, and no node
    holds more than one above another."""
    return math.ceil(partitions / max(1, live_nodes))


def settle_queued_key(signal: SignalIn) -> str:
    """The key a queued signal is stored under, settled at the edge: a keyless signal gets a
    fresh one now (the writer's ``auto:`` keys are never looked up, so a redelivered keyless
    signal must carry a key that is)."""
    if signal.idempotency_key is None:
        signal.idempotency_key = f"queued:{uuid.uuid4().hex}"
    return signal.idempotency_key


@dataclass(slots=True)
class _Held:
    lease: leases.Lease
    consumer: PartitionConsumer


class Ownership:
    """Holds this node's share of the partitions and runs a consumer for each one held.

    ``store`` is called with a partition, its lease and a batch; it returns once the batch
    is committed (the consumer acknowledges it then). ``on_gain`` runs before the consumers
    of newly gained partitions start (the writer's reload).
    """

    def __init__(
        self,
        engine: sa.Engine,
        intake: IntakeLog,
        holder: str,
        store: BatchStore,
        *,
        ttl: timedelta = timedelta(seconds=15),
        clock: Clock = utcnow,
        on_gain: Callable[[], Awaitable[None]] | None = None,
        batch: int = 256,
    ) -> None:
        self.engine = engine
        self.intake = intake
        self.holder = holder
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self.on_gain = on_gain
        self.batch = batch
        self.partitions = intake.settings.partitions
        self.held: dict[int, _Held] = {}
        self.heartbeat: leases.Lease | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    @property
    def renew_every(self) -> float:
        return self.ttl.total_seconds() / 3

    def owned(self) -> set[int]:
        return {p for p, h in self.held.items() if h.consumer.running}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"ownership-{self.holder}")

    async def stop(self, *, release: bool = True) -> None:
        """Stops every consumer (a batch in hand is finished), then gives the leases back so
        another node takes over at once (``release=False``: they expire, as if it died)."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        held = list(self.held.values())
        self.held.clear()
        for h in held:
            h.consumer.stop()
        for h in held:
            await h.consumer.wait()
        if release:
            now = self.clock()
            gone = [h.lease for h in held]
            if self.heartbeat is not None:
                gone.append(self.heartbeat)
            await asyncio.to_thread(_release_all, self.engine, gone, now)

    async def _run(self) -> None:
        logs.bind(component="ownership", node=self.holder)
        while not self._stopping.is_set():
            try:
                await self.round()
            except Exception:
                log.exception("partition ownership round failed")
                self._stop_expiring()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.renew_every)

    # -- one round ---------------------------------------------------------------------------

    async def round(self) -> None:
        """Renews what is held, stops what was lost, gives back what is above the fair share
        and takes free partitions up to it."""
        for p, h in list(self.held.items()):
            if not h.consumer.running:  # ended by itself (it logged why): taken anew below
                self.held.pop(p)
                await asyncio.to_thread(leases.release, self.engine, h.lease, self.clock())
        now = self.clock()
        held = {p: h.lease for p, h in self.held.items()}
        renewed, live = await asyncio.to_thread(self._renew, held, now)
        for p in set(held) - set(renewed):
            log.warning("lost partition lease; stopped consuming", partition=p)
            await self._drop(p)
        for p, lease in renewed.items():
            self.held[p].lease = lease
        share = fair_share(self.partitions, live)
        if len(self.held) > share:
            extra = sorted(self.held)[share:]
            for p in extra:
                h = self.held[p]
                await self._drop(p)
                await asyncio.to_thread(leases.release, self.engine, h.lease, self.clock())
            log.info("gave partitions back to other nodes", partitions=extra, share=share)
        elif len(self.held) < share:
            gained = await asyncio.to_thread(self._take, share - len(self.held), self.clock())
            if gained:
                if self.on_gain is not None:
                    await self.on_gain()
                for p, lease in sorted(gained.items()):
                    consumer = self.intake.consumer(
                        p, self._store_for(p), generation=lease.token, batch=self.batch
                    )
                    self.held[p] = _Held(lease, consumer)
                    consumer.start()
                log.info("took partitions", partitions=sorted(gained), share=share)
        self.rounds += 1

    def _store_for(self, partition: int) -> Callable[[int, list[QueuedSignal]], Awaitable[None]]:
        async def store(p: int, batch: list[QueuedSignal]) -> None:
            h = self.held.get(partition)
            if h is None:
                raise LeaseLost(f"partition {partition} is no longer this node's")
            await self.store(p, h.lease, batch)

        return store

    async def _drop(self, partition: int) -> None:
        h = self.held.pop(partition, None)
        if h is not None:
            h.consumer.stop()
            await h.consumer.wait()

    def _stop_expiring(self) -> None:
        """The database did not answer a round: stop consuming every partition whose lease
        may expire before the next round (its commits would be fenced out anyway)."""
        soon = self.clock() + timedelta(seconds=self.renew_every)
        for p, h in list(self.held.items()):
            if h.lease.expires_at <= soon:
                h.consumer.stop()
                self.held.pop(p)

    def _renew(
        self, held: dict[int, leases.Lease], now: datetime
    ) -> tuple[dict[int, leases.Lease], int]:
        """(the partition leases still ours, renewed; the number of live nodes)."""
        self.heartbeat = leases.acquire(
            self.engine, f"{NODE_PREFIX}{self.holder}", self.holder, self.ttl, now
        )
        renewed: dict[int, leases.Lease] = {}
        for p, lease in held.items():
            again = leases.acquire(self.engine, lease.name, self.holder, self.ttl, now)
            if again is not None and again.token == lease.token:
                renewed[p] = again
            elif again is not None:
                # It expired, passed to another node and came back to this one: what that
                # node did is not in this writer's state. Give it back; it is taken anew
                # (with a reload) in a later round.
                leases.release(self.engine, again, now)
        live = len(leases.live(self.engine, NODE_PREFIX, now))
        if self.rounds % 100 == 0:
            leases.forget_expired(self.engine, NODE_PREFIX, now - FORGET_NODES_AFTER)
        return renewed, live

    def _take(self, wanted: int, now: datetime) -> dict[int, leases.Lease]:
        """Takes up to ``wanted`` partitions that are free or expired, starting from a place
        of this node's own (nodes starting together do not all try the same ones first)."""
        start = partition_of(self.holder, self.partitions)
        taken = leases.live(self.engine, PARTITION_PREFIX, now)
        gained: dict[int, leases.Lease] = {}
        for i in range(self.partitions):
            if len(gained) >= wanted:
                break
            p = (start + i) % self.partitions
            name = f"{PARTITION_PREFIX}{p}"
            if p in self.held or name in taken:
                continue
            lease = leases.acquire(self.engine, name, self.holder, self.ttl, now)
            if lease is not None:
                gained[p] = lease
        return gained


def _release_all(engine: sa.Engine, held: Sequence[leases.Lease], now: datetime) -> None:
    for lease in held:
        try:
            leases.release(engine, lease, now)
        except Exception:
            log.warning("releasing a lease failed; it expires", lease=lease.name, exc_info=True)


@dataclass(slots=True)
class _Faults:
    """A partition's signals that failed alone, while its consumer retries their batch in
    place: tries so far by message id, and those parked (acknowledged with the batch, not
    handed to the writer again). Forgotten once the batch is done."""

    tries: dict[str, int] = field(default_factory=dict)
    parked: set[str] = field(default_factory=set)

    def keep_only(self, ids: set[str]) -> None:
        """Forgets signals no longer in the batch (it was acknowledged; the next is another)."""
        self.tries = {k: n for k, n in self.tries.items() if k in ids}
        self.parked &= ids


async def _store_batch(
    writer: Writer, faults: _Faults, p: int, lease: leases.Lease, batch: list[QueuedSignal]
) -> None:
    """Hands a partition's batch to the writer; returns once every signal of it is stored,
    refused for good, or parked (the consumer acknowledges the batch then). Raises to have the
    batch tried again: a signal failed for a cause that may be every signal's (the database
    away), or failed alone fewer than ``PARK_AFTER`` times (docs/operations.md, "A signal
    that cannot be stored")."""
    ids = [message_id(q.signal) for q in batch]
    faults.keep_only(set(ids))
    todo = [(q, i) for q, i in zip(batch, ids, strict=True) if i not in faults.parked]
    results = await writer.submit_queued(
        [Queued([q.signal], q.received_at, q.actor, lease) for q, _ in todo]
    )
    again: Exception | None = None
    to_park: list[parked.Failure] = []
    for (q, i), result in zip(todo, results, strict=True):
        if isinstance(result, FailedAlone):
            tries = faults.tries[i] = faults.tries.get(i, 0) + 1
            if tries >= parked.PARK_AFTER:
                to_park.append(parked.Failure(q, result.error, tries))
            else:
                again = again or result.error
        elif isinstance(result, Unavailable):
            again = again or result  # not now (the writer stopping): tried again, kept
        elif isinstance(result, AlarmdeskError):
            # Refused for good (a key reused with other content): the sender heard "queued";
            # the refusal is counted in the metrics and logged here.
            log.warning(
                "a queued signal was refused",
                partition=p,
                code=result.code,
                idempotency_key=q.signal.idempotency_key,
            )
        elif isinstance(result, Exception):
            again = again or result
        else:
            faults.tries.pop(i, None)
    if to_park:
        rows = await writer.run(parked.park(p, lease, to_park))
        faults.parked.update(message_id(f.queued.signal) for f in to_park)
        writer.metrics.parked.inc(len(to_park))
        for f, row in zip(to_park, rows, strict=True):
            log.error(
                "a queued signal failed alone and was parked; its partition goes on "
                "(alarmdesk parked list, alarmdesk parked retry)",
                partition=p,
                parked_id=row,
                attempts=f.attempts,
                error=type(f.error).__name__,
                idempotency_key=f.queued.signal.idempotency_key,
            )
    if again is not None:
        raise again
    # The batch is done and is acknowledged now: what is remembered was about it alone (a
    # parked signal put back later comes as a new message, with the same content).
    faults.tries.clear()
    faults.parked.clear()


async def publish_queued(
    intake: IntakeLog, engine: sa.Engine, items: Sequence[tuple[QueuedSignal, str | None]]
) -> None:
    """Publishes (queued signal, message id or None for its own) into the intake log, each in
    its fold scope's partition (a signal joined to an incident: the incident's): those of one
    partition in their order, partitions side by side. Returns once JetStream has stored
    every one.

    Raises:
        IntakeUnavailable: one was not confirmed (some may be queued: a signal is recognised
            by its key when it comes again).
    """
    joined = [q.signal.join for q, _ in items if q.signal.join is not None]
    incident_keys = await asyncio.to_thread(_keys_of, engine, joined) if joined else {}
    by_partition: dict[int, list[tuple[QueuedSignal, str | None, str]]] = {}
    for queued, msg_id in items:
        s = queued.signal
        if s.join is not None and s.join in incident_keys:
            scope = scope_of_incident(incident_keys[s.join])
        else:
            scope = fold_scope(s.source_kind.value, s.source_id)
        by_partition.setdefault(intake.partition(scope), []).append((queued, msg_id, scope))

    async def in_order(items: list[tuple[QueuedSignal, str | None, str]]) -> None:
        for queued, msg_id, scope in items:
            await intake.publish(queued, scope, msg_id=msg_id)

    await asyncio.gather(*(in_order(items) for items in by_partition.values()))


def _keys_of(engine: sa.Engine, incident_ids: list[int]) -> dict[int, str | None]:
    with engine.connect() as conn:
        return repo.correlation_keys(conn, incident_ids)


class Node:
    """This node in distributed mode: the intake log, the writer lease, the partitions."""

    def __init__(
        self,
        settings: LogSettings,
        engine: sa.Engine,
        holder: str,
        *,
        ttl: timedelta = timedelta(seconds=15),
        clock: Clock = utcnow,
    ) -> None:
        self.intake = IntakeLog(settings)
        self.engine = engine
        self.holder = holder
        self.ttl = ttl
        self.clock = clock
        self.writer_lease: leases.Lease | None = None
        self.ownership: Ownership | None = None
        self._keeper: asyncio.Task[None] | None = None
        # Called once the writer lease is lost: the server stops its writer (/healthz turns
        # 503, so the node's supervisor restarts it, and it comes back as a standby).
        self.on_writer_lost: Callable[[], Awaitable[None]] | None = None

    # -- intake ------------------------------------------------------------------------------

    async def publish(
        self, signals: Sequence[SignalIn], actor: Actor | None
    ) -> list[tuple[str, datetime]]:
        """Queues the signals; returns each one's (idempotency key, received time) once
        JetStream has stored every one. Signals of one partition are published in their
        order, partitions side by side.

        Raises:
            IntakeUnavailable: one was not confirmed. Others may be queued: the sender sends
                the request again, and a signal with a key is not stored twice.
        """
        now = self.clock()
        keys = [settle_queued_key(s) for s in signals]
        await publish_queued(
            self.intake, self.engine, [(QueuedSignal(s, now, actor), None) for s in signals]
        )
        return [(k, now) for k in keys]

    async def submit_signals(self, signals: Sequence[SignalIn]) -> list[tuple[str, datetime]]:
        """Device intake's sink (``intake.devices.SignalSink``): a DC-09 frame taken on any
        node is acknowledged once the log holds its signal, as an HTTP signal is.

        Raises:
            IntakeUnavailable: not confirmed; the receiver does not acknowledge the frame.
        """
        return await self.publish(signals, None)

    # -- the writer lease --------------------------------------------------------------------

    async def connect(self) -> None:
        """Connects to NATS and creates or updates the stream; fails start-up if it cannot."""
        await self.intake.connect()
        await self.intake.ensure_stream()

    async def take_writer(self, poll: float = 1.0) -> None:
        """Waits until this node holds the writer lease (a standby waits here), then keeps
        renewing it. Losing it later calls ``on_writer_lost``."""
        waited = False
        while True:
            lease = await asyncio.to_thread(
                leases.acquire, self.engine, WRITER_LEASE, self.holder, self.ttl, self.clock()
            )
            if lease is not None:
                break
            if not waited:
                holder = await asyncio.to_thread(
                    leases.live, self.engine, WRITER_LEASE, self.clock()
                )
                log.info("standby: another node writes; waiting for its lease", holders=holder)
                waited = True
            await asyncio.sleep(poll)
        self.writer_lease = lease
        log.info("this node writes", node=self.holder, token=lease.token)
        self._keeper = asyncio.create_task(self._keep_writer(), name="writer-lease")

    async def _keep_writer(self) -> None:
        while True:
            await asyncio.sleep(self.ttl.total_seconds() / 3)
            lease = self.writer_lease
            assert lease is not None
            try:
                again = await asyncio.to_thread(
                    leases.acquire, self.engine, WRITER_LEASE, self.holder, self.ttl, self.clock()
                )
            except Exception:
                log.exception("renewing the writer lease failed; retrying")
                continue
            if again is None or again.token != lease.token:
                log.error("this node lost the writer lease: it stops consuming and writing")
                self.writer_lease = None
                await self.stop()
                if self.on_writer_lost is not None:
                    await self.on_writer_lost()
                return
            self.writer_lease = again

    def fence(self, conn: sa.Connection, now: datetime) -> int:
        """The writer's fence: this node's writer lease, checked in the transaction."""
        lease = self.writer_lease
        if lease is None or not leases.holds(conn, lease, now):
            raise LeaseLost("this node does not hold the writer lease")
        return lease.token

    # -- consuming ---------------------------------------------------------------------------

    def start_consuming(self, writer: Writer) -> None:
        """Starts taking this node's share of the partitions into ``writer``."""

        faults: dict[int, _Faults] = {}

        async def store(p: int, lease: leases.Lease, batch: list[QueuedSignal]) -> None:
            await _store_batch(writer, faults.setdefault(p, _Faults()), p, lease, batch)

        self.ownership = Ownership(
            self.engine,
            self.intake,
            self.holder,
            store,
            ttl=self.ttl,
            clock=self.clock,
            on_gain=writer.reload,
        )
        self.ownership.start()

    async def stop(self) -> None:
        """Stops consuming and gives the partitions back (the writer still runs)."""
        if self.ownership is not None:
            await self.ownership.stop()
            self.ownership = None

    async def close(self) -> None:
        """After the writer stopped: gives the writer lease back and disconnects."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        if self.writer_lease is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(
                    leases.release, self.engine, self.writer_lease, self.clock()
                )
            self.writer_lease = None
        await self.intake.close()
