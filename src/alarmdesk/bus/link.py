"""The link between the writer process and the HTTP workers of one machine (``[server]
workers``; docs/operations.md, "Several processes on one machine").

One process writes (its writer thread, as ever). The HTTP workers, processes of their own,
serve every route on the same port and hand the writer what only it may do, over a Unix
socket: signals, incident commands, unit reports and audit entries (the requests of
``bus/commands.py``, the same codec as a standby's over NATS). The writer process answers
each with what its writer answered: the receipts once committed, the incident after a
command, or the very error. It also sends every commit's events, as the SSE frames its own
hub encoded (once), to every worker, whose hub offers them to its consoles.

The wire: a 4-byte big-endian length, then one msgpack message (:data:`Message`). A worker
opens with :class:`Hello` and the secret its parent gave it; the socket lives in a directory
only the server's user may enter, and a wrong secret is closed at once, so no other process
submits as a worker.

A link ends when either process stops or dies. A worker whose link ended answers ``503
writer_stopped`` and stops (its parent starts it again, or is gone). A worker that takes
events more slowly than they come (more than :data:`SEND_BUFFER_LIMIT` bytes waiting) is cut
off: it stops, its parent starts it again, and its consoles replay what they missed from the
events table, as a console that falls behind its hub does (bus/hub.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Final

import msgspec

from alarmdesk import logs
from alarmdesk.bus.commands import WriterClient, WriterSide, answer
from alarmdesk.bus.hub import DeskFrames, Hub
from alarmdesk.domain.errors import PayloadTooLarge, WriterStopped

__all__ = [
    "MAX_MESSAGE",
    "SEND_BUFFER_LIMIT",
    "Hello",
    "LinkClient",
    "LinkServer",
    "frame",
    "read_message",
]

log = logs.get_logger(__name__)

MAX_MESSAGE: Final = 64 * 1024 * 1024  # a batch of signals is at most [limits] max_batch_bytes
SEND_BUFFER_LIMIT: Final = 256 * 1024 * 1024  # events waiting for one worker: then it is cut off
HELLO_SECONDS: Final = 5.0
STATUS_SECONDS: Final = 1.0
_LENGTH = struct.Struct(">I")


class Hello(msgspec.Struct, tag="hello", array_like=True):
    """A worker's first message."""

    secret: str
    pid: int


class Ask(msgspec.Struct, tag="ask", array_like=True):
    """A request to the writer (``bus/commands``' encoding), numbered by the worker."""

    id: int
    request: bytes


class Answer(msgspec.Struct, tag="answer", array_like=True):
    id: int
    reply: bytes


class Events(msgspec.Struct, tag="events", array_like=True):
    """One commit's events: (id, desks, SSE frame) each, as the writer process's hub made them."""

    frames: list[tuple[int, list[str], bytes]]


class Ready(msgspec.Struct, tag="ready", array_like=True):
    """The worker serves HTTP."""


class Status(msgspec.Struct, tag="status", array_like=True):
    """The writer's state, to every worker on connecting and every :data:`STATUS_SECONDS`:
    a worker's ``/readyz`` answers with it (a balancer probes the workers)."""

    writing: bool
    backlog: int


Message = Hello | Ask | Answer | Events | Ready | Status
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Message).decode


class LinkError(Exception):
    """What arrived is not a message of the link (too long, or not understood)."""


def frame(message: Message) -> bytes:
    """A message as it travels: its length, then its msgpack."""
    data = _encode(message)
    return _LENGTH.pack(len(data)) + data


