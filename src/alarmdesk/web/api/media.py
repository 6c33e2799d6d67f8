"""Video verification: an incident's camera snapshots and clips, fetched from Frigate through
alarmdesk (docs/video.md). Visible to whoever may read the incident; each list and each view
is one audit entry; nothing is cached (``Cache-Control: no-store``)."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
from litestar import Request, get
from litestar.params import FromPath
from litestar.response import Stream

from alarmdesk.domain.video import Media
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.service import media
from alarmdesk.web.api.common import actor_of, audit, needs, services
from alarmdesk.web.api.incidents import load_incident
from alarmdesk.web.api.schemas import AUTH, MediaList, responses

NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def media_url(incident_id: int, n: int) -> str:
    return f"/api/v1/incidents/{incident_id}/media/{n}"


def media_view(incident_id: int, item: Media, now: Any) -> dict[str, Any]:
    available = not item.expired(now)
    return {
        "n": item.n,
        "kind": item.kind,
        "signal_id": item.signal_id,
        "camera": item.camera,
        "origin": item.origin,
        "at": item.at.isoformat(),
        "expires_at": item.expires_at.isoformat(),
        "available": available,
        "content_type": item.content_type,
        "url": media_url(incident_id, item.n) if available else None,
    }


def list_of(request: Request[Any, Any, Any], incident_id: int) -> tuple[bool, list[Media]]:
    """The caller's incident (404/403 as for the incident itself) and its media; none when
    video is off. Runs in a worker thread."""
    return media_for(request, load_incident(request, incident_id))


def media_for(
    request: Request[Any, Any, Any], incident: dict[str, Any]
) -> tuple[bool, list[Media]]:
    """Whether video is on, and the media of an incident the caller may read (worker thread)."""
    svc = services(request)
    intake = svc.config.intake
    if not intake.frigate_url:
        return False, []
    settings = media.video_settings(intake, svc.config.retention.media_days)
    return True, media.incident_media(svc.engine, incident, settings)


def audit_media(
    request: Request[Any, Any, Any], incident_id: int, detail: dict[str, Any]
) -> AuditEvent:
    return AuditEvent(
        actor_of(request), Operation.CONSULT, "incident", str(incident_id), detail=detail
    )


@get(
    "/api/v1/incidents/{incident_id:int}/media",
    opt=needs(Permission.INCIDENT_READ),
    responses=responses(200, MediaList, *AUTH, 404, 422),
    summary="The camera snapshots and clips an incident can show (video verification)",
    description="Per camera alarm its Frigate event's snapshot and clip; per panel zone the "
    "set-up links to a camera, that camera's recorded frame at the alarm's time and its "
    "recording around it. `available` is false once the media retention class has passed "
    "for the signal. `enabled` is false when no Frigate is configured. Audited.",
)
async def list_media(request: Request[Any, Any, Any], incident_id: FromPath[int]) -> MediaList:
    enabled, items = await anyio.to_thread.run_sync(list_of, request, incident_id)
    await audit(request, audit_media(request, incident_id, {"media": "list", "items": len(items)}))
    now = services(request).clock()
    return msgspec.convert(
        {"enabled": enabled, "items": [media_view(incident_id, m, now) for m in items]},
        MediaList,
    )


@get(
    "/api/v1/incidents/{incident_id:int}/media/{n:int}",
    opt=needs(Permission.INCIDENT_READ),
    responses=responses(
        200,
        bytes,
        *AUTH,
        404,
        410,
        422,
        502,
        description="The image (image/jpeg, image/webp, image/png) or clip (video/mp4)",
        media_type="application/octet-stream",
    ),
    summary="One snapshot or clip of an incident, fetched from Frigate without overlays",
    description="Streams the bytes from Frigate; stores no copy (`Cache-Control: no-store`). "
    "Every view is an audit entry. 404 `not_found` (no such media), `media_not_found` (Frigate "
    "no longer has it), `video_off`; 410 `media_expired` past the media retention class; 502 "
    "`frigate_unavailable`, `frigate_error`, `media_too_large`.",
)
async def get_media(
    request: Request[Any, Any, Any], incident_id: FromPath[int], n: FromPath[int]
) -> Stream:
    svc = services(request)
    _, items = await anyio.to_thread.run_sync(list_of, request, incident_id)
    item = media.pick(items, n, svc.clock())
    upstream = await media.open_media(svc.config.intake, item)
    try:
        detail = {
            "media": item.n,
            "kind": item.kind,
            "signal_id": item.signal_id,
            "camera": item.camera,
            "origin": item.origin,
        }
        await audit(request, audit_media(request, incident_id, detail))
    except BaseException:
        await upstream.close()
        raise
    headers = dict(NO_STORE)
    if upstream.length is not None:
        headers["Content-Length"] = str(upstream.length)
    return Stream(upstream.chunks(), media_type=item.content_type, headers=headers)


ROUTES = [list_media, get_media]
