"""What every API route shares: the services, the permission a route needs, a bounded body
reader, the caller as an audit actor, and the audit append that precedes a disclosure."""

from __future__ import annotations

from typing import Any

from litestar import Request

from alarmdesk.bootstrap import Services
from alarmdesk.domain.errors import Forbidden, PayloadTooLarge
from alarmdesk.safeguards.access import Permission, Principal, visible_desks
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.service.queries import IncidentFilter
from alarmdesk.web.auth import principal_of

__all__ = [
    "MAX_ID",
    "actor_of",
    "audit",
    "desk_filter",
    "needs",
    "read_body",
    "services",
]

MAX_ID = 2**63 - 1  # ids are 64-bit in every store


def services(request: Request[Any, Any, Any]) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def needs(permission: Permission) -> dict[str, Any]:
    return {"permission": permission}


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def actor_of(request: Request[Any, Any, Any]) -> Actor:
    address = request.client.host if request.client else ""
    return Actor.of(principal_of(request), address)


async def audit(request: Request[Any, Any, Any], event: AuditEvent) -> None:
    """Appends an audit entry and waits until it is committed (before data is disclosed).
    On a standby (distributed mode) the node appends it itself (``service/standby.py``):
    reading on a standby is logged like anywhere else."""
    await services(request).writer.submit_audit([event])


async def audit_search(
    request: Request[Any, Any, Any],
    results: int,
    flt: IncidentFilter | None = None,
    *,
    justification: str = "",
    **detail: object,
) -> None:
    """A search of incidents (the live queue, a filtered list, the candidates near a place):
    one consult entry with how many were found and by what filter, never what they hold."""
    if flt is not None:
        detail["filter"] = {
            "status": sorted(flt.statuses),
            "desk": list(flt.desks),
            "priority": sorted(flt.priorities),
            "type": sorted(flt.type_codes),
            "from": flt.opened_from.isoformat() if flt.opened_from else None,
            "to": flt.opened_to.isoformat() if flt.opened_to else None,
        }
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONSULT,
            "incidents",
            "",
            justification=justification,
            detail={"results": results, **detail},
        ),
    )


def desk_filter(principal: Principal, asked: list[str] | None) -> tuple[str, ...] | None:
    try:
        return visible_desks(principal, asked)
    except PermissionError as exc:
        raise Forbidden(str(exc), field="desk") from None
