"""The HTTP server: uvicorn, with every slow client timed out.

uvicorn closes a connection that idles after a response (``timeout_keep_alive``) but nothing
else: a client that connects and sends nothing, sends half its headers, or half its body and
stops, holds a connection (and a task) forever. Three ``[server]`` settings bound them
(docs/configuration.md):

- ``header_timeout_seconds``: from the connection, or the first byte of a request on a kept
  connection, to the end of its headers. Enforced in the protocol (:func:`timed_protocol`),
  since no ASGI code runs before the headers are complete; the client gets ``408`` and the
  connection is closed. A deadline, not an idle timer: dripping a byte at a time does not
  extend it.
- ``body_timeout_seconds``: from the start of the request to the end of its body, for a route
  that reads it (:func:`body_deadline`): ``408 request_timeout`` with ``Connection: close``.
  Once the body is in, the response may last (the event stream does).
- ``keep_alive_seconds``: idle time after a response before the connection is closed.

``alarmdesk serve`` calls :func:`run`; tests build the same server with
:func:`uvicorn_server`.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import msgspec
import uvicorn
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from alarmdesk.config import Config

__all__ = [
    "GC_THRESHOLDS",
    "RequestTimeout",
    "body_deadline",
    "receive_by",
    "run",
    "timed_protocol",
    "uvicorn_server",
]

# Python's cyclic garbage collector in the server process. At CPython's default (700, 10, 10)
# a collection ran every few requests and a full one, walking every object the process holds
# (the pipeline's open incidents, the taxonomy, the framework), every few thousand: a fifth of
# the writer thread's time under load, and the pauses were the slowest requests (single-signal
# p99 ~200 ms, against ~45 ms with these; bench/README.md, issue 11). Reference counting frees
# almost everything at once; only cycles wait for these, so memory stays where it was.
GC_THRESHOLDS = (10_000, 50, 50)


M = TypeVar("M")  # an ASGI message, as the caller's ``receive`` types it


class RequestTimeout(HTTPException):
    """The request's body did not arrive within ``[server] body_timeout_seconds``."""

    status_code = 408


def _raw_408(message: str) -> bytes:
    body = msgspec.json.encode(
        {"error": {"code": "request_timeout", "message": message, "field": None}}
    )
    return (
        b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
    )


def timed_protocol(header_timeout: float) -> type[HttpToolsProtocol]:
    """uvicorn's HTTP protocol with a deadline for each request's headers."""

    class TimedHttpProtocol(HttpToolsProtocol):
        _headers_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_headers()  # a client that connects and says nothing

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._headers_timer is None:  # the next request on a kept connection
                self._arm_headers()

        def on_headers_complete(self) -> None:
            self._disarm_headers()
            super().on_headers_complete()
            if self.cycle is not None:  # its task has not run yet: nothing is written
                self.cycle.transport = HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_headers()
            super().connection_lost(exc)

        def _arm_headers(self) -> None:
            self._headers_timer = self.loop.call_later(header_timeout, self._headers_late)

        def _disarm_headers(self) -> None:
            if self._headers_timer is not None:
                self._headers_timer.cancel()
                self._headers_timer = None

        def _headers_late(self) -> None:
            self._headers_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(
                    _raw_408(f"the request's headers took longer than {header_timeout:g} s")
                )
            self.transport.close()

    return TimedHttpProtocol


