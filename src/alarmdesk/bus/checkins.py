"""Device check-ins across nodes (distributed mode, docs/operations.md "Several nodes").

Every node listens for DC-09 panels (a panel's primary and secondary receiver may be any two
nodes) and queues their signals in the intake log, but supervision (the timer that raises a
"missed check-in" when a panel falls silent) runs once, on the node that writes. A frame of
a registered panel is a check-in, whichever node took it: each node publishes the device's id
on ``<stream>.checkins``, and the writer's supervisor hears them all.

Core NATS, nothing kept, as the event relay: a check-in lost while NATS reconnects costs
nothing unless the panel's next ones are lost too, for a whole interval and its grace; and
what a panel reports (an alarm, a fault) travels the intake log, never this subject. Within
one event-loop turn a node sends the ids it heard once each, in one message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg

from alarmdesk import logs
from alarmdesk.bus.roundtrip import server_has_read

__all__ = ["CheckinRelay"]

log = logs.get_logger(__name__)

_SEPARATOR = b"\n"  # never in a device id (domain/centre.py: letters, digits, ._:-)


class CheckinRelay:
    """Publishes this node's check-ins; hands every node's to a listener (the supervisor).

    Args:
        nc: the node's NATS connection (the intake log's).
        subject: ``<stream>.checkins``.
    """

    def __init__(self, nc: Client, subject: str) -> None:
        self.nc = nc
        self.subject = subject
        self._heard: set[str] = set()
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: object | None = None

    # -- what the DC-09 receiver tells (``CheckinSink``) ---------------------------------------

    def checkin(self, device_id: str) -> None:
        """On the event loop, as the receiver accepts a frame: sent at the end of the turn."""
        self._heard.add(device_id)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        heard, self._heard = self._heard, set()
        task = asyncio.get_running_loop().create_task(self._send(heard))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, heard: set[str]) -> None:
        try:
            await self.nc.publish(self.subject, _SEPARATOR.join(d.encode() for d in sorted(heard)))
        except Exception:
            log.warning("check-ins not relayed to the writer", devices=len(heard))

    # -- the writer's side ---------------------------------------------------------------------

    async def listen(self, checkin: Callable[[str], None]) -> None:
        """Calls ``checkin(device_id)`` for every check-in any node publishes from now on."""

        async def on_message(msg: Msg) -> None:
            for device_id in msg.data.split(_SEPARATOR):
                if device_id:
                    checkin(device_id.decode())

        await self.stop_listening()
        self._subscription = await self.nc.subscribe(self.subject, cb=on_message)
        await server_has_read(self.nc)  # check-ins published after this reach the writer

    async def stop_listening(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()  # type: ignore[attr-defined]
            except Exception:
                log.debug("check-in subscription already gone")
