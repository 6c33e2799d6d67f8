"""Incident events across nodes over real NATS (bus/relay.py): what one node commits reaches
another node's consoles, once, in commit order; a node back from a NATS outage ends its
streams so that their clients replay what they missed."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import nats
from nats.aio.client import Client

from alarmdesk.bus.hub import Hub
from alarmdesk.bus.relay import EventRelay
from alarmdesk.domain.events import EventType, IncidentEvent

AT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def event(n: int, desks: tuple[str, ...] = ("west",)) -> IncidentEvent:
    return IncidentEvent(
        EventType.OPENED,
        incident_id=n,
        at=AT,
        actor="system:pipeline",
        detail={"signals": 1, "markup": "<script>x</script>", "when": AT},
        desks=desks,
        id=n,
        snapshot={"id": n, "title": "Fire alarm", "opened_at": AT},
    )


async def frames_of(sub_queue: asyncio.Queue, want: int) -> list[int]:  # type: ignore[type-arg]
    got: list[int] = []
    while len(got) < want:
        item = await asyncio.wait_for(sub_queue.get(), 5)
        assert item is not None, "the stream ended"
        got += [event_id for event_id, _ in item]
    return got


@contextlib.asynccontextmanager
async def two_nodes(
    nats_url: str,
) -> AsyncIterator[tuple[dict[str, Hub], dict[str, EventRelay], list[Client]]]:
    """Nodes a and b: a hub and a relay each, on a subject of the test's own."""
    subject = f"test-{uuid.uuid4().hex[:8]}.events"
    hubs = {"a": Hub(), "b": Hub()}
    conns = [await nats.connect(nats_url), await nats.connect(nats_url)]
    relays = {
        name: EventRelay(nc, subject, name, hubs[name])
        for name, nc in zip(hubs, conns, strict=True)
    }
    try:
        for relay in relays.values():
            await relay.start()
        yield hubs, relays, conns
    finally:
        for relay in relays.values():
            await relay.close()
        for nc in conns:
            await nc.close()


async def test_a_commit_on_one_node_reaches_the_other_node_s_consoles_once_in_order(
    nats_url: str,
) -> None:
    async with two_nodes(nats_url) as (hubs, relays, conns):
        on_a = hubs["a"].subscribe()
        on_b = hubs["b"].subscribe(["west"])
        east_only = hubs["b"].subscribe(["east"])
        for n in range(1, 51):  # fifty commits on node a: offered to its own hub and relayed
            commit = [event(2 * n - 1), event(2 * n, ("east",))]
            hubs["a"].publish(commit)
            relays["a"].send(commit)
        assert await frames_of(on_b.queue, 50) == list(range(1, 101, 2))  # its desk, in order
        assert await frames_of(east_only.queue, 50) == list(range(2, 101, 2))
        assert await frames_of(on_a.queue, 100) == list(range(1, 101))
        await asyncio.sleep(0.3)
        assert on_a.queue.empty()  # its own commits came back over NATS and were not offered
        assert relays["b"].received == 100 and relays["a"].received == 0
        assert hubs["b"].last_id == 100
        # the frame a console gets is the one the writer node's hub would have made
        hubs["a"].publish([event(101)])
        relays["a"].send([event(101)])
        (mine,) = await asyncio.wait_for(on_a.queue.get(), 5)
        (theirs,) = await asyncio.wait_for(on_b.queue.get(), 5)
        assert mine == theirs  # the same bytes: datetimes, markup and all came through intact
        # a message that is not a commit is ignored, the relay goes on
        await conns[0].publish(relays["a"].subject, b"\x00not msgpack")
        relays["a"].send([event(102)])
        assert await frames_of(on_b.queue, 1) == [102]
        # back from an outage: every stream ends, to replay from the events table
        relays["b"].reconnected()
        assert await asyncio.wait_for(on_b.queue.get(), 5) is None
        assert await asyncio.wait_for(east_only.queue.get(), 5) is None
        assert not hubs["b"].subscribers
        # a hole in the ids (a writer died between its commit and its publish, another took
        # over): the streams end too, so their clients replay what was never relayed
        again = hubs["b"].subscribe()
        relays["a"].send([event(103)])
        assert await frames_of(again.queue, 1) == [103]
        relays["a"].send([event(110), event(111)])  # 104…109 committed, never relayed
        assert await asyncio.wait_for(again.queue.get(), 5) is None


async def test_a_relay_without_nats_keeps_its_node_s_own_consoles_going(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    hub = Hub()
    relay = EventRelay(nc, f"test-{uuid.uuid4().hex[:8]}.events", "a", hub)
    await relay.start()
    sub = hub.subscribe()
    await nc.close()  # NATS gone: sending fails quietly, the local stream is not affected
    relay.send([event(1)])
    hub.publish([event(1)])
    assert await frames_of(sub.queue, 1) == [1]
    await relay.close()


async def test_a_commit_larger_than_a_nats_message_reaches_the_other_node_whole(
    nats_url: str,
) -> None:
    """A writer under load commits thousands of events at once (bench/distributed.py saw
    2,000): more than NATS takes in one message (max_payload, 1 MB by default). They go in
    several messages, in order, and the other node's consoles get every one, live."""
    async with two_nodes(nats_url) as (hubs, relays, conns):
        on_b = hubs["b"].subscribe()
        big = "x" * 1000  # a snapshot of about a kilobyte, as a real incident's
        commit = [
            IncidentEvent(
                EventType.OPENED, n, AT, "system:pipeline", {"signal_id": n}, ("west",), n,
                {"id": n, "title": "Fire alarm", "opened_at": AT, "notes": big},
            )
            for n in range(1, 2001)
        ]  # fmt: skip
        assert len(commit) * len(big) > conns[0].max_payload
        relays["a"].send(commit)
        relays["a"].send([event(2001)])
        assert await frames_of(on_b.queue, 2001) == list(range(1, 2002))
        assert relays["b"].received == 2001


async def test_a_node_hears_every_commit_published_after_its_relay_started(
    nats_url: str,
) -> None:
    """start() comes back once the server has read the subscription (bus/roundtrip.py): a
    commit another node publishes right after is not lost. With one flush() some of these
    rounds lost their commit."""
    conns = [await nats.connect(nats_url), await nats.connect(nats_url)]
    try:
        for round_ in range(1000):
            subject = f"test-{uuid.uuid4().hex[:8]}.events"
            hub = Hub()
            a = EventRelay(conns[0], subject, "a", Hub())
            b = EventRelay(conns[1], subject, "b", hub)
            on_b = hub.subscribe()
            await a.start()
            await b.start()
            a.send([event(round_ + 1)])
            got = await asyncio.wait_for(on_b.queue.get(), 2)
            assert got is not None and [event_id for event_id, _ in got] == [round_ + 1]
            await a.close()
            await b.close()
    finally:
        for nc in conns:
            await nc.close()
