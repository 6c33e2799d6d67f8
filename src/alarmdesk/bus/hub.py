"""The in-process realtime hub: committed events → subscribed sessions.

Each event is encoded once as an SSE frame (the format: ``bus/sse.py``) and offered to every
subscriber whose desks it concerns. A subscriber has a bounded queue; one that falls behind
is dropped (its stream ends) rather than slowing everyone — its client reconnects with
``Last-Event-ID`` and replays what it missed from the events table, so nothing is lost
(Zulip's event queues work the same way).

Event ids are given one after another by the node that writes, so a commit whose first id is
not the one after the last offered means this hub missed events: a writer died between its
commit and its publish (distributed mode), and the hub may be another node's, or this node's
own once it took over as the writer. Every stream ends then, and replays from the table.

A subscription may name the credential that opened it (a token or a session); ``end`` puts
the end marker on every subscription of a credential that was revoked or signed out, so its
streams end at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from alarmdesk import logs
from alarmdesk.bus.sse import event_data, sse_frame
from alarmdesk.domain.events import IncidentEvent

log = logs.get_logger(__name__)

Frames = list[tuple[int, bytes]]  # (event id, SSE frame), in id order
DeskFrames = list[tuple[int, Sequence[str], bytes]]  # (event id, its desks, SSE frame)


@dataclass(eq=False)
class Subscriber:
    desks: frozenset[str] | None  # None: every desk
    queue: asyncio.Queue[Frames | None]  # one item per commit: that commit's frames
    dropped: bool = False
    delivered: int = field(default=0)
    credential: str | None = None  # what opened it, so that ending the credential ends it

    def wants(self, desks: Iterable[str]) -> bool:
        return self.desks is None or not self.desks.isdisjoint(desks)


class Hub:
    def __init__(self, client_queue: int = 2000) -> None:
        self.client_queue = client_queue
        self.subscribers: set[Subscriber] = set()
        self.last_id = 0  # the newest event id offered to subscribers
        self.published = 0
        self.closed = False  # the server is stopping: no stream is served any more
        # called with every commit's frames after they are offered here (the HTTP workers')
        self.taps: list[Callable[[DeskFrames], None]] = []

    def subscribe(
        self, desks: Iterable[str] | None = None, credential: str | None = None
    ) -> Subscriber:
        sub = Subscriber(
            frozenset(desks) if desks is not None else None,
            asyncio.Queue(self.client_queue),
            credential=credential,
        )
        self.subscribers.add(sub)
        return sub

    def end(self, credential: str) -> int:
        """Ends every subscription opened with this credential (revoked, signed out).
        Must run on the hub's event loop; returns how many ended."""
        ended = [s for s in self.subscribers if s.credential == credential]
        for sub in ended:
            self._drop(sub)
        return len(ended)

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, events: list[IncidentEvent]) -> None:
        """Offers one commit's events, in id order. Must run on the hub's event loop.

        Each event is encoded once; each subscriber gets ONE queue item per commit (the
        frames its desks concern), so a burst costs one wake-up per console, not one per
        event.
        """
        if not events:
            return
        if not self.subscribers and not self.taps:
            # Nobody to hand frames to (no console connected, no HTTP worker): build none, but
            # note how far the events go, so that a stream opened later starts after them and
            # a hole after them is still seen.
            self.last_id = max(self.last_id, events[-1].id)
            self.published += len(events)
            return
        self.offer(
            [
                (
                    ev.id,
                    ev.desks,
                    sse_frame(
                        ev.id,
                        ev.type.value,
                        event_data(
                            ev.incident_id,
                            ev.at.isoformat(),
                            ev.actor,
                            ev.detail,
                            ev.snapshot_json(),  # the text the writer stored, not encoded again
                            ev.id,
                        ),
                    ),
                )
                for ev in events
            ]
        )

    def offer(self, frames: DeskFrames) -> None:
        """Offers one commit's events as frames already encoded (by :meth:`publish` here, or
        by the writer process's hub for an HTTP worker's: bus/link.py), in id order, then
        hands them to every tap. Must run on the hub's event loop."""
        if not frames:
            return
        if self.last_id and frames[0][0] > self.last_id + 1:
            # a hole: events this hub never offered (module docstring); the commit in hand is
            # in the table too, so the streams, ended, replay both
            dropped = self.drop_all()
            log.info("events missed; streams end to replay them", first=frames[0][0], n=dropped)
        by_filter: dict[frozenset[str] | None, Frames] = {}
        for sub in list(self.subscribers):
            if sub.dropped:
                continue
            mine = by_filter.get(sub.desks)
            if mine is None:
                mine = by_filter[sub.desks] = [
                    (eid, frame) for eid, desks, frame in frames if sub.wants(desks)
                ]
            if not mine:
                continue
            try:
                sub.queue.put_nowait(mine)
            except asyncio.QueueFull:
                self._drop(sub)
        self.last_id = max(self.last_id, frames[-1][0])
        self.published += len(frames)
        for tap in self.taps:
            tap(frames)

    def drop_all(self) -> int:
        """Ends every stream (their clients reconnect and replay from the events table):
        when this hub may have missed events. Must run on the hub's event loop."""
        subs = list(self.subscribers)
        for sub in subs:
            self._drop(sub)
        return len(subs)

    def _drop(self, sub: Subscriber) -> None:
        sub.dropped = True
        self.subscribers.discard(sub)
        # Make room for the end marker so the stream ends promptly.
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    def close(self) -> None:
        self.closed = True
        for sub in list(self.subscribers):
            self._drop(sub)
