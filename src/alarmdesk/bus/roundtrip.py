"""Waiting until the NATS server has read what this connection sent.

A node that starts or stops answering (the writer's commands, the events relay, the
check-ins) must know the server took its SUB or UNSUB before it goes on: a standby that asks
the writer a moment later must find it, or hear "no responders" at once, not wait for a
timeout. ``Client.flush()`` alone does not promise that in nats-py 2.16: SUB, UNSUB and PUB
wait in the client's pending buffer for its flusher task, while the PING of ``flush()`` is
written straight to the socket (``_send_ping``), so the PING can overtake them and its PONG
come back before the server read the SUB. About one start or stop in a hundred then misled a
standby on this machine (tests/integration/test_command_relay.py).
"""

from __future__ import annotations

from nats.aio.client import Client

__all__ = ["server_has_read"]


async def server_has_read(nc: Client) -> None:
    """Returns once the server has read every command ``nc`` sent before the call.

    Two round trips: while the first PONG travels, the flusher task (woken by the command
    itself) writes the pending buffer, so the second PING follows the commands on the socket
    and its PONG proves the server read them.
    """
    await nc.flush()
    await nc.flush()
