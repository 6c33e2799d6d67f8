"""The intake log on NATS JetStream (distributed mode; docs/operations.md, "Several nodes").

A node that takes a signal publishes it here and answers the sender once JetStream has
stored it (the publish acknowledgement, after the stream's replicas have it). Nodes consume
the log by partition and commit what they take to the database; only then is a message
acknowledged, so a node that dies mid-batch leaves its messages to be redelivered.

- **The stream** (:meth:`IntakeLog.ensure_stream`): subjects ``<stream>.intake.<p>``, file
  storage, the replicas asked for, a duplicate window, work-queue retention (a message is
  removed once acknowledged: the database holds signals, under the retention policy; the log
  is not a second copy) and a bound on its size that refuses new signals rather than drop
  old ones.
- **The partition** of a signal: a stable hash of its fold scope
  (``domain/correlation.fold_scope``) modulo the partition count, so every signal that may
  fold into one incident lands in one partition and is consumed in order by one node.
- **Deduplication**: ``Nats-Msg-Id`` is the signal's identity as the writer knows it, its
  idempotency key and content digest, so a resend within the window is stored once by
  JetStream, and a later one is recognised by the writer (``known_receipts``).
- **Consumers** (:class:`PartitionConsumer`): one durable pull consumer per partition and
  owner (``service/cluster.py`` decides who owns what, with leases).

This module does I/O with NATS only; who may consume what is decided above it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import msgspec
import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from alarmdesk import logs
from alarmdesk.domain.errors import ConfigError, IntakeUnavailable, LeaseLost
from alarmdesk.domain.signal import SignalIn, content_digest
from alarmdesk.safeguards.audit import Actor

__all__ = [
    "BatchHandler",
    "IntakeLog",
    "LogSettings",
    "PartitionConsumer",
    "QueuedSignal",
    "message_id",
    "partition_of",
]

log = logs.get_logger(__name__)

DUPLICATE_WINDOW_SECONDS = 120.0  # a resend within this is dropped by JetStream itself
MAX_STREAM_BYTES = 8 * 1024**3  # then new signals are refused (503), old ones never dropped
MAX_MESSAGE_BYTES = 1024 * 1024  # a signal is at most [limits] max_signal_bytes, and more
ACK_WAIT_SECONDS = 30.0  # a batch neither acknowledged nor in progress by then is redelivered
PUBLISH_TIMEOUT_SECONDS = 5.0
FETCH_SECONDS = 1.0  # a fetch waits this long for messages (and so does a stop)
RETRY_SECONDS = 1.0  # a batch not stored is tried again after this


@dataclass(frozen=True, slots=True)
class LogSettings:
    url: str
    stream: str = "ALARMDESK_INTAKE"
    replicas: int = 1
    partitions: int = 16


class QueuedSignal(msgspec.Struct, frozen=True):
    """A signal as it waits in the log: what the edge decided before answering 202.

    ``signal.idempotency_key`` is settled (a keyless signal gets one at the edge, so a
    redelivery is recognised); ``received_at`` is when the edge took it; ``actor`` is who sent
    it, for the audit entry the consuming node writes with the signal.
    """

    signal: SignalIn
    received_at: datetime
    actor: Actor | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(QueuedSignal).decode

BatchHandler = Callable[[int, list[QueuedSignal]], Awaitable[None]]
"""Called with a partition and its messages in order; returns once they are committed (or
refused for good). Raising leaves the batch unacknowledged: it is handed over again."""


def partition_of(scope: str, partitions: int) -> int:
    """A stable partition for a fold scope: the same on every node and every run (Python's
    ``hash`` of a string changes per process)."""
    digest = hashlib.blake2b(scope.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


def message_id(signal: SignalIn) -> str:
    """What JetStream deduplicates by: the key and the content, as the writer tells a resend
    (same key, same content) from a reused key (same key, other content: it must reach the
    writer to be refused, not be dropped as a duplicate)."""
    assert signal.idempotency_key is not None
    return f"{signal.idempotency_key}#{content_digest(signal)}"


class IntakeLog:
    """One connection to NATS, the stream, and publishing into it."""

    def __init__(self, settings: LogSettings) -> None:
        self.settings = settings
        self.nc: Client | None = None
        self._js: JetStreamContext | None = None
        # called (on the loop) each time the connection comes back after a loss
        self.on_reconnect: list[Callable[[], None]] = []

    @property
    def subject_prefix(self) -> str:
        return f"{self.settings.stream}.intake"

    def subject(self, partition: int) -> str:
        return f"{self.subject_prefix}.{partition}"

    def partition(self, scope: str) -> int:
        return partition_of(scope, self.settings.partitions)

    def consumer_name(self, partition: int, generation: int | str) -> str:
        """The durable consumer of a partition for one owner (``generation``: its lease
        token); every name of a partition starts ``<stream>_p<partition>_``."""
        return f"{self.settings.stream}_p{partition}_{generation}"

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise IntakeUnavailable("the intake log is not connected")
        return self._js

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def connect(self) -> None:
        """Connects (and keeps reconnecting for as long as the node runs)."""
        self.nc = await nats.connect(
            self.settings.url.split(","),
            name="alarmdesk",
            connect_timeout=2,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            error_cb=_log_error,
            disconnected_cb=_log_disconnected,
            reconnected_cb=self._reconnected,
        )
        self._js = self.nc.jetstream(timeout=PUBLISH_TIMEOUT_SECONDS)

    async def _reconnected(self) -> None:
        log.info("reconnected to NATS")
        for hook in self.on_reconnect:
            hook()

    async def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.drain()
            self.nc = None
            self._js = None

    def _stream_config(self) -> StreamConfig:
        s = self.settings
        return StreamConfig(
            name=s.stream,
            description=f"alarmdesk intake log; partitions={s.partitions}",
            subjects=[f"{self.subject_prefix}.*"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=s.replicas,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_bytes=MAX_STREAM_BYTES,
            discard=DiscardPolicy.NEW,
            max_msg_size=MAX_MESSAGE_BYTES,
        )

    async def ensure_stream(self) -> None:
        """Creates the stream, or brings an existing one to this configuration.

        Raises:
            ConfigError: the stream holds signals split into another number of partitions
                (some would never be consumed).
        """
        config = self._stream_config()
        try:
            info = await self.js.stream_info(self.settings.stream)
        except nats.js.errors.NotFoundError:
            await self.js.add_stream(config)
            log.info("intake stream created", stream=self.settings.stream)
            return
        if info.config.description != config.description and info.state.messages:
            raise ConfigError(
                f"the stream {self.settings.stream} holds {info.state.messages} signals "
                f"split as '{info.config.description}', not into "
                f"{self.settings.partitions} partitions: change [nats] partitions only on "
                "an empty stream"
            )
        await self.js.update_stream(config)

    async def reachable(self, within: float = 2.0) -> bool:
        """Whether the stream answers now (for /readyz)."""
        if not self.connected:
            return False
        try:
            async with asyncio.timeout(within):
                await self.js.stream_info(self.settings.stream)
        except Exception:
            return False
        return True

    async def delete_stream(self) -> None:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.js.delete_stream(self.settings.stream)

    async def publish(
        self, queued: QueuedSignal, scope: str, *, msg_id: str | None = None
    ) -> tuple[int, bool]:
        """Puts a signal into its scope's partition; returns (partition, duplicate) once
        JetStream has stored it. ``msg_id`` replaces the signal's own :func:`message_id`
        (a parked signal put back: ``service/parked.py``).

        Raises:
            IntakeUnavailable: no server answered, the stream refused it (full), or the
                acknowledgement did not come in time. The signal may or may not be stored;
                the sender must resend it (its key makes that safe).
        """
        partition = self.partition(scope)
        try:
            ack = await self.js.publish(
                self.subject(partition),
                _encode(queued),
                timeout=PUBLISH_TIMEOUT_SECONDS,
                stream=self.settings.stream,
                headers={"Nats-Msg-Id": msg_id or message_id(queued.signal)},
            )
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
            raise IntakeUnavailable(
                f"the intake log did not store the signal ({type(exc).__name__}); send it again"
            ) from None
        return partition, bool(ack.duplicate)

    def consumer(
        self, partition: int, handle: BatchHandler, *, generation: int, batch: int = 256
    ) -> PartitionConsumer:
        return PartitionConsumer(self, partition, handle, generation=generation, batch=batch)


class PartitionConsumer:
    """Takes one partition's messages in order, a batch at a time, and acknowledges them only
    once ``handle`` has returned (committed).

    - **A new consumer per owner.** ``start`` deletes the partition's earlier durable
      consumers and makes one named by ``generation`` (the owner's lease token). The stream
      keeps every message not yet acknowledged (work-queue retention), and a new consumer
      delivers them from the first, in order: what a node that died held unacknowledged comes
      back first, not after newer messages. A stale owner fetches from a consumer that no
      longer exists.
    - **A failed batch is retried in place**, the same messages in the same order, for as long
      as this node owns the partition (their ack wait extended meanwhile); nothing after it is
      taken. A batch left when the consumer stops is never acknowledged: the next owner's
      consumer delivers it again.
    - At most ``batch`` messages are unacknowledged at a time (``max_ack_pending``).
    """

    def __init__(
        self,
        intake: IntakeLog,
        partition: int,
        handle: BatchHandler,
        *,
        generation: int,
        batch: int = 256,
        fetch_timeout: float = FETCH_SECONDS,
    ) -> None:
        self.intake = intake
        self.partition = partition
        self.handle = handle
        self.generation = generation
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.handled = 0  # messages acknowledged (for tests and metrics)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"intake-p{self.partition}")

    def stop(self) -> None:
        """Fetches nothing more; a batch being handled finishes (its commit is fenced)."""
        self._stopping.set()

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _take_over(self) -> JetStreamContext.PullSubscription:
        js, stream = self.intake.js, self.intake.settings.stream
        name = self.intake.consumer_name(self.partition, self.generation)
        prefix = self.intake.consumer_name(self.partition, "")
        for old in await _consumer_names(js, stream):
            if old.startswith(prefix):  # its own too: a consumer starts from the first
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_consumer(stream, old)
        await js.add_consumer(
            stream,
            ConsumerConfig(
                durable_name=name,
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=ACK_WAIT_SECONDS,
                max_ack_pending=self.batch,
                max_deliver=-1,  # never give up on a signal
                filter_subject=self.intake.subject(self.partition),
            ),
        )
        return await js.pull_subscribe_bind(durable=name, stream=stream)

    async def _run(self) -> None:
        logs.bind(component="intake", partition=self.partition)
        sub: JetStreamContext.PullSubscription | None = None
        try:
            while not self._stopping.is_set():
                try:
                    if sub is None:
                        sub = await self._take_over()
                    msgs = await sub.fetch(self.batch, timeout=self.fetch_timeout)
                except (nats.errors.TimeoutError, TimeoutError):
                    continue
                except Exception:
                    log.exception("fetching from the intake log failed; retrying")
                    await _sleep_unless(self._stopping, RETRY_SECONDS)
                    continue
                if self._stopping.is_set():
                    break  # lost the partition while fetching: the next owner gets these
                await self._handle(msgs)
        finally:
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()

    async def _handle(self, msgs: Sequence[Msg]) -> None:
        queued: list[QueuedSignal] = []
        good: list[Msg] = []
        for m in msgs:
            try:
                queued.append(_decode(m.data))
                good.append(m)
            except msgspec.DecodeError:
                # Not written by alarmdesk (this stream is ours alone): it can never be
                # stored, and redelivering it would block the partition.
                log.error("a message in the intake log is not a signal; dropped", subject=m.subject)
                with contextlib.suppress(Exception):
                    await m.term()
        if not good:
            return
        while True:
            try:
                await self.handle(self.partition, queued)
                break
            except LeaseLost:
                # The lease lapsed (a slow renewal) or passed to another node: nothing was
                # stored. Tried again while this node still consumes the partition: the
                # ownership loop renews it, or stops this consumer.
                log.warning("the partition lease did not hold for a batch; retrying it")
            except Exception:
                log.exception("a batch from the intake log was not stored; retrying it")
            if self._stopping.is_set():
                return  # never acknowledged: the next owner's consumer delivers it again
            for m in good:  # still ours: do not let the ack wait redeliver it meanwhile
                with contextlib.suppress(Exception):
                    await m.in_progress()
            await _sleep_unless(self._stopping, RETRY_SECONDS)
            if self._stopping.is_set():
                return
        for m in good:
            try:
                await m.ack()
            except Exception:  # redelivered after the ack wait; the writer knows its key
                log.warning("acknowledging a message failed", exc_info=True)
        self.handled += len(good)


async def _consumer_names(js: JetStreamContext, stream: str) -> list[str]:
    names: list[str] = []
    while True:
        page = await js.consumers_info(stream, offset=len(names))
        names += [c.name for c in page]
        if len(page) < 256:  # the server's page size
            return names


async def _sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def _log_error(exc: Exception) -> None:
    log.warning("NATS connection error", error=str(exc))


async def _log_disconnected() -> None:
    log.warning("disconnected from NATS")
