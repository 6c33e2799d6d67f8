"""Video on incidents: the images and clips an incident can show, with the set-up's links
from panel zones to cameras, and the fetch of one of them from Frigate.

Which media and the requests for them are ``domain/video.py`` (pure); the HTTP fetch is
``intake/frigate_api.py``. Nothing is stored: bytes go from Frigate to the operator's browser
(``Cache-Control: no-store``). Each list and each view is audited by the caller (the web
route), in the audit log's transaction, before anything is disclosed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.errors import Gone, NotFound
from alarmdesk.domain.video import Media, VideoSettings, media_of
from alarmdesk.intake.devices import Device, device_from_row
from alarmdesk.intake.frigate_api import Fetched, fetch
from alarmdesk.intake.types import IntakeConfig
from alarmdesk.store import repository as repo

__all__ = ["Fetched", "incident_media", "open_media", "pick", "video_settings"]


def video_settings(intake: IntakeConfig, media_days: int) -> VideoSettings:
    return VideoSettings(
        snapshot=intake.frigate_snapshot,
        clip_before=timedelta(seconds=intake.frigate_clip_before_seconds),
        clip_after=timedelta(seconds=intake.frigate_clip_after_seconds),
        media_days=media_days,
    )


def incident_media(
    engine: sa.Engine, incident: Mapping[str, Any], settings: VideoSettings
) -> list[Media]:
    """What the incident (as ``queries.get_incident`` gives it) can show: its camera events,
    and the cameras the set-up links to the zones of its panel signals."""
    signals = incident["signals"]
    sources = {s["source_id"] for s in signals if (s.get("location") or {}).get("zone")}
    devices: dict[str, Device] = {}
    with engine.connect() as conn:
        devices = {r["id"]: device_from_row(r) for r in repo.device_rows(conn, sources)}
        linked = {z.camera for d in devices.values() for z in d.zones.values() if z.camera}
        for r in repo.device_rows(conn, linked - devices.keys()):
            devices[r["id"]] = device_from_row(r)

    def zone_camera(source_id: str, zone: str) -> str | None:
        device = devices.get(source_id)
        z = device.zone(zone) if device is not None else None
        camera = devices.get(z.camera) if z is not None and z.camera else None
        return camera.camera if camera is not None and camera.kind == "camera" else None

    return media_of(signals, zone_camera, settings)


def pick(media: list[Media], n: int, now: datetime) -> Media:
    """Media ``n`` of an incident, if it may still be shown.

    Raises:
        NotFound: no such media on the incident.
        Gone: ``media_expired``: its retention period passed, or its references were erased.
    """
    if not 1 <= n <= len(media):
        raise NotFound(f"the incident has no media {n}", field="n")
    item = media[n - 1]
    if item.expired(now):
        raise Gone(
            f"media {n} of signal {item.signal_id} is past the media retention period",
            field="n",
            code="media_expired",
        )
    return item


async def open_media(intake: IntakeConfig, item: Media) -> Fetched:
    """Opens the media's request to Frigate (headers read; stream the body, then it closes).

    Raises:
        NotFound: ``video_off`` when no ``frigate_url`` is configured; ``media_not_found``.
        BadGateway: Frigate down (``frigate_unavailable``), its error, a too large answer.
    """
    if not intake.frigate_url:
        raise NotFound("video is off: no [intake] frigate_url is configured", code="video_off")
    return await fetch(
        intake.frigate_url,
        item.path,
        item.query,
        expect=item.content_type,
        timeout_seconds=intake.frigate_timeout_seconds,
        max_bytes=intake.frigate_max_bytes,
    )
