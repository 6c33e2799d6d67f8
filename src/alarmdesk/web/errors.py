"""One error shape for every failure: ``{"error": {"code", "message", "field"}}``."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.types import Scope

from alarmdesk.domain.errors import AlarmdeskError, Forbidden, TooManyAttempts, Unauthenticated
from alarmdesk.domain.purpose import ProtectedPurposeError, UnknownCategoryError
from alarmdesk.safeguards.access import Principal
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation, Outcome

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response[Any]:
    return Response(
        {"error": {"code": code, "message": message, "field": field}}, status_code=status
    )


def fields_of(exc: AlarmdeskError) -> tuple[int, str, str, str | None]:
    """Status, code, message and field of an error alarmdesk raises on purpose: what the
    handlers below answer, and the raw ingest route (web/fast_ingest.py) too."""
    if isinstance(exc, ProtectedPurposeError | UnknownCategoryError):
        return 422, exc.code, str(exc), getattr(exc, "field", None)
    return exc.status, exc.code, exc.message, exc.field


UNEXPECTED = "internal error; the request was not applied unless a receipt was returned"


def on_alarmdesk_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, AlarmdeskError)
    response = error_response(*fields_of(exc))
    if isinstance(exc, TooManyAttempts):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def on_protected_purpose(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, ProtectedPurposeError)
    return error_response(*fields_of(exc))


def on_unknown_category(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, UnknownCategoryError)
    return error_response(*fields_of(exc))


# Litestar's words for a required parameter that is not there.
_MISSING = re.compile(r"Missing required (query|path|header|cookie) parameter '([^']*)'")

# Python names of query parameters whose public name differs.
_PUBLIC_NAMES = {"start": "from", "end": "to", "type_code": "type", "fmt": "format"}


def on_validation(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A query or path parameter Litestar could not parse: 422 like any refused value."""
    assert isinstance(exc, ValidationException)
    field = None
    extra = exc.extra
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        field = _PUBLIC_NAMES.get(extra[0].get("key", ""), extra[0].get("key"))
        detail = "; ".join(
            f"{_PUBLIC_NAMES.get(e.get('key', ''), e.get('key'))}: {e.get('message')}"
            for e in extra
        )
    else:
        missing = _MISSING.match(exc.detail)
        if missing:  # Litestar names one missing parameter, and echoes the path and query
            kind, key = missing.groups()
            name = _PUBLIC_NAMES.get(key, key)
            return error_response(
                422, "missing_field", f"{kind} parameter {name} is required", name
            )
        detail = exc.detail
    return error_response(422, "invalid_value", detail, field)


def on_http(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    response = error_response(exc.status_code, code, exc.detail)
    response.headers.update(exc.headers or {})
    return response


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", UNEXPECTED)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    AlarmdeskError: on_alarmdesk_error,
    ProtectedPurposeError: on_protected_purpose,
    UnknownCategoryError: on_unknown_category,
    ValidationException: on_validation,
    NotFoundException: on_http,
    HTTPException: on_http,
    Exception: on_unexpected,
}


async def audit_denial(exc: Exception, scope: Scope) -> None:
    """Every refusal (401, 403, 429) leaves an audit entry, like every access."""
    if not isinstance(exc, Unauthenticated | Forbidden | TooManyAttempts):
        return
    app = scope.get("app")
    svc = getattr(getattr(app, "state", None), "services", None)
    if svc is None or not svc.writer.serving:
        return
    principal = scope.get("principal")
    client = scope.get("client")
    address = client[0] if client else ""
    if isinstance(principal, Principal):
        actor = Actor.of(principal, address)
    else:
        actor = Actor("anonymous", "none", "", address)
    method = scope.get("method", "GET")
    if isinstance(exc, Forbidden):
        op = Operation.CONSULT if method in ("GET", "HEAD") else Operation.ALTER
    else:
        op = Operation.AUTHENTICATE
    try:
        await svc.writer.submit_audit(
            [
                AuditEvent(
                    actor,
                    op,
                    "route",
                    f"{method} {scope.get('path', '')}",
                    Outcome.DENIED,
                    exc.code,
                )
            ]
        )
    except Exception:
        log.exception("could not audit a denial")
