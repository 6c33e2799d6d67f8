"""The ingest routes' hot path in raw ASGI, in front of Litestar.

``POST /api/v1/signals`` and ``/api/v1/signals/batch`` are most of what a centre's server
does; Litestar's routing, middleware stack, guard (which copies the route handler for every
request) and response objects were about 60 % of the event loop's time per signal (py-spy,
bench/README.md "Alertmanager side by side"). :class:`FastIngest` sits where Litestar's own
ASGI handler sits (``app.asgi_handler``) and serves the *common case* of those two routes
itself:

- a Bearer token whose principal may submit signals (the same :class:`Authenticator` and its
  cache as the middleware, so a revoked token stops working exactly as it does there);
- a body within the route's limit, read within ``[server] body_timeout_seconds``;
- a body that decodes and validates (the same ``decode_one`` / ``decode_batch``) with an
  ``Idempotency-Key`` header that agrees with it (the same ``with_header_key``).

Everything else -- no credentials, a session cookie, a refused token, a body too large or
invalid, a client that disconnects -- is handed to Litestar unchanged, with the body bytes
already read replayed to it, so every refusal (status, error body, audit entry of a denial)
is Litestar's own. Once the writer has the signals, the answer is written here: the receipt
(202 only after COMMIT, as before; in distributed mode "queued" after JetStream stored them,
``web/api/signals.take``) or the error the writer raised, in the one error shape
(``web/errors.fields_of``). Litestar still declares both routes, so the OpenAPI document is
unchanged. ``create_app(fast_ingest=False)`` serves them through Litestar alone.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
from litestar.types import ASGIApp

from alarmdesk import logs
from alarmdesk.bootstrap import Services
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.signal import SignalIn, decode_batch, decode_one
from alarmdesk.safeguards.access import Permission, allowed
from alarmdesk.safeguards.audit import Actor
from alarmdesk.web.api.signals import take, with_header_key
from alarmdesk.web.auth import Authenticator, bearer_secret, request_id_of
from alarmdesk.web.errors import UNEXPECTED, fields_of
from alarmdesk.web.server import receive_by

__all__ = ["BATCH", "SINGLE", "FastIngest"]

log = logging.getLogger(__name__)

SINGLE = "/api/v1/signals"
BATCH = "/api/v1/signals/batch"
_JSON = (b"content-type", b"application/json")
_encode = msgspec.json.Encoder().encode
# ASGI scopes and messages are handled as the plain dicts they are (Litestar's TypedDicts
# cover every scope type and message at once).
Scope = Any
Message = dict[str, Any]
Receive = Any
Send = Any


class _Delegate(Exception):
    """The request is not the common case: Litestar answers it."""


class FastIngest:
    """Raw-ASGI handler of the two ingest routes; every other request goes to ``inner``."""

    def __init__(self, inner: ASGIApp, svc: Services, authn: Authenticator) -> None:
        self.inner = inner
        self.svc = svc
        self.authn = authn
        self.answered = 0  # requests answered here, not by Litestar (for tests and metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.inner(scope, receive, send)
            return
        path = scope["path"]
        if path == SINGLE:
            limit = self.svc.config.limits.max_signal_bytes
        elif path == BATCH:
            limit = self.svc.config.limits.max_batch_bytes
        else:
            await self.inner(scope, receive, send)
            return
        read: list[Message] = []  # what was received, to replay to Litestar if it answers
        try:
            await self._serve(scope, receive, send, path == BATCH, limit, read)
        except _Delegate:
            await self.inner(scope, _replay(read, receive), send)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        batch: bool,
        limit: int,
        read: list[Message],
    ) -> None:
        secret = bearer_secret(scope)
        if secret is None:
            raise _Delegate
        principal = await self.authn.token(secret)
        if principal is None or not allowed(principal, Permission.SIGNAL_SUBMIT):
            raise _Delegate
        length = header_key = None
        for name, value in scope["headers"]:  # the first of each, as Litestar's headers.get
            if name == b"content-length" and length is None:
                length = value
            elif name == b"idempotency-key" and header_key is None:
                header_key = value.decode("latin-1")
        if length is not None and length.isdigit() and int(length) > limit:
            raise _Delegate
        request_id = request_id_of(scope)
        body = await self._body(receive, limit, read, send, request_id)
        if body is None:
            return  # timed out; answered
        try:
            now = self.svc.clock()
            signals: list[SignalIn]
            if batch:
                signals = decode_batch(body, now)
            else:
                signals = [decode_one(body, now)]
                with_header_key(signals[0], header_key)
        except AlarmdeskError:
            raise _Delegate from None
        client = scope.get("client")
        actor = Actor.of(principal, client[0] if client else "")
        try:
            out = await take(self.svc, signals, principal, actor, batch)
        except AlarmdeskError as exc:
            status, code, message, field = fields_of(exc)
            self.answered += 1
            await _answer(send, status, _error(code, message, field), request_id)
            return
        except Exception:
            with logs.context(
                request_id=request_id, principal=principal.id, method="POST", path=scope["path"]
            ):
                log.exception("unhandled error on POST %s", scope["path"])
            await _answer(send, 500, _error("internal_error", UNEXPECTED, None), request_id)
            return
        self.answered += 1
        await _answer(send, 202, out, request_id)

    async def _body(
        self, receive: Receive, limit: int, read: list[Message], send: Send, request_id: str
    ) -> bytes | None:
        """The whole body, within the body deadline (None: timed out, 408 sent). Anything
        unusual (too large, a disconnect) hands the request to Litestar."""
        timeout = self.svc.config.server.body_timeout_seconds
        deadline = asyncio.get_running_loop().time() + timeout
        size = 0
        while True:
            try:
                message = await receive_by(receive, deadline)
            except TimeoutError:
                detail = f"the request's body took longer than {timeout:g} s"
                await _answer(
                    send,
                    408,
                    _error("request_timeout", detail, None),
                    request_id,
                    [(b"connection", b"close")],
                )
                return None
            read.append(message)
            if message["type"] != "http.request":
                raise _Delegate
            size += len(message.get("body", b""))
            if size > limit:
                raise _Delegate
            if not message.get("more_body", False):
                break
        chunks: list[bytes] = [m.get("body", b"") for m in read]
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(read: list[Message], receive: Receive) -> Receive:
    """``receive`` for Litestar: the messages already read, then the connection's own."""
    pending = list(read)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        message: Message = await receive()
        return message

    return replayed


def _error(code: str, message: str, field: str | None) -> bytes:
    return _encode({"error": {"code": code, "message": message, "field": field}})


async def _answer(
    send: Send,
    status: int,
    body: bytes,
    request_id: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [_JSON, (b"content-length", b"%d" % len(body)), *(extra or ())]
    headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
