"""The intake log on real NATS JetStream (bus/jetstream.py): the stream, publishing with its
acknowledgement and deduplication, partitions by fold scope, and partition consumers that
keep order and acknowledge only what their handler returned from.

Each test makes a stream of its own name and deletes it afterwards.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import nats
import pytest

from alarmdesk.bus.jetstream import IntakeLog, LogSettings, QueuedSignal, partition_of
from alarmdesk.domain.correlation import NEAR, fold_scope
from alarmdesk.domain.errors import ConfigError, IntakeUnavailable
from alarmdesk.domain.signal import SignalIn, SourceKind
from alarmdesk.safeguards.audit import Actor

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ACTOR = Actor("token:1", "intake", "ab" * 8, "127.0.0.1")


def signal(n: int, *, source: str = "panel-1", key: str | None = None, **kw: object) -> SignalIn:
    return SignalIn(
        source_kind=kw.pop("source_kind", SourceKind.EQUIPMENT),  # type: ignore[arg-type]
        source_id=source,
        type_code="BURG",
        occurred_at=T0,
        summary=f"signal {n}",
        idempotency_key=key if key is not None else f"k-{n}",
        **kw,  # type: ignore[arg-type]
    )


def queued(s: SignalIn) -> QueuedSignal:
    return QueuedSignal(s, T0, ACTOR)


async def stream_messages(log: IntakeLog) -> int:
    info = await log.js.stream_info(log.settings.stream)
    return int(info.state.messages)


@pytest.mark.slow  # starts Python twice, with two hash seeds
def test_every_signal_that_may_fold_together_has_one_partition() -> None:
    """A device's signals (any zone, type, label, restore) share its scope; so do a feed's
    (any type, any CAP thread); calls and duty reports all share one."""
    assert fold_scope("equipment", "panel-1") == fold_scope("equipment", "panel-1")
    assert fold_scope("equipment", "panel-1") != fold_scope("equipment", "panel-2")
    assert fold_scope("equipment", "x") != fold_scope("feed", "x")
    assert fold_scope("call", "taker-1") == fold_scope("duty", "officer-9") == NEAR
    # stable across processes: a digest, not Python's salted hash()
    code = (
        "from alarmdesk.bus.jetstream import partition_of;"
        "print([partition_of(f'eq|p{i}', 16) for i in range(50)])"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
        ).stdout
        for seed in (1, 2)
    }
    assert runs == {f"{[partition_of(f'eq|p{i}', 16) for i in range(50)]}\n"}
    # and spread: 50 devices do not all land in a few partitions
    assert len({partition_of(f"eq|p{i}", 16) for i in range(50)}) >= 12


async def test_publish_is_acknowledged_and_a_resend_is_stored_once(intake: IntakeLog) -> None:
    s = signal(1)
    p, dup = await intake.publish(queued(s), fold_scope("equipment", s.source_id))
    assert p == partition_of("eq|panel-1", 4) and not dup
    again = signal(1)  # the same key and content: JetStream drops it (Nats-Msg-Id)
    assert await intake.publish(queued(again), "eq|panel-1") == (p, True)
    # the same key with other content is not a resend: it must reach the writer, which
    # refuses it (idempotency_key_reused), so it is not dropped here
    other = signal(1)
    other.summary = "something else"
    assert await intake.publish(queued(other), "eq|panel-1") == (p, False)
    assert await stream_messages(intake) == 2


async def test_publish_without_a_stream_is_an_error_not_an_acknowledgement(
    nats_url: str,
) -> None:
    log = IntakeLog(LogSettings(nats_url, f"TEST_{uuid.uuid4().hex[:10]}", partitions=4))
    await log.connect()  # no ensure_stream: nothing listens on the subjects
    try:
        with pytest.raises(IntakeUnavailable) as err:
            await log.publish(queued(signal(1)), "eq|panel-1")
        assert err.value.status == 503 and err.value.code == "intake_unavailable"
    finally:
        await log.close()
    with pytest.raises(IntakeUnavailable):  # not connected at all
        await log.publish(queued(signal(2)), "eq|panel-1")


async def test_the_stream_is_made_idempotently_and_keeps_its_partition_count(
    intake: IntakeLog, nats_url: str
) -> None:
    await intake.ensure_stream()  # again: nothing changes
    info = await intake.js.stream_info(intake.settings.stream)
    assert info.config.subjects == [f"{intake.settings.stream}.intake.*"]
    assert str(info.config.storage) in ("file", "StorageType.FILE")
    assert info.config.duplicate_window == 120.0
    assert str(info.config.retention) in ("workqueue", "RetentionPolicy.WORK_QUEUE")
    assert str(info.config.discard) in ("new", "DiscardPolicy.NEW")
    await intake.publish(queued(signal(1)), "eq|panel-1")
    other = IntakeLog(LogSettings(nats_url, intake.settings.stream, partitions=8))
    await other.connect()
    try:
        with pytest.raises(ConfigError, match="partitions"):
            await other.ensure_stream()
    finally:
        await other.close()


async def test_a_partition_is_consumed_in_order_and_a_failed_batch_comes_back(
    intake: IntakeLog,
) -> None:
    """Published in order on one partition; the handler fails the second batch it sees:
    that batch is redelivered, before anything after it, and nothing is acknowledged that
    the handler did not return from."""
    scope = "eq|panel-1"
    p = intake.partition(scope)
    for n in range(60):
        await intake.publish(queued(signal(n)), scope)
    seen: list[list[int]] = []
    done = asyncio.Event()

    async def handle(partition: int, batch: list[QueuedSignal]) -> None:
        assert partition == p
        seen.append([int(q.signal.summary.split()[1]) for q in batch])
        if len(seen) == 2:
            raise RuntimeError("the commit failed")
        if sum(len(b) for b in seen[2:]) + len(seen[0]) >= 60:
            done.set()

    consumer = intake.consumer(p, handle, generation=1, batch=16)
    consumer.start()
    try:
        await asyncio.wait_for(done.wait(), 20)
    finally:
        consumer.stop()
        await consumer.wait()
    assert seen[1] == seen[2]  # the failed batch, whole, before anything after it
    assert seen[0] + [n for b in seen[2:] for n in b] == list(range(60)), seen
    assert consumer.handled == 60
    # every handled message was acknowledged: a work queue keeps none of them
    for _ in range(50):
        if await stream_messages(intake) == 0:
            break
        await asyncio.sleep(0.1)
    assert await stream_messages(intake) == 0


async def test_a_stopped_consumer_leaves_what_it_did_not_handle(intake: IntakeLog) -> None:
    """A node stops (or dies) with a batch in hand: nothing of it is acknowledged, and the
    next owner's consumer gets it again, first and in order, then what followed."""
    scope = "feed|cad-1"
    p = intake.partition(scope)
    for n in range(5):
        await intake.publish(queued(signal(n, source="cad-1", source_kind=SourceKind.FEED)), scope)
    started = asyncio.Event()
    release = asyncio.Event()

    async def stuck(partition: int, batch: list[QueuedSignal]) -> None:
        started.set()
        await release.wait()
        raise RuntimeError("the node lost its database")

    first = intake.consumer(p, stuck, generation=1, batch=3)
    first.start()
    await asyncio.wait_for(started.wait(), 10)
    first.stop()
    release.set()
    await first.wait()
    assert first.handled == 0
    got: list[int] = []
    done = asyncio.Event()

    async def handle(partition: int, batch: list[QueuedSignal]) -> None:
        got.extend(int(q.signal.summary.split()[1]) for q in batch)
        if len(got) >= 5:
            done.set()

    second = intake.consumer(p, handle, generation=2, batch=8)
    second.start()
    try:
        await asyncio.wait_for(done.wait(), 15)
    finally:
        second.stop()
        await second.wait()
    assert got == [0, 1, 2, 3, 4]


async def test_a_message_that_is_not_a_signal_does_not_block_its_partition(
    intake: IntakeLog, nats_url: str
) -> None:
    p = intake.partition("eq|panel-1")
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(intake.subject(p), b"not a signal")
    finally:
        await nc.close()
    await intake.publish(queued(signal(1)), "eq|panel-1")
    got: list[str] = []
    done = asyncio.Event()

    async def handle(partition: int, batch: list[QueuedSignal]) -> None:
        got.extend(q.signal.summary for q in batch)
        done.set()

    consumer = intake.consumer(p, handle, generation=1)
    consumer.start()
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        consumer.stop()
        await consumer.wait()
    assert got == ["signal 1"]
