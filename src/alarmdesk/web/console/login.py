"""Signing in and out of the console.

The sign-in form is protected by a signed double-submit token: ``GET /login`` sets a random
nonce in an HttpOnly, SameSite=Strict cookie and puts HMAC(secret, nonce) in the form;
``POST /login`` accepts only a form whose token matches the cookie it came with. After
signing in, each role lands on its own start page (``render.start_page``) unless the sign-in
page was asked for with ``next``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect

from alarmdesk.domain.errors import InvalidField, TooManyAttempts, Unauthenticated
from alarmdesk.safeguards.access import Permission, Principal
from alarmdesk.web import session as web_session
from alarmdesk.web.api import needs, read_body, services
from alarmdesk.web.console.render import render, start_page
from alarmdesk.web.errors import audit_denial

LOGIN_COOKIE: Final = "alarmdesk_login"
FORM_LIMIT: Final = 16 * 1024


async def read_form(request: Request[Any, Any, Any]) -> dict[str, str]:
    """A url-encoded form of at most FORM_LIMIT bytes, one value per field."""
    body = await read_body(request, FORM_LIMIT)
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise InvalidField("the form could not be read", code="malformed_form") from None
    return {k: v[0] for k, v in parsed.items()}


def _login_secret(request: Request[Any, Any, Any]) -> bytes:
    state = request.app.state
    secret = state.get("console_login_secret")
    if not isinstance(secret, bytes):
        secret = secrets.token_bytes(32)
        state["console_login_secret"] = secret
    return secret


def _login_token(request: Request[Any, Any, Any], nonce: str) -> str:
    return hmac.new(_login_secret(request), nonce.encode(), hashlib.sha256).hexdigest()


def safe_next(value: str | None) -> str | None:
    """Only a path on this site (never //host or a scheme): no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def _cookie(request: Request[Any, Any, Any], key: str, value: str, max_age: int) -> Cookie:
    secure = request.app.state.cookie_secure
    if secure is None:
        secure = request.url.scheme == "https"
    return Cookie(
        key=key,
        value=value,
        httponly=True,
        samesite="strict",
        secure=bool(secure),
        path="/login",
        max_age=max_age,
    )


def _login_page(
    request: Request[Any, Any, Any],
    *,
    next_path: str,
    name: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response[str]:
    nonce = secrets.token_urlsafe(24)
    return render(
        request,
        "login.html",
        status_code=status_code,
        cookies=[_cookie(request, LOGIN_COOKIE, nonce, 3600)],
        form_token=_login_token(request, nonce),
        next_path=next_path,
        name=name,
        error=error,
    )


@get("/login", opt={"public": True}, include_in_schema=False)
async def login_page(request: Request[Any, Any, Any]) -> Response[Any]:
    next_path = safe_next(request.query_params.get("next"))
    who = request.scope.get("principal")
    if isinstance(who, Principal):
        return Redirect(next_path or start_page(who))
    return _login_page(request, next_path=next_path or "")


@post("/login", opt={"public": True}, include_in_schema=False, status_code=303)
async def login_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await read_form(request)
    next_path = safe_next(form.get("next"))
    name = form.get("name", "").strip()[:64]
    nonce = request.cookies.get(LOGIN_COOKIE) or ""
    sent = form.get("form_token", "")
    if not nonce or not hmac.compare_digest(sent.encode(), _login_token(request, nonce).encode()):
        return _login_page(
            request,
            next_path=next_path or "",
            name=name,
            error="The sign-in form expired or did not come from this page. Please try again.",
            status_code=403,
        )
    password = form.get("password", "")
    if not name or not password or len(password) > 1024:
        return _login_page(
            request,
            next_path=next_path or "",
            name=name,
            error="Enter your name and password.",
            status_code=422,
        )
    await web_session.sign_out(request)  # a session the browser came with is ended
    try:
        secret, sess = await web_session.sign_in(request, name, password)
    except TooManyAttempts as exc:
        await audit_denial(exc, request.scope)
        return _login_page(
            request, next_path=next_path or "", name=name, error=exc.message, status_code=429
        )
    except Unauthenticated as exc:
        await audit_denial(exc, request.scope)
        return _login_page(
            request,
            next_path=next_path or "",
            name=name,
            error="Wrong name or password.",
            status_code=401,
        )
    lifetime = int((sess.expires_at - services(request).clock()).total_seconds())
    return Redirect(
        next_path or start_page(sess.principal),
        status_code=303,
        cookies=[
            web_session.session_cookie(request, secret, lifetime),
            _cookie(request, LOGIN_COOKIE, "", 0),
        ],
    )


@post("/logout", opt=needs(Permission.SELF), include_in_schema=False, status_code=200)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    await web_session.sign_out(request)
    return Response(
        "",
        headers={"HX-Redirect": "/login"},
        cookies=[web_session.session_cookie(request, "", 0)],
    )


ROUTES: Final = [login_page, login_submit, logout]
