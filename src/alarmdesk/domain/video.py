"""Video verification: which camera images an incident can show, and the one request to
Frigate's HTTP API that fetches each, never with an overlay. Pure: no I/O, no clock.

An incident shows, per signal:

- a Frigate event (a camera alarm): the event's snapshot and clip, by its event id;
- a panel (or sensor) zone whose set-up links a camera (``zones: {"3": {camera: cam-1}}``):
  that camera's recorded frame at the alarm's time and its recording around it.

What is never asked for: Frigate draws bounding boxes with their labels (and a sub label —
a face-recognition name, a plate — beside them), timestamps, zones, masks and motion boxes
only when asked to, or, for ``snapshot.jpg`` of a finished event before Frigate 0.16, as the
camera's snapshot settings say. Every request here names its path and at most the three
parameters that turn the overlays off (``bbox=0``, ``timestamp=0``, ``crop=0``); recordings
carry none. Frigate's live views, thumbnails, review previews and anything with ``label`` or
``sub_label`` in its path are never requested.

A signal's media expire with the ``media`` retention class, counted from when the signal was
received; a signal whose media references were erased by the retention job shows none either.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal

__all__ = [
    "NO_OVERLAY",
    "SNAPSHOT_STYLES",
    "Media",
    "VideoSettings",
    "media_of",
]

MediaKind = Literal["snapshot", "clip"]
Origin = Literal["event", "zone"]

# Frigate's query parameters that turn its overlays off; the only ones alarmdesk ever sends.
NO_OVERLAY: Final = (("bbox", "0"), ("timestamp", "0"), ("crop", "0"))
# How an event's snapshot is asked for → (file name, query, content type).
SNAPSHOT_STYLES: Final[dict[str, tuple[str, tuple[tuple[str, str], ...], str]]] = {
    "snapshot.jpg": ("snapshot.jpg", NO_OVERLAY, "image/jpeg"),
    "snapshot-clean.webp": ("snapshot-clean.webp", (), "image/webp"),
    "snapshot-clean.png": ("snapshot-clean.png", (), "image/png"),
}
# Frigate's event ids ("1607123955.475377-mxklsc") and camera names ([a-zA-Z0-9_-]): anything
# else is not put into a path.
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ERASED = "retention_erased"  # store/retention.ERASED_KEY: the classes erased from a payload


@dataclass(frozen=True, slots=True)
class VideoSettings:
    """What a deployment decides about fetching video ([intake] frigate_*)."""

    snapshot: str = "snapshot.jpg"  # a key of SNAPSHOT_STYLES
    clip_before: timedelta = timedelta(seconds=10)
    clip_after: timedelta = timedelta(seconds=30)
    media_days: int = 30  # the media retention class


@dataclass(frozen=True, slots=True)
class Media:
    """One image or clip an incident can show.

    Attributes:
        n: its number on the incident (1, 2, ...), stable while the signals stay.
        kind: ``snapshot`` or ``clip``.
        signal_id: the signal it belongs to (its retention is that signal's).
        camera: the camera's name in Frigate.
        origin: ``event`` (the camera's own alarm) or ``zone`` (a panel zone's camera).
        at: the time it shows (the event's start, the alarm's time).
        expires_at: when the media retention class ends for it.
        erased: the retention job erased its references.
        path: the Frigate API path ("" when erased).
        query: the query parameters (only :data:`NO_OVERLAY` ones).
        content_type: what Frigate answers with.
    """

    n: int
    kind: MediaKind
    signal_id: int
    camera: str
    origin: Origin
    at: datetime
    expires_at: datetime
    erased: bool
    path: str
    query: tuple[tuple[str, str], ...]
    content_type: str

    def expired(self, now: datetime) -> bool:
        return self.erased or now >= self.expires_at


# (source id, zone) -> the Frigate name of the camera linked to that zone, or None.
ZoneCamera = Callable[[str, str], str | None]


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _is_event(payload: Mapping[str, Any]) -> bool:
    """A Frigate tracked-object signal (intake/frigate.py); review alerts carry ``severity``."""
    return "frigate" in payload and "label" in payload and "severity" not in payload


def _epoch(at: datetime) -> str:
    return f"{at.timestamp():.3f}".rstrip("0").rstrip(".")


def media_of(
    signals: Iterable[Mapping[str, Any]], zone_camera: ZoneCamera, settings: VideoSettings
) -> list[Media]:
    """The media an incident's signals (as ``store.repository.get_incident`` lists them) can
    show, in signal order, snapshot before clip; an event or an alarm time shown once.
    """
    name, query, snapshot_type = SNAPSHOT_STYLES[settings.snapshot]
    keep = timedelta(days=settings.media_days)
    out: list[Media] = []
    seen: set[tuple[str, str]] = set()

    def add(
        kind: MediaKind,
        s: Mapping[str, Any],
        camera: str,
        origin: Origin,
        at: datetime,
        erased: bool,
        path: str,
        q: tuple[tuple[str, str], ...],
        ctype: str,
    ) -> None:
        out.append(
            Media(
                n=len(out) + 1,
                kind=kind,
                signal_id=int(s["id"]),
                camera=camera,
                origin=origin,
                at=at,
                expires_at=_time(s["received_at"]) + keep,
                erased=erased,
                path="" if erased else path,
                query=() if erased else q,
                content_type=ctype,
            )
        )

    events: dict[str, tuple[Mapping[str, Any], bool, bool]] = {}
    for s in signals:
        payload: Mapping[str, Any] = s.get("payload") or {}
        erased = "media" in (payload.get(_ERASED) or ())
        camera = str(payload.get("camera", ""))
        if _is_event(payload):
            event_id = payload.get("event_id")
            if not _SAFE.match(camera):
                continue
            if erased:
                key = f"erased:{s['id']}"
            elif isinstance(event_id, str) and _SAFE.match(event_id):
                key = event_id
            else:
                continue
            first = events.get(key)
            # The end of an event may say a clip exists that its start did not.
            snap = bool(payload.get("has_snapshot")) or (first is not None and first[1])
            clip = bool(payload.get("has_clip")) or (first is not None and first[2])
            events[key] = (first[0] if first else s, snap, clip)
            continue
        if s.get("condition") == "restored":
            continue
        zone = (s.get("location") or {}).get("zone")
        linked = zone_camera(str(s["source_id"]), str(zone)) if zone else None
        if linked is None or not _SAFE.match(linked):
            continue
        at = _time(s["occurred_at"])
        if (linked, _epoch(at)) in seen:
            continue
        seen.add((linked, _epoch(at)))
        base = f"/api/{linked}"
        start = int((at - settings.clip_before).timestamp())
        end = int((at + settings.clip_after).timestamp()) + 1
        snap_path = f"{base}/recordings/{_epoch(at)}/snapshot.jpg"
        add("snapshot", s, linked, "zone", at, erased, snap_path, (), "image/jpeg")
        clip_path = f"{base}/start/{start}/end/{end}/clip.mp4"
        add("clip", s, linked, "zone", at, erased, clip_path, (), "video/mp4")
    for key, (s, snap, clip) in events.items():
        payload = s.get("payload") or {}
        erased = key.startswith("erased:")
        at = _time(payload.get("start_time") or s["occurred_at"])
        camera = str(payload["camera"])
        if snap:
            path = f"/api/events/{key}/{name}"
            add("snapshot", s, camera, "event", at, erased, path, query, snapshot_type)
        if clip:
            path = f"/api/events/{key}/clip.mp4"
            add("clip", s, camera, "event", at, erased, path, (), "video/mp4")
    out.sort(key=lambda m: (m.signal_id, m.kind != "snapshot"))
    return [replace(m, n=i) for i, m in enumerate(out, start=1)]
