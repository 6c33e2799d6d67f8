"""Distributed mode's consuming side on real NATS and real PostgreSQL (service/cluster.py,
the writer's fencing): a redelivered signal is stored once, a node that lost a partition
stores nothing into it, and two nodes never consume one partition at once while a
partition moves to the survivor when its node stops renewing.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from alarmdesk.bus.jetstream import IntakeLog, QueuedSignal
from alarmdesk.domain.correlation import fold_scope
from alarmdesk.domain.errors import LeaseLost
from alarmdesk.domain.signal import SignalIn, SourceKind
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service.batch import Queued
from alarmdesk.service.cluster import PARTITION_PREFIX, Ownership, fair_share, settle_queued_key
from alarmdesk.store import leases
from alarmdesk.store import tables as t

pytestmark = pytest.mark.postgres

ACTOR = Actor("token:1", "intake", "ab" * 8, "127.0.0.1")
TTL = timedelta(seconds=3)


def panel_signal(n: int, source: str = "panel-1", key: str | None = "") -> SignalIn:
    return SignalIn(
        source_kind=SourceKind.EQUIPMENT,
        source_id=source,
        type_code="BURG",
        occurred_at=datetime.now(UTC),
        summary=f"signal {n}",
        idempotency_key=f"{source}-{n}" if key == "" else key,
    )


def count(engine: sa.Engine, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()
        )


def test_fair_share() -> None:
    assert [fair_share(16, n) for n in (0, 1, 2, 3, 5, 16, 20)] == [16, 16, 8, 6, 4, 1, 1]


async def test_a_redelivered_signal_is_stored_once_and_a_lost_lease_stores_nothing(
    services_factory, postgres_url: str
) -> None:
    svc = services_factory(postgres_url, loop=asyncio.get_running_loop())
    now = datetime.now(UTC)
    lease = leases.acquire(svc.engine, f"{PARTITION_PREFIX}0", "node-a", TTL, now)
    assert lease is not None
    keyed = panel_signal(1)
    keyless = panel_signal(2, key=None)
    key = settle_queued_key(keyless)  # the edge settles it before publishing
    assert key.startswith("queued:")
    batch = [Queued([keyed], now, ACTOR, lease), Queued([keyless], now, ACTOR, lease)]
    first = await svc.writer.submit_queued(batch)
    # the log delivers the same messages again (the ack was lost, or the node died after
    # committing): the writer recognises both by their keys, and answers the first receipts
    again = await svc.writer.submit_queued(batch)
    assert again == first
    assert count(svc.engine, t.signals) == 2
    assert count(svc.engine, t.signals, t.signals.c.idempotency_key == key) == 1
    received = [r[0].received_at for r in first]
    assert all(r == now for r in received)  # when the edge took it, not when it committed
    # the same key with other content is refused alone, and the rest of the batch is stored
    reused = panel_signal(1)
    reused.summary = "other content"
    results = await svc.writer.submit_queued(
        [Queued([reused], now, ACTOR, lease), Queued([panel_signal(3)], now, ACTOR, lease)]
    )
    assert getattr(results[0], "code", None) == "idempotency_key_reused"
    assert isinstance(results[1], list) and count(svc.engine, t.signals) == 3
    # node-a's lease passes to node-b: node-a's late batch stores nothing
    later = now + TTL + timedelta(seconds=1)
    assert leases.acquire(svc.engine, lease.name, "node-b", TTL, later) is not None
    with pytest.raises(LeaseLost):
        await svc.writer.submit_queued([Queued([panel_signal(4)], now, ACTOR, lease)])
    assert count(svc.engine, t.signals) == 3


@pytest.mark.slow  # waits out lease expiries (a few seconds)
async def test_two_nodes_share_the_partitions_and_the_survivor_takes_them_over(
    services_factory, postgres_url: str, intake: IntakeLog
) -> None:
    """Two nodes with their own holder ids, each with its own consumers, over one database
    and one stream. Sampled all along: no partition is ever owned by both. Whatever a node
    stores is fenced by its lease in the database, as the writer does it."""
    svc = services_factory(postgres_url, loop=asyncio.get_running_loop())
    engine = svc.engine
    handled: dict[str, list[tuple[int, str]]] = {"a": [], "b": []}
    inside: dict[int, set[str]] = {}
    overlaps: list[str] = []

    def store_as(node: str):
        async def store(p: int, lease: leases.Lease, batch: list[QueuedSignal]) -> None:
            inside.setdefault(p, set()).add(node)
            if len(inside[p]) > 1:
                overlaps.append(f"partition {p} stored by {inside[p]}")
            try:
                with engine.begin() as conn:
                    if not leases.holds(conn, lease, datetime.now(UTC)):
                        raise LeaseLost("fenced")
                handled[node].extend((p, q.signal.summary) for q in batch)
                await asyncio.sleep(0.01)
            finally:
                inside[p].discard(node)

        return store

    a = Ownership(engine, intake, "a", store_as("a"), ttl=TTL)
    b = Ownership(engine, intake, "b", store_as("b"), ttl=TTL)
    sampling = True

    async def sample() -> None:
        while sampling:
            both = a.owned() & b.owned()
            if both:
                overlaps.append(f"both own {both}")
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    sources = [f"panel-{i}" for i in range(12)]
    sent: list[str] = []

    async def publish(n: int) -> None:
        for i in range(n):
            src = sources[i % len(sources)]
            s = panel_signal(len(sent), src)
            sent.append(s.summary)
            await intake.publish(
                QueuedSignal(s, datetime.now(UTC), ACTOR), fold_scope("equipment", src)
            )

    async def until(check, within: float = 15.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while not check():
            assert asyncio.get_running_loop().time() < deadline, "not reached in time"
            await asyncio.sleep(0.05)

    try:
        a.start()
        await until(lambda: a.owned() == {0, 1, 2, 3})
        await publish(40)
        b.start()  # a second node: each ends with two partitions
        await until(lambda: len(a.owned()) == 2 and len(b.owned()) == 2)
        await publish(40)
        await until(lambda: len(handled["a"]) + len(handled["b"]) >= 80)
        # a dies: its leases are not given back, they expire; b takes everything
        await a.stop(release=False)
        await publish(40)
        await until(lambda: b.owned() == {0, 1, 2, 3})
        await until(lambda: len(handled["a"]) + len(handled["b"]) >= 120)
    finally:
        sampling = False
        await sampler
        await a.stop()
        await b.stop()
    assert overlaps == []
    assert handled["a"] and handled["b"]
    done = [s for node in ("a", "b") for _, s in handled[node]]
    assert sorted(done) == sorted(sent)  # each exactly once: every batch was committed
    # in order within each partition (the numbers grow along each source's signals)
    for node in ("a", "b"):
        for p in range(4):
            nums = [int(s.split()[1]) for q, s in handled[node] if q == p]
            assert nums == sorted(nums)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.leases.c.name, t.leases.c.holder, t.leases.c.token))
        tokens = {r.name: r.token for r in rows if r.name.startswith(PARTITION_PREFIX)}
    assert max(tokens.values()) >= 2  # taken over: a new fencing token