class HeadWithBody:
    """A response's transport that sends its head and body as one write.

    uvicorn writes the status line and headers when the app sends ``http.response.start``
    and the body when it sends ``http.response.body``: two ``send`` calls and two TCP
    segments for every answer, where one does (the peer's server writes one). The head is
    held until the first body write joins it, and at most until the end of this turn of the
    event loop (a stream whose first data comes later still gets its head at once). Every
    later write goes straight through; closing sends what is held first.
    """

    __slots__ = ("_held", "_state", "loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self.loop = loop
        self._held = b""
        self._state = 0  # 0: nothing written; 1: the head held; 2: passing through

    def write(self, data: bytes) -> None:
        if self._state == 0:
            self._state = 1
            self._held = data
            self.loop.call_soon(self._release)
        else:
            self._release(data)

    def _release(self, data: bytes = b"") -> None:
        """Writes what is held (if anything) with ``data``, in one call."""
        if self._state != 1:
            if data:
                self.transport.write(data)
            return
        self._state = 2
        held, self._held = self._held, b""
        if data:
            self.transport.writelines((held, data))
        elif not self.transport.is_closing():  # the end of the turn, or close()
            self.transport.write(held)

    def close(self) -> None:
        self._release()
        self.transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...
        return getattr(self.transport, name)


async def receive_by(receive: Callable[[], Awaitable[M]], deadline: float) -> M:
    """``receive()``, raising ``TimeoutError`` if its message is not there by ``deadline``
    (the event loop's clock).

    A request's body is nearly always in already when the app asks for it (it came in the
    segment that held the headers), and ``receive`` then answers without suspending. An
    ``asyncio.timeout_at`` around every call cost ~8 us a request on the event loop (the
    timer armed and cancelled, the task looked up), a tenth of its work per single signal
    (bench/README.md, issue 11). So the call is stepped once by hand: a message given at
    once is returned as it is; only a call that must wait goes on under the deadline.
    """
    coro: Any = receive()
    if not isinstance(coro, Coroutine):  # an awaitable of another kind: awaited as it is
        async with asyncio.timeout_at(deadline):
            return await coro  # type: ignore[no-any-return]
    try:
        pending = coro.send(None)
    except StopIteration as done:
        message: M = done.value
        return message
    async with asyncio.timeout_at(deadline):
        resumed: M = await _Resumed(coro, pending)
        return resumed


class _Resumed:
    """Awaits the rest of a coroutine already stepped once, that yielded ``pending``: what
    ``await`` would have done had it started it (each resumption, value or exception,
    handed on to the coroutine, as ``yield from`` does)."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Any, pending: Any) -> None:
        self.coro = coro
        self.pending = pending

    def __await__(self) -> Any:
        coro, pending = self.coro, self.pending
        while True:
            try:
                yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation (the deadline's): into the call
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    pending = coro.send(None)
                except StopIteration as done:
                    return done.value


def body_deadline(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: the request body must arrive within ``body_timeout_seconds`` of
    the request's start; after the body, ``receive`` is passed through untouched (a streaming
    response waits on it for the client's disconnect)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        timeout: float = scope["app"].state.services.config.server.body_timeout_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        body_done = False

        async def timed_receive() -> ReceiveMessage:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                message = await receive_by(receive, deadline)
            except TimeoutError:
                raise RequestTimeout(
                    detail=f"the request's body took longer than {timeout:g} s",
                    headers={"Connection": "close"},
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await app(scope, timed_receive, send)

    return middleware


def uvicorn_server(app: ASGIApp, cfg: Config, **options: Any) -> uvicorn.Server:
    """The server ``alarmdesk serve`` runs, on ``cfg.server``'s address and timeouts."""
    server = cfg.server
    config = uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        http=timed_protocol(server.header_timeout_seconds),
        timeout_keep_alive=server.keep_alive_seconds,  # type: ignore[arg-type]
        lifespan="on",
        **{
            "log_level": "info",
            "access_log": False,
            "log_config": None,  # the lines go through alarmdesk.logs (structured, with context)
            "timeout_graceful_shutdown": 5,
            **options,
        },
    )
    return uvicorn.Server(config)


def run(app: ASGIApp, cfg: Config, **options: Any) -> None:
    """Serves ``app`` until interrupted, with the collector tuned for serving
    (:data:`GC_THRESHOLDS`). ``options`` go to uvicorn (``uds``: on a Unix socket instead)."""
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn_server(app, cfg, **options).run()
