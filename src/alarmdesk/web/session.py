"""Signing in and out: ``/api/v1/session`` for scripts and the console alike.

Sign-in always issues a fresh session id (a session id the client already had is never
reused: no session fixation), sets it as an HttpOnly, SameSite=Strict cookie — Secure when
served over TLS — and returns the CSRF token the console sends back on every change.
Failed sign-ins are throttled per name and per address.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response, delete, get, post
from litestar.datastructures import Cookie

from alarmdesk.domain.errors import Unauthenticated
from alarmdesk.domain.signal import check_text, decode
from alarmdesk.safeguards.access import Permission, Principal
from alarmdesk.service import accounts
from alarmdesk.web.api.common import needs, read_body, services
from alarmdesk.web.api.schemas import AUTH, SessionOut, SignedOut, UserOut, WhoAmI, body, errors
from alarmdesk.web.auth import (
    SESSION_COOKIE,
    Authenticator,
    LoginThrottle,
    credential_of,
    principal_of,
)


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


_login_decoder = msgspec.json.Decoder(LoginIn)


def principal_json(p: Principal) -> dict[str, Any]:
    return {"id": p.id, "name": p.name, "role": p.role.value, "desks": sorted(p.desks)}


def user_out(p: Principal) -> UserOut:
    return UserOut(id=p.id, name=p.name, role=p.role.value, desks=sorted(p.desks))


def session_cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    secure = request.app.state.cookie_secure
    if secure is None:  # auto: Secure whenever the request came over TLS
        secure = request.url.scheme == "https"
    return Cookie(
        key=SESSION_COOKIE,
        value=value,
        httponly=True,
        samesite="strict",
        secure=bool(secure),
        path="/",
        max_age=max_age,
    )


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


async def sign_in(
    request: Request[Any, Any, Any], name: str, password: str
) -> tuple[str, accounts.Session]:
    """Checks the password (throttled) and opens a new session: (secret, session).

    The session and its audit entry commit in one transaction (``service/accounts.sign_in``
    run by the writer): if the entry cannot be stored, no session is opened.
    """
    svc = services(request)
    throttle: LoginThrottle = request.app.state.login_throttle
    authn: Authenticator = request.app.state.authenticator
    address = _address(request) or "unknown"
    throttle.check(name, address)
    principal = await anyio.to_thread.run_sync(accounts.check_password, svc.engine, name, password)
    if principal is None:
        throttle.failed(name, address)
        raise Unauthenticated("wrong name or password")
    throttle.succeeded(name, address)
    opened: tuple[str, accounts.Session] = await svc.writer.run(
        accounts.sign_in(principal, authn.session_lifetime, _address(request))
    )
    return opened


async def sign_out(request: Request[Any, Any, Any]) -> None:
    """Ends the session the request came with (its entry committed with it), and ends that
    session's open event streams at once."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return
    svc = services(request)
    authn: Authenticator = request.app.state.authenticator
    principal = request.scope.get("principal")
    if request.scope.get("auth_kind") != "session" or not isinstance(principal, Principal):
        principal = None  # a cookie that named no live session: nothing to record
    await svc.writer.run(accounts.sign_out(secret, principal, _address(request)))
    authn.forget_session(secret)
    if principal is not None:
        svc.hub.end(credential_of(principal))


@post(
    "/api/v1/session",
    status_code=200,
    opt={"public": True},
    dependencies=body(LoginIn),
    responses=errors(400, 401, 408, 413, 422, 429, 503),
    summary="Sign in (sets the session cookie; returns the CSRF token)",
)
async def login(request: Request[Any, Any, Any]) -> Response[SessionOut]:
    creds: LoginIn = decode(_login_decoder, await read_body(request, 4096))
    check_text(creds.name, "name")
    check_text(creds.password, "password")
    await sign_out(request)  # a session the client came with is ended, never upgraded
    secret, sess = await sign_in(request, creds.name, creds.password)
    lifetime = int((sess.expires_at - services(request).clock()).total_seconds())
    return Response(
        SessionOut(user=user_out(sess.principal), csrf_token=sess.csrf_token),
        cookies=[session_cookie(request, secret, lifetime)],
    )


@get(
    "/api/v1/session",
    opt=needs(Permission.SELF),
    responses=errors(*AUTH),
    summary="Who am I",
)
async def whoami(request: Request[Any, Any, Any]) -> WhoAmI:
    return WhoAmI(user=user_out(principal_of(request)))


@delete(
    "/api/v1/session",
    status_code=200,
    opt=needs(Permission.SELF),
    responses=errors(*AUTH, 503),
    summary="Sign out (ends the session and its open event streams)",
)
async def logout(request: Request[Any, Any, Any]) -> Response[SignedOut]:
    await sign_out(request)
    return Response(SignedOut(signed_out=True), cookies=[session_cookie(request, "", 0)])


ROUTES = [login, whoami, logout]
