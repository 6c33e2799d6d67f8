"""Who is calling: sessions (cookie + CSRF token) and API tokens (Bearer), and the guard
that checks every route against the access matrix.

- The middleware resolves credentials into a :class:`Principal` on ``scope["principal"]``;
  lookups are cached for a few seconds so the hot ingest path costs one dict lookup.
- Every route declares the permission it needs in ``opt={"permission": ...}``; a route that
  declares none and is not marked public is refused (fail closed).
- A cookie-authenticated request that changes something must carry the session's CSRF
  token in ``X-CSRF-Token`` (the console sends it on every htmx request); Bearer requests
  are not exposed to CSRF and need none.
"""

from __future__ import annotations

import hmac
import itertools
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio
import sqlalchemy as sa
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from alarmdesk import logs
from alarmdesk.bootstrap import Services
from alarmdesk.domain.errors import Forbidden, TooManyAttempts, Unauthenticated
from alarmdesk.safeguards.access import Permission, Principal, allowed
from alarmdesk.service import accounts

SESSION_COOKIE = "alarmdesk_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPENAPI_PATH = "/api/docs"  # the API's description is public; it holds no data
CACHE_SECONDS = 10.0  # a revoked token or ended session stops working within this time
# Distributed mode: while the database cannot be reached, a token confirmed this recently
# still opens intake, which the intake log takes without the database (no token can be
# revoked meanwhile: revoking writes to the database too).
STALE_SECONDS = 600.0


# The scope of the request being served, with the credential the middleware resolved: a
# long-lived response (the event stream) reads it to re-check that credential, whichever route
# produced the response.
request_scope: ContextVar[Scope | None] = ContextVar("alarmdesk_request_scope", default=None)


@dataclass
class _Cached:
    value: Any
    until: float


@dataclass
class Authenticator:
    """Resolves credentials, with a short cache; one per running app."""

    svc: Services
    session_lifetime: timedelta = timedelta(hours=12)
    _tokens: dict[str, _Cached] = field(default_factory=dict)
    _sessions: dict[str, _Cached] = field(default_factory=dict)

    async def token(self, secret: str) -> Principal | None:
        hit = self._tokens.get(secret)
        now = time.monotonic()
        if hit is not None and hit.until > now:
            return hit.value  # type: ignore[no-any-return]
        try:
            principal = await anyio.to_thread.run_sync(self._load_token, secret)
        except sa.exc.DBAPIError:
            stale_ok = hit is not None and hit.value is not None and self.svc.node is not None
            if stale_ok and hit is not None and hit.until + STALE_SECONDS > now:
                return hit.value  # type: ignore[no-any-return]
            raise
        self._remember(self._tokens, secret, principal)
        return principal

    async def session(self, secret: str) -> accounts.Session | None:
        hit = self._sessions.get(secret)
        if hit is not None and hit.until > time.monotonic():
            sess: accounts.Session | None = hit.value
            if sess is None or sess.expires_at > self.svc.clock():
                return sess
        sess = await anyio.to_thread.run_sync(self._load_session, secret)
        self._remember(self._sessions, secret, sess)
        return sess

    def forget_session(self, secret: str) -> None:
        self._sessions.pop(secret, None)

    def forget_all(self) -> None:
        self._tokens.clear()
        self._sessions.clear()

    def _remember(self, cache: dict[str, _Cached], key: str, value: object) -> None:
        if len(cache) > 10_000:  # bounded: guessing tokens cannot grow memory
            cache.clear()
        cache[key] = _Cached(value, time.monotonic() + CACHE_SECONDS)

    async def still_valid(self, scope: Scope) -> bool:
        """Whether the credential of a request still holds, read from the store (not the
        cache): false once its token is revoked or its session ended or expired, by this
        process or another. A long-lived response (the event stream) asks it periodically."""
        kind = scope.get("auth_kind")
        if kind == "token":
            secret = bearer_secret(scope)
            if secret is None:
                return False
            principal = await anyio.to_thread.run_sync(self._load_token, secret)
            if principal is None:
                self._tokens.pop(secret, None)
            return principal is not None
        if kind == "session":
            secret = _cookie(scope, SESSION_COOKIE)
            if secret is None:
                return False
            sess = await anyio.to_thread.run_sync(self._load_session, secret)
            if sess is None:
                self.forget_session(secret)
            return sess is not None
        return False

    def _load_token(self, secret: str) -> Principal | None:
        return accounts.principal_of_token(self.svc.engine, secret)

    def _load_session(self, secret: str) -> accounts.Session | None:
        return accounts.load_session(self.svc.engine, secret, self.svc.clock())


class LoginThrottle:
    """Failed sign-ins in ``window`` seconds: at most ``per_name`` for a name from one address,
    ``per_address`` from an address for any names, and ``per_name`` × :data:`NAME_SPREAD` for a
    name from all addresses; further attempts are refused (429) until the window passes.

    The lock of a name is per address: five wrong passwords typed for "operator" from
    anywhere locked the real operator out of the control room for a quarter of an hour,
    whatever they typed at their own console. A name tried from many addresses still meets
    the wider bound, so spreading guesses over addresses buys ten times the tries at most.
    """

    NAME_SPREAD = 10
    MAX_KEYS = 100_000

    def __init__(
        self,
        per_name: int = 5,
        per_address: int = 20,
        window: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_name, self.per_address, self.window, self.clock = (
            per_name,
            per_address,
            window,
            clock,
        )
        self._fails: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        now = self.clock()
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def _keys(self, name: str, address: str) -> tuple[tuple[str, int], ...]:
        folded = name.casefold()
        return (
            (f"na:{folded}\x00{address}", self.per_name),
            (f"a:{address}", self.per_address),
            (f"n:{folded}", self.per_name * self.NAME_SPREAD),
        )

    def check(self, name: str, address: str) -> None:
        for key, limit in self._keys(name, address):
            q = self._recent(key)
            if len(q) >= limit:
                retry = int(q[0] + self.window - self.clock()) + 1
                raise TooManyAttempts(
                    f"too many failed sign-ins; try again in {retry} s", retry_after=retry
                )

    def failed(self, name: str, address: str) -> None:
        for key, _ in self._keys(name, address):
            self._recent(key).append(self.clock())
        if len(self._fails) > self.MAX_KEYS:
            self._prune()

    def _prune(self) -> None:
        """Forgets what is past the window; then, if still too many, the oldest keys. (All of
        it was forgotten at once: a flood of names from many addresses reset every lock.)"""
        for key in list(self._fails):
            if not self._recent(key):
                del self._fails[key]
        while len(self._fails) > self.MAX_KEYS:
            del self._fails[next(iter(self._fails))]

    def succeeded(self, name: str, address: str) -> None:
        folded = name.casefold()
        self._fails.pop(f"na:{folded}\x00{address}", None)
        self._fails.pop(f"n:{folded}", None)


class CsrfFailed(Forbidden):
    code = "csrf_failed"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def bearer_secret(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer …`` header; None without one."""
    value = _header(scope, b"authorization")
    if value and value[:7].lower() == "bearer ":
        return value[7:].strip()
    return None


def _cookie(scope: Scope, name: str) -> str | None:
    raw = _header(scope, b"cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return None


_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")
# New request ids: 8 random hex digits for this process, then a counter (8 hex digits). A
# uuid4 per request (os.urandom and the UUID object) was 11 % of the event loop's time under
# single-signal load (py-spy, bench/peers.py); an id needs to be unique, not secret.
_ID_PREFIX = secrets.token_hex(4)
_id_counter = itertools.count(secrets.randbelow(1 << 32))


def request_id_of(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token (a proxy's or a client's), else a
    new one (16 characters); it is in every log line of the request and echoed in the
    response."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _REQUEST_ID.match(value):
            return value.decode()
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFF:08x}"


def auth_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            authn: Authenticator = scope["app"].state.authenticator
            scope["principal"] = None  # type: ignore[typeddict-unknown-key]
            scope["csrf"] = None  # type: ignore[typeddict-unknown-key]
            if (bearer := bearer_secret(scope)) is not None:
                scope["principal"] = await authn.token(bearer)  # type: ignore[typeddict-unknown-key]
                scope["auth_kind"] = "token"  # type: ignore[typeddict-unknown-key]
            elif (secret := _cookie(scope, SESSION_COOKIE)) is not None:
                sess = await authn.session(secret)
                if sess is not None:
                    scope["principal"] = sess.principal  # type: ignore[typeddict-unknown-key]
                    scope["csrf"] = sess.csrf_token  # type: ignore[typeddict-unknown-key]
                    scope["auth_kind"] = "session"  # type: ignore[typeddict-unknown-key]
            request_id = request_id_of(scope)
            principal = scope["principal"]  # type: ignore[typeddict-item]

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode()))
                    message = {**message, "headers": headers}
                await send(message)

            token = request_scope.set(scope)
            try:
                with logs.context(
                    request_id=request_id,
                    principal=principal.id if principal is not None else None,
                    method=scope.get("method"),
                    path=scope.get("path"),
                ):
                    http = str(scope["type"]) == "http"
                    await app(scope, receive, send_with_id if http else send)
            finally:
                request_scope.reset(token)
            return
        await app(scope, receive, send)

    return middleware


def credential_of(principal: Principal) -> str:
    """The key of the credential a principal came with, as the hub knows its streams: a
    token by its id (what revoking names), a session by its secret's hash (one of several
    sessions of a person ends alone)."""
    if principal.kind == "token":
        return principal.id
    return f"session:{principal.credential_hash}"


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    p = connection.scope.get("principal")
    if not isinstance(p, Principal):
        raise Unauthenticated("sign in, or send Authorization: Bearer <token>")
    return p


async def permission_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The one guard every route passes: permission from the route, role from the caller."""
    if handler.opt.get("public") or connection.scope["path"].startswith(OPENAPI_PATH):
        return
    permission: Permission | None = handler.opt.get("permission")
    principal = principal_of(connection)
    if permission is None or not allowed(principal, permission):
        raise Forbidden(
            f"role {principal.role.value} may not do this"
            + (f" ({permission.value})" if permission else "")
        )
    if (
        connection.scope.get("auth_kind") == "session"
        and connection.scope.get("method", "GET") not in SAFE_METHODS
    ):
        sent = connection.headers.get(CSRF_HEADER) or ""
        expected = str(connection.scope.get("csrf") or "")
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise CsrfFailed("missing or wrong CSRF token (X-CSRF-Token)", field=CSRF_HEADER)
