"""The hub's promise that a console misses nothing (bus/hub.py): events it never saw end the
streams, so that their clients replay them from the events table (Last-Event-ID)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from alarmdesk.bus.hub import Hub
from alarmdesk.domain.events import EventType, IncidentEvent

AT = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def event(n: int) -> IncidentEvent:
    return IncidentEvent(
        EventType.OPENED, n, AT, "system:pipeline", {}, ("west",), n, {"id": n, "title": "x"}
    )


def ids(sub_queue: asyncio.Queue) -> list[int | None]:  # type: ignore[type-arg]
    out: list[int | None] = []
    while not sub_queue.empty():
        item = sub_queue.get_nowait()
        out += [None] if item is None else [event_id for event_id, _ in item]
    return out


async def test_consecutive_commits_flow_to_a_stream() -> None:
    hub = Hub()
    sub = hub.subscribe()
    hub.publish([event(1), event(2)])
    hub.publish([event(3)])
    assert ids(sub.queue) == [1, 2, 3] and not sub.dropped and hub.last_id == 3


async def test_a_hole_in_the_ids_ends_every_stream_whoever_published_the_commit() -> None:
    """A standby heard events 1…3 from the writer over the relay; the writer committed 4 and
    was killed before publishing it; the standby took over, and its own first commit is 5.
    Its consoles never received 4: their streams end, and their clients replay 4 and 5 from
    the table. (The relay checked for holes only in what other nodes sent, so a standby that
    became the writer offered 5 to its streams and 4 was never delivered there.)"""
    hub = Hub()
    hub.publish([event(1), event(2), event(3)])  # from the writer, over the relay
    west, everyone = hub.subscribe(["west"]), hub.subscribe()
    hub.publish([event(5), event(6)])  # this node's own first commit as the writer
    assert ids(west.queue) == [None] and ids(everyone.queue) == [None]
    assert west.dropped and everyone.dropped and not hub.subscribers
    assert hub.last_id == 6  # a stream opened now starts after what the table holds
    again = hub.subscribe()
    hub.publish([event(7)])
    assert ids(again.queue) == [7] and not again.dropped


async def test_a_hub_that_has_offered_nothing_yet_takes_any_first_id() -> None:
    """A node just started knows of no event: its streams replay from the id their client
    gives, so the first commit it hears of is not a hole."""
    hub = Hub()
    sub = hub.subscribe()
    hub.publish([event(41)])
    assert ids(sub.queue) == [41] and not sub.dropped


async def test_with_nobody_listening_nothing_is_encoded_and_holes_are_still_seen(
    monkeypatch,
) -> None:
    """No console connected and no HTTP worker tapping: the commit's frames would go nowhere,
    so none is built (the writer's loop spent that on every event). The hub still notes how
    far the events go: a stream opened later starts after them, and a hole after them is
    still a hole."""
    import alarmdesk.bus.hub as hub_mod

    built: list[int] = []
    real = hub_mod.sse_frame
    monkeypatch.setattr(hub_mod, "sse_frame", lambda eid, *a: built.append(eid) or real(eid, *a))
    hub = Hub()
    hub.publish([event(1), event(2)])
    assert built == [] and hub.last_id == 2 and hub.published == 2
    sub = hub.subscribe()
    hub.publish([event(3)])
    assert built == [3] and ids(sub.queue) == [3]
    hub.publish([event(5)])  # 4 was never offered
    assert ids(sub.queue) == [None] and sub.dropped and hub.last_id == 5
    tapped: list[list[int]] = []
    hub.taps.append(lambda frames: tapped.append([eid for eid, _, _ in frames]))
    hub.publish([event(6)])  # an HTTP worker's consoles: frames built for the tap
    assert tapped == [[6]] and built == [3, 5, 6]
