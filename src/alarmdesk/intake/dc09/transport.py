"""DC-09 over TCP and UDP: the listeners and connections that carry frames to a receiver.

:class:`~alarmdesk.intake.dc09.receiver.Dc09Receiver` decides what one frame becomes and
what it is answered; this module only moves bytes: it reads frames off sockets, hands each
to :meth:`Dc09Receiver.handle` and writes the reply it returns. What the transports count
(connections, idle and frame timeouts, dropped datagrams, handling errors) goes into the
receiver's ``stats``, so the metrics read one counter; their limits are in its
:class:`~alarmdesk.intake.dc09.receiver.ReceiverSettings`.

Connections: each TCP connection has its own :class:`FrameBuffer` (frames are read by <LF>
... <CR>, never by packet), handles up to ``max_in_flight`` frames at once (they reach the
writer in arrival order) and writes the replies in arrival order. Past that it stops reading
the socket (TCP backpressure). A bad frame gets its NAK or DUH, or nothing, and the
connection stays open; only the peer, shutdown, an idle timeout or a frame that stays
incomplete too long close it. Over UDP every datagram is read by its own buffer and the
replies go back to its sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from typing import Any, cast

from alarmdesk.intake.dc09.codec import FrameBuffer
from alarmdesk.intake.dc09.errors import Dc09Error
from alarmdesk.intake.dc09.handling import reject
from alarmdesk.intake.dc09.receiver import Dc09Receiver

log = logging.getLogger(__name__)


class Dc09Listeners:
    """The TCP and UDP listeners of one receiver, and its open TCP connections.

    Run on the receiver's loop. The receiver stays usable on its own (``handle``); this is
    what puts it on the network and takes it off again (:meth:`close`).
    """

    def __init__(self, receiver: Dc09Receiver) -> None:
        self.receiver = receiver
        self._servers: list[asyncio.Server] = []
        self._closing: list[asyncio.Server] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self._connections: set[_TcpConnection] = set()
        self._sweeper: asyncio.Task[None] | None = None

    async def start_tcp(self, sock: socket.socket) -> asyncio.Server:
        """Serves DC-09 over TCP on a bound, listening socket."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _TcpConnection(self), sock=sock)
        self._servers.append(server)
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep_idle(), name="dc09-idle-sweeper")
        return server

    async def start_udp(self, sock: socket.socket) -> asyncio.DatagramTransport:
        """Serves DC-09 over UDP on a bound socket."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpEndpoint(self.receiver), sock=sock
        )
        self._udp.append(transport)
        return transport

    @property
    def connections(self) -> int:
        return len(self._connections)

    def close(self) -> None:
        """Stops listening and closes every connection (replies in flight are dropped)."""
        for server in self._servers:
            server.close()
        for transport in self._udp:
            transport.close()
        for conn in list(self._connections):
            conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._closing += self._servers
        self._servers = []
        self._udp.clear()

    async def wait_closed(self) -> None:
        """Waits until the listeners and transports closed by :meth:`close` are gone."""
        closing, self._closing = self._closing, []
        for server in closing:
            await server.wait_closed()
        for _ in range(3):  # transports finish closing in callbacks on the next turns
            await asyncio.sleep(0)

    async def _sweep_idle(self) -> None:
        loop = asyncio.get_running_loop()
        receiver = self.receiver
        shortest = min(receiver.settings.idle_timeout, receiver.settings.frame_timeout)
        period = max(0.25, min(30.0, shortest / 4))
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for conn in list(self._connections):
                if conn.last_activity < now - receiver.settings.idle_timeout:
                    receiver.stats["idle_closed"] += 1
                    conn.abort()
                elif conn.frame_started is not None and (
                    conn.frame_started < now - receiver.settings.frame_timeout
                ):
                    receiver.stats["frame_timeouts"] += 1
                    log.warning(
                        "DC-09 connection closed: a frame still incomplete after %.0f s "
                        "(%d bytes held)",
                        receiver.settings.frame_timeout,
                        conn.buffer.pending,
                    )
                    conn.abort()


class _TcpConnection(asyncio.Protocol):
    """One panel connection: framing, bounded pipelining, replies in arrival order."""

    def __init__(self, listeners: Dc09Listeners) -> None:
        self.listeners = listeners
        self.receiver = listeners.receiver
        self.buffer = FrameBuffer()
        self.waiting: deque[bytes | Dc09Error] = deque()
        self.in_flight: deque[asyncio.Future[bytes | None]] = deque()
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.last_activity = self.loop.time()
        # When the frame now held in part began to arrive; None while no part is held.
        self.frame_started: float | None = None
        self.reading_paused = False
        self.writing_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio's: no isinstance check here.
        self.transport = cast(asyncio.Transport, transport)
        self.listeners._connections.add(self)
        self.receiver.stats["connections"] += 1
        sock = transport.get_extra_info("socket")
        if sock is not None:  # replies are small and must not wait for Nagle
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        # In-flight frames still finish (their commits are shielded); their replies go
        # nowhere, and the panel's resend is answered from the idempotency key.
        self.listeners._connections.discard(self)
        self.transport = None
        self.frame_started = None
        self.waiting.clear()

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.loop.time()
        items = self.buffer.feed(data)
        self.waiting.extend(items)
        if not self.buffer.pending:
            self.frame_started = None
        elif items or self.frame_started is None:  # a new frame began in this chunk
            self.frame_started = self.last_activity
        self._start_more()

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._flow()

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._start_more()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _start_more(self) -> None:
        limit = self.receiver.settings.max_in_flight
        while self.waiting and len(self.in_flight) < limit and not self.writing_paused:
            item = self.waiting.popleft()
            future: asyncio.Future[bytes | None]
            if isinstance(item, Dc09Error):  # an oversize frame, from the buffer
                self.receiver.stats[f"rejected.{item.code}"] += 1
                future = self.loop.create_future()
                future.set_result(reject(item, self.receiver.clock()).reply)
            else:
                future = self.loop.create_task(self.receiver.handle(item))
            self.in_flight.append(future)
            future.add_done_callback(self._done)
        self._flow()

    def _flow(self) -> None:
        if self.transport is None:
            return
        busy = bool(self.waiting) or self.writing_paused
        if busy and not self.reading_paused:
            self.transport.pause_reading()
            self.reading_paused = True
        elif not busy and self.reading_paused:
            self.transport.resume_reading()
            self.reading_paused = False

    def _done(self, _: asyncio.Future[bytes | None]) -> None:
        while self.in_flight and self.in_flight[0].done():
            future = self.in_flight.popleft()
            reply: bytes | None = None
            if future.cancelled():
                pass
            elif (exc := future.exception()) is not None:
                self.receiver.stats["errors"] += 1
                log.error("DC-09 frame handling failed", exc_info=exc)
            else:
                reply = future.result()
            if reply and self.transport is not None and not self.transport.is_closing():
                self.transport.write(reply)
        self._start_more()


class _UdpEndpoint(asyncio.DatagramProtocol):
    """DC-09 over UDP: every datagram is read by its own buffer; replies go to the sender."""

    def __init__(self, receiver: Dc09Receiver) -> None:
        self.receiver = receiver
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if len(self.tasks) >= self.receiver.settings.udp_max_in_flight:
            self.receiver.stats["udp_dropped"] += 1
            return
        task = asyncio.get_running_loop().create_task(self._handle(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _handle(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            await self._answer(data, addr)
        finally:
            self.receiver.stats["udp_datagrams"] += 1  # handled, whatever it held

    async def _answer(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        for item in FrameBuffer().feed(data):
            try:
                if isinstance(item, Dc09Error):
                    reply = reject(item, self.receiver.clock()).reply
                else:
                    reply = await self.receiver.handle(item)
            except Exception:
                self.receiver.stats["errors"] += 1
                log.exception("DC-09 datagram handling failed")
                continue
            if reply and self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(reply, addr)


def listening_socket(host: str, port: int, kind: int) -> socket.socket:
    """A bound socket (listening, for TCP), made synchronously so that start-up fails
    at once, with the OS's message, when the port is taken.

    Raises:
        OSError: the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:  # restart over TIME_WAIT; on UDP it would share ports
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock
