"""The live event stream over Server-Sent Events: ``GET /api/v1/stream``."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import Stream

from alarmdesk.domain.errors import InvalidField
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.web.api.common import MAX_ID, actor_of, audit, desk_filter, needs, services
from alarmdesk.web.api.schemas import AUTH, responses
from alarmdesk.web.auth import principal_of
from alarmdesk.web.stream import event_stream


@get(
    "/api/v1/stream",
    opt=needs(Permission.INCIDENT_READ),
    responses=responses(
        200,
        str,
        *AUTH,
        422,
        description="The event stream; it ends when the credential does",
        media_type="text/event-stream",
    ),
    summary="Live events of your desks (Server-Sent Events)",
    description="Events incident.opened, incident.updated, incident.transitioned, "
    "incident.units_assigned, incident.noted, incident.reclassified, incident.verified, with "
    "monotonic ids. "
    "Reconnect with the Last-Event-ID header (or last_event_id) to receive what was missed.",
)
async def stream(
    request: Request[Any, Any, Any],
    desk: Annotated[list[str] | None, QueryParameter()] = None,
    last_event_id: Annotated[int | None, QueryParameter(ge=0, le=MAX_ID)] = None,
) -> Stream:
    desks = desk_filter(principal_of(request), desk)
    header = request.headers.get("last-event-id")
    if header is not None:
        if not header.strip().isdigit() or int(header) > MAX_ID:
            raise InvalidField(
                "Last-Event-ID must be a whole number",
                field="Last-Event-ID",
                code="invalid_value",
            )
        last_event_id = int(header)
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONSULT,
            "stream",
            "",
            detail={"desks": list(desks or ()), "replay_from": last_event_id},
        ),
    )
    return Stream(
        event_stream(services(request), desks, last_event_id, scope=request.scope),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ROUTES = [stream]
