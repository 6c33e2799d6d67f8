"""Incident events across nodes (distributed mode, docs/operations.md "Several nodes").

The node that writes publishes each commit's events on NATS (``<stream>.events``), after the
commit, in commit order; every node's relay offers the events another node published to its
own hub, so a console on any node sees every incident its desks may see. Core NATS, nothing
kept: the events table is the record. A node that was cut off from NATS may have missed
some, and so may every node when a writer dies between its commit and its publish: on
reconnecting a node drops its consoles' streams, and so does its hub on a hole in the ids
(the writer gives them one after another), whether the commit after the hole came from
another node or, once it took over, from this node itself; each client comes back with
``Last-Event-ID`` and replays what it missed from the table, as a console that fell behind
does (bus/hub.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.aio.msg import Msg

from alarmdesk import logs
from alarmdesk.bus.hub import Hub
from alarmdesk.bus.roundtrip import server_has_read
from alarmdesk.domain.events import EventType, IncidentEvent

__all__ = ["EventRelay"]

log = logs.get_logger(__name__)


class _Event(msgspec.Struct, frozen=True, array_like=True):
    """An event on the wire: its fields, the snapshot as the JSON text the writer stored."""

    type: EventType
    incident_id: int
    at: datetime
    actor: str
    detail: dict[str, Any]
    desks: tuple[str, ...]
    id: int
    snapshot: bytes

    @classmethod
    def of(cls, ev: IncidentEvent) -> _Event:
        return cls(
            ev.type, ev.incident_id, ev.at, ev.actor, ev.detail, ev.desks, ev.id,
            bytes(ev.snapshot_json()),
        )  # fmt: skip

    def event(self) -> IncidentEvent:
        return IncidentEvent(
            self.type,
            self.incident_id,
            self.at,
            self.actor,
            self.detail,
            self.desks,
            self.id,
            _snapshot(self.snapshot),
        )


class _Commit(msgspec.Struct, frozen=True):
    origin: str  # the node that committed them
    events: list[_Event]


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Commit).decode
_snapshot = msgspec.json.Decoder(dict[str, Any]).decode


def _messages(origin: str, events: list[_Event], limit: int) -> list[bytes]:
    """One commit's events as NATS messages of at most ``limit`` bytes (the server's
    max_payload, 1 MB by default; a writer under load commits thousands of events at once),
    consecutive and in order, so the receiver sees no hole between them. An event alone
    larger than ``limit`` cannot be sent: publishing it fails, and the receiving nodes'
    consoles replay it from the table when the next commit shows the hole."""
    whole = _encode(_Commit(origin, events))
    if len(whole) <= limit or len(events) == 1:
        return [whole]
    half = len(events) // 2
    return _messages(origin, events[:half], limit) + _messages(origin, events[half:], limit)


class EventRelay:
    """Publishes this node's committed events and offers other nodes' to ``hub``.

    Args:
        nc: the node's NATS connection.
        subject: where events go, e.g. ``<stream>.events``.
        origin: this node's id: what it published itself it has already offered.
        hub: this node's hub (its consoles' streams).
    """

    def __init__(self, nc: Client, subject: str, origin: str, hub: Hub) -> None:
        self.nc, self.subject, self.origin, self.hub = nc, subject, origin, hub
        self._outbox: asyncio.Queue[list[IncidentEvent] | None] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._subscription: object | None = None
        self.received = 0  # events offered from other nodes

    async def start(self) -> None:
        self._subscription = await self.nc.subscribe(self.subject, cb=self._on_message)
        await server_has_read(self.nc)  # the server has the subscription: nothing after is missed
        self._sender = asyncio.create_task(self._send_in_order(), name="event-relay")

    def send(self, events: list[IncidentEvent]) -> None:
        """Queues one commit's events for the other nodes (on the hub's loop, after the
        commit); one task publishes them, so they leave in commit order."""
        if events:
            self._outbox.put_nowait(events)

    async def _send_in_order(self) -> None:
        while (events := await self._outbox.get()) is not None:
            try:
                wire = [_Event.of(ev) for ev in events]
                for message in _messages(self.origin, wire, self.nc.max_payload):
                    await self.nc.publish(self.subject, message)
            except Exception:  # NATS down: other nodes' consoles replay from the table
                log.warning("events not relayed to other nodes", events=len(events))

    async def _on_message(self, msg: Msg) -> None:
        try:
            commit = _decode(msg.data)
            if commit.origin == self.origin or not commit.events:
                return  # its own: offered to its hub already
            events = [e.event() for e in commit.events]
        except msgspec.DecodeError:
            log.warning("a message on the events subject is not a commit; ignored")
            return
        self.received += len(events)
        self.hub.publish(events)  # after a hole in the ids, its streams replay (bus/hub.py)

    def reconnected(self) -> None:
        """After NATS came back: events may have been missed, so every stream is ended and
        its client replays from the events table (Last-Event-ID)."""
        dropped = self.hub.drop_all()
        if dropped:
            log.info("reconnected to NATS: streams ended to replay what they missed", n=dropped)

    async def close(self) -> None:
        self._outbox.put_nowait(None)
        if self._sender is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sender, 2.0)
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()  # type: ignore[attr-defined]