async def read_message(reader: asyncio.StreamReader) -> Message:
    """The next message. Raises ``asyncio.IncompleteReadError`` at the end of the stream and
    :class:`LinkError` for a message too long or not understood."""
    (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if size > MAX_MESSAGE:
        raise LinkError(f"a message of {size} bytes, more than {MAX_MESSAGE}")
    try:
        return _decode(await reader.readexactly(size))
    except msgspec.DecodeError as exc:
        raise LinkError(f"a message not understood: {exc}") from None


def _events_messages(frames: DeskFrames) -> list[bytes]:
    """One commit's frames as messages under :data:`MAX_MESSAGE`, in order."""
    data = frame(Events([(i, list(d), f) for i, d, f in frames]))
    if len(data) <= MAX_MESSAGE or len(frames) == 1:
        return [data]
    half = len(frames) // 2
    return _events_messages(frames[:half]) + _events_messages(frames[half:])


class _Outbox:
    """What goes to the other end of a link, written once per turn of the event loop: the
    answers of one commit (settled together) leave in one write, and so do the requests a
    worker's connections made in one turn, instead of a system call each."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self._parts: list[bytes] = []
        self._flushing = False

    def put(self, data: bytes) -> None:
        if self.writer.is_closing():
            return
        self._parts.append(data)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._flushing = False
        parts, self._parts = self._parts, []
        if parts and not self.writer.is_closing():
            self.writer.writelines(parts)


class _Peer(_Outbox):
    """A worker, as the writer process sees it."""

    def __init__(self, writer: asyncio.StreamWriter, pid: int) -> None:
        super().__init__(writer)
        self.pid = pid

    def flush(self) -> None:
        super().flush()
        if self.writer.transport.get_write_buffer_size() > SEND_BUFFER_LIMIT:
            log.warning("an HTTP worker takes events too slowly; cut off", pid=self.pid)
            self.writer.transport.abort()


class LinkServer:
    """The writer process's side: answers the workers' requests with ``side`` and sends them
    ``hub``'s events.

    Args:
        path: the Unix socket (in a directory only this user may enter).
        secret: what a worker must say in its :class:`Hello`.
        side: the writer's entry points.
        hub: the writer process's hub; every commit it offers goes to every worker.
        on_ready: called with a worker's pid when it says it serves HTTP.
        backlog: how many requests wait for the writer (sent to the workers in
            :class:`Status`).
    """

    def __init__(
        self,
        path: Path,
        secret: str,
        side: WriterSide,
        hub: Hub,
        on_ready: Callable[[int], None] | None = None,
        backlog: Callable[[], int] = lambda: 0,
    ) -> None:
        self.path, self.secret, self.side, self.hub = path, secret, side, hub
        self.on_ready = on_ready
        self.backlog = backlog
        self._status_task: asyncio.Task[None] | None = None
        self.peers: set[_Peer] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(self.path), limit=MAX_MESSAGE
        )
        os.chmod(self.path, 0o600)
        self.hub.taps.append(self._tap)
        self._status_task = asyncio.create_task(self._send_status(), name="link-status")

    def _status(self) -> bytes:
        return frame(Status(self.side.writing(), self.backlog()))

    async def _send_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_SECONDS)
            if self.peers:
                data = self._status()
                for peer in list(self.peers):
                    peer.put(data)

    def _tap(self, frames: DeskFrames) -> None:
        if not self.peers:
            return
        messages = _events_messages(frames)  # encoded once for every worker
        for peer in list(self.peers):
            for data in messages:
                peer.put(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer: _Peer | None = None
        try:
            hello = await asyncio.wait_for(read_message(reader), HELLO_SECONDS)
            if not isinstance(hello, Hello) or not hmac.compare_digest(
                hello.secret.encode(), self.secret.encode()
            ):
                log.warning("a process on the link without the secret; closed")
                return
            peer = _Peer(writer, hello.pid)
            self.peers.add(peer)
            peer.put(self._status())
            peer.flush()  # the greeting at once: the worker's start-up waits for it
            while True:
                message = await read_message(reader)
                if isinstance(message, Ask):
                    task = asyncio.create_task(self._answer(peer, message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif isinstance(message, Ready) and self.on_ready is not None:
                    self.on_ready(peer.pid)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the worker stopped, or never said hello
        except LinkError as exc:
            log.warning("the link to an HTTP worker broke", error=str(exc))
        finally:
            if peer is not None:
                self.peers.discard(peer)
                peer.flush()  # what this turn answered, before the end
            writer.close()

    async def _answer(self, peer: _Peer, ask: Ask) -> None:
        peer.put(frame(Answer(ask.id, await answer(self.side, ask.request))))

    async def close(self) -> None:
        if self._status_task is not None:
            self._status_task.cancel()
        with contextlib.suppress(ValueError):
            self.hub.taps.remove(self._tap)
        if self._server is not None:
            self._server.close()
        for peer in list(self.peers):
            peer.writer.close()
        if self._tasks:  # answers being committed: the writer finishes them
            await asyncio.wait(list(self._tasks), timeout=10)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class LinkClient(WriterClient):
    """A worker's side: asks the writer process (``WriterClient``'s requests) and offers its
    events to this process's ``hub``.

    Args:
        path: the writer process's link socket.
        secret: what to say in the :class:`Hello`.
    """

    def __init__(self, path: Path, secret: str) -> None:
        self.path, self.secret = path, secret
        self.up = False
        self.on_lost: Callable[[], None] | None = None  # called once, when the link ends
        # the writer's state as the writer process last said (Status): for /readyz
        self.writing = False
        self.backlog = 0
        self._writer: asyncio.StreamWriter | None = None
        self._outbox: _Outbox | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._ids = itertools.count(1)

    async def connect(self, hub: Hub) -> None:
        """Connects and waits for the writer process's first :class:`Status`.

        Raises:
            WriterStopped: it closed the link (a wrong secret) or said nothing in time.
        """
        reader, self._writer = await asyncio.open_unix_connection(str(self.path), limit=MAX_MESSAGE)
        self._writer.write(frame(Hello(self.secret, os.getpid())))
        await self._writer.drain()
        try:
            first = await asyncio.wait_for(read_message(reader), HELLO_SECONDS)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, LinkError):
            first = None
        if not isinstance(first, Status):
            self._writer.close()
            raise WriterStopped("the writer process refused this worker's link")
        self.writing, self.backlog = first.writing, first.backlog
        self._outbox = _Outbox(self._writer)
        self.up = True
        self._reader_task = asyncio.create_task(self._read(reader, hub), name="writer-link")

    def ready(self) -> None:
        """Tells the writer process this worker serves HTTP."""
        if self._writer is not None and self.up:
            self._writer.write(frame(Ready()))

    async def _read(self, reader: asyncio.StreamReader, hub: Hub) -> None:
        try:
            while True:
                message = await read_message(reader)
                if isinstance(message, Answer):
                    future = self._pending.pop(message.id, None)
                    if future is not None and not future.done():
                        future.set_result(message.reply)
                elif isinstance(message, Status):
                    self.writing, self.backlog = message.writing, message.backlog
                elif isinstance(message, Events):
                    hub.offer([(i, d, f) for i, d, f in message.frames])
        except (asyncio.IncompleteReadError, ConnectionError):
            log.warning("the link to the writer process ended")
        except LinkError as exc:
            log.error("the link to the writer process broke", error=str(exc))
        finally:
            self._lost()

    def _lost(self) -> None:
        if not self.up:
            return
        self.up = False
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(
                    WriterStopped("the writer process stopped; try again in a few seconds")
                )
        if self._writer is not None:
            self._writer.close()
        if self.on_lost is not None:
            self.on_lost()

    async def _send(self, request: bytes) -> bytes:
        if not self.up or self._outbox is None:
            raise WriterStopped("the writer process cannot be reached; try again in a few seconds")
        ask_id = next(self._ids)
        data = frame(Ask(ask_id, request))
        if len(data) - _LENGTH.size > MAX_MESSAGE:  # refused here: sent, it would end the link
            raise PayloadTooLarge(
                f"a request of {len(request)} bytes; the link to the writer takes messages of "
                f"{MAX_MESSAGE} (lower [limits] max_batch_bytes)"
            )
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[ask_id] = future
        self._outbox.put(data)
        try:
            # shield: a client that goes away does not cancel what the writer commits
            return await asyncio.shield(future)
        finally:
            if not future.done():
                self._pending.pop(ask_id, None)

    async def close(self) -> None:
        self.on_lost = None
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        self._lost()
