"""The live stream of one incident, for the incident page (htmx's SSE extension): the desk
stream filtered to that incident with ``bus/sse.only_incident``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

import anyio
from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Stream

from alarmdesk.bus.sse import only_incident
from alarmdesk.safeguards.access import Permission, visible_desks
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.web.api import actor_of, audit, load_incident, needs, services
from alarmdesk.web.console.settings import principal
from alarmdesk.web.stream import event_stream


@get(
    "/incidents/{incident_id:int}/events",
    opt=needs(Permission.INCIDENT_READ),
    include_in_schema=False,
)
async def incident_events(request: Request[Any, Any, Any], incident_id: FromPath[int]) -> Stream:
    """A ``changed`` event (its data the event type) each time the incident changes; the
    page then reloads its panel. 404 / 403 outside the caller's desks, like the page."""
    svc = services(request)
    who = principal(request)
    await anyio.to_thread.run_sync(load_incident, request, incident_id)
    desks = visible_desks(who, None)
    header = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    last_id = int(header) if header and header.isdigit() else None
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONSULT,
            "stream",
            "",
            detail={"desks": list(desks or ()), "replay_from": last_id, "incident": incident_id},
        ),
    )

    async def frames() -> AsyncIterator[bytes]:
        async for chunk in event_stream(svc, desks, last_id):
            if out := only_incident(chunk, incident_id):
                yield out

    return Stream(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ROUTES: Final = [incident_events]
