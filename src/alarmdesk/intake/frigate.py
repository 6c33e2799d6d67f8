"""Frigate NVR messages → signals, with minimisation. Pure: no I/O, no clock.

Topics (``<prefix>`` is ``frigate`` by default):

- ``<prefix>/events`` (``type`` new / update / end, ``before`` / ``after``): a tracked object.
  An object whose label the deployment maps to an incident type raises a signal when it
  appears (camera-wide) or when it enters one of the camera's ``alarm_zones``; labels that
  alarm ``anywhere`` (fire, smoke) raise camera-wide whatever the zones; ``end`` restores
  it (device condition ``restored``; the incident stays open for the operator). The
  default map is ``data/frigate_labels.tsv``; labels that are not mapped are not stored at
  all, and labels that identify a person (faces, plates, sub_label names) cannot be mapped.
- ``<prefix>/reviews``: Frigate's review items; used instead of events when a deployment
  sets ``alarm_source = "reviews"`` (then ``severity: alert`` raises, ``end`` restores).
- ``<prefix>/tracked_object_update``: never stored (face names, plates, generated
  descriptions of people: nothing an alarm needs).
- ``<prefix>/available``: handled by the MQTT adapter (supervision), see :func:`availability`.

What never enters (docs/architecture.md): a signal is built from an allow-list — label, camera,
zones, times, scores, a snapshot reference. ``sub_label`` (face-recognition names, or other
identities), face attributes and the plate text are never copied; the plate only when the
deployment enables plates for the signal's incident type. The generic minimisation step
(:mod:`alarmdesk.safeguards.minimise`) then runs over the result as every adapter's does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import msgspec

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import ConfigError
from alarmdesk.domain.signal import Location, SignalIn, SourceKind
from alarmdesk.domain.taxonomy import Taxonomy
from alarmdesk.intake.devices import Device, DeviceRegistry
from alarmdesk.intake.types import IntakeConfig
from alarmdesk.safeguards.minimise import minimise
from alarmdesk.safeguards.special_category import is_special

AlarmSource = Literal["events", "reviews"]


@dataclass(frozen=True, slots=True)
class FrigateSettings:
    """What a deployment decides about Frigate.

    Attributes:
        prefix: Frigate's MQTT topic prefix.
        labels: object label → incident type code (a camera's ``labels`` setting overrides).
        plates_enabled_types: incident types whose signals may keep the plate text.
        alarm_source: raise from tracked objects (``events``) or review alerts (``reviews``).
        anywhere: labels that alarm anywhere in view, whatever a camera's alarm zones.
    """

    prefix: str = "frigate"
    labels: Mapping[str, str] = field(default_factory=dict)
    plates_enabled_types: frozenset[str] = frozenset()
    alarm_source: AlarmSource = "events"
    anywhere: frozenset[str] = frozenset()


def settings_from(cfg: IntakeConfig) -> FrigateSettings | None:
    """The Frigate settings of the ``[intake]`` table; ``None`` when Frigate is off."""
    if not cfg.frigate_topic_prefix:
        return None
    return FrigateSettings(
        prefix=cfg.frigate_topic_prefix,
        labels={k: v.upper() for k, v in cfg.frigate_labels.items()},
        plates_enabled_types=frozenset(t.upper() for t in cfg.plates_enabled_types),
        alarm_source=cfg.frigate_alarm_source,
        anywhere=frozenset(cfg.frigate_labels_anywhere),
    )


# A plate is kept only where the vehicle is itself part of the harm: a stolen or damaged
# vehicle, a collision, a carjacking or an abduction. Never for fires, medical calls, hazards,
# public-service calls or device faults, where a plate would only be a log of who drove past.
PLATE_CATEGORIES: Final = frozenset(
    {HarmCategory.PROPERTY, HarmCategory.TRAFFIC, HarmCategory.VIOLENCE}
)


def check_plate_types(codes: Iterable[str], taxonomy: Taxonomy) -> None:
    """Refuses ``plates_enabled_types`` that name a type the taxonomy lacks, or a type whose
    harm does not involve a vehicle's identity (:data:`PLATE_CATEGORIES`).

    Raises:
        ConfigError: naming the type and why (start-up stops: docs/safeguards.md).
    """
    for code in codes:
        found = taxonomy.get(code.upper())
        if found is None:
            raise ConfigError(
                f"[intake] plates_enabled_types: no incident type {code.upper()}",
                field="plates_enabled_types",
            )
        if found.category not in PLATE_CATEGORIES:
            raise ConfigError(
                f"[intake] plates_enabled_types: {found.code} is a {found.category.value} type; "
                "plates are kept only for property, traffic and violence types, where the "
                "vehicle is part of the harm (docs/safeguards.md)",
                field="plates_enabled_types",
            )


@dataclass(frozen=True, slots=True)
class Converted:
    """What one message gives: signals to store, and what was left out.

    Attributes:
        signals: to store (maybe none).
        dropped: identities, face data and plates left out of the signals (a count only).
        skipped: why nothing was stored, for metrics (``unmapped_label``, ``malformed``...).
    """

    signals: list[SignalIn] = field(default_factory=list)
    dropped: int = 0
    skipped: str | None = None


_decoder = msgspec.json.Decoder()


def convert(
    topic: str, payload: bytes, registry: DeviceRegistry, settings: FrigateSettings
) -> Converted:
    """The signals of one Frigate message (``topic`` without the prefix: ``events``...).

    Never raises: a message that cannot be read gives ``skipped="malformed"``.
    """
    try:
        message = _decoder.decode(payload)
    except (msgspec.DecodeError, RecursionError):  # msgspec bounds the depth it decodes
        return Converted(skipped="malformed")
    if not isinstance(message, dict):
        return Converted(skipped="malformed")
    try:
        if topic == "events":
            if settings.alarm_source != "events":
                return Converted(skipped="not_alarm_source")
            return from_event(message, registry, settings)
        if topic == "reviews":
            if settings.alarm_source != "reviews":
                return Converted(skipped="not_alarm_source")
            return from_review(message, registry, settings)
        if topic == "tracked_object_update":
            return from_tracked_object_update(message)
    except (KeyError, TypeError, ValueError, AttributeError):
        return Converted(skipped="malformed")
    return Converted(skipped="unknown_topic")


def availability(payload: bytes) -> bool | None:
    """``online`` → True, ``offline`` (Frigate's last will) → False, anything else None."""
    text = payload.strip().decode("utf-8", "replace").lower()
    return {"online": True, "offline": False}.get(text)


def from_tracked_object_update(message: Mapping[str, Any]) -> Converted:
    """Never stored: face names, plates, descriptions. Counted as dropped when they carry them."""
    sensitive = message.get("type") in ("face", "lpr") or bool(message.get("name"))
    return Converted(dropped=1 if sensitive else 0, skipped="tracked_object_update")


# ---------------------------------------------------------------------------- events


def from_event(
    message: Mapping[str, Any], registry: DeviceRegistry, settings: FrigateSettings
) -> Converted:
    kind = message["type"]
    after: Mapping[str, Any] = message["after"]
    before: Mapping[str, Any] = message.get("before") or {}
    dropped = _sensitive_fields(after)
    if kind not in ("new", "update", "end"):
        return Converted(dropped=dropped, skipped="unknown_type")
    if after.get("false_positive"):
        return Converted(dropped=dropped, skipped="false_positive")
    camera = str(after["camera"])
    label = str(after["label"])
    device = registry.camera(camera)
    type_code = _type_for(label, device, settings)
    if type_code is None:
        return Converted(dropped=dropped, skipped="unmapped_label")
    entered = _names(after.get("entered_zones"))
    zones: list[str | None] | None = (
        [None] if label in settings.anywhere else _alarm_zones(entered, device)
    )
    if zones is None:
        return Converted(dropped=dropped, skipped="outside_alarm_zones")
    event_id = str(after["id"])
    if kind in ("new", "end"):
        todo = zones
    else:  # an update raises only for a zone entered since the last message
        seen = set(_names(before.get("entered_zones")))
        todo = [z for z in zones if z is not None and z not in seen]
    start = _time(after.get("start_time"))
    if start is None:
        return Converted(dropped=dropped, skipped="malformed")
    signals: list[SignalIn] = []
    for zone in todo:
        restore = kind == "end"
        at = (
            (_time(after.get("end_time")) or _time(after.get("frame_time")) or start)
            if (restore)
            else start
        )
        payload: dict[str, Any] = {
            "label": label,
            "camera": camera,
            "event_id": event_id,
            "zones": entered,
            "current_zones": _names(after.get("current_zones")),
            "score": _number(after.get("score")),
            "top_score": _number(after.get("top_score")),
            "start_time": start.isoformat(),
            "end_time": _iso(after.get("end_time")),
            "has_snapshot": bool(after.get("has_snapshot")),
            "has_clip": bool(after.get("has_clip")),
            "frigate": settings.prefix,
        }
        if after.get("has_snapshot"):
            payload["snapshot_ref"] = f"/api/events/{event_id}/snapshot.jpg"
        plate = after.get("recognized_license_plate")
        if plate and type_code in settings.plates_enabled_types:
            payload["plate"] = str(plate)[:32]
            payload["plate_score"] = _number(after.get("recognized_license_plate_score"))
        where = f" in zone {zone}" if zone else ""
        signals.append(
            _signal(
                device=device,
                camera=camera,
                type_code=type_code,
                at=at,
                zone=zone,
                summary=f"{label} detected{where}, camera {camera}",
                key=f"frigate:{event_id}:{zone or '*'}" + (":end" if restore else ""),
                payload=payload,
                restore=restore,
            )
        )
    return _finish(signals, dropped)


# --------------------------------------------------------------------------- reviews


def from_review(
    message: Mapping[str, Any], registry: DeviceRegistry, settings: FrigateSettings
) -> Converted:
    kind = message["type"]
    after: Mapping[str, Any] = message["after"]
    before: Mapping[str, Any] = message.get("before") or {}
    data: Mapping[str, Any] = after.get("data") or {}
    dropped = 1 if data.get("sub_labels") else 0
    if kind not in ("new", "update", "end"):
        return Converted(dropped=dropped, skipped="unknown_type")
    if after.get("severity") != "alert":
        return Converted(dropped=dropped, skipped="not_alert")
    camera = str(after["camera"])
    device = registry.camera(camera)
    objects = [o for o in _names(data.get("objects")) if not is_special(o)]
    mapped = [(o, t) for o in objects if (t := _type_for(o, device, settings)) is not None]
    if not mapped:
        return Converted(dropped=dropped, skipped="unmapped_label")
    # A label that alarms anywhere (fire, smoke) goes first: it needs no alarm zone.
    mapped.sort(key=lambda m: m[0] not in settings.anywhere)
    label, type_code = mapped[0]
    review_zones = _names(data.get("zones"))
    zones: list[str | None] | None = (
        [None] if label in settings.anywhere else _alarm_zones(review_zones, device)
    )
    if zones is None:
        return Converted(dropped=dropped, skipped="outside_alarm_zones")
    review_id = str(after["id"])
    if kind == "update":
        was_alert = before.get("severity") == "alert"
        seen = set(_names((before.get("data") or {}).get("zones")))
        zones = [z for z in zones if not was_alert or (z is not None and z not in seen)]
    start = _time(after.get("start_time"))
    if start is None:
        return Converted(dropped=dropped, skipped="malformed")
    restore = kind == "end"
    at = (_time(after.get("end_time")) or start) if restore else start
    signals = []
    for zone in zones:
        payload: dict[str, Any] = {
            "label": label,
            "camera": camera,
            "review_id": review_id,
            "objects": objects,
            "zones": review_zones,
            "severity": "alert",
            "start_time": start.isoformat(),
            "end_time": _iso(after.get("end_time")),
            "frigate": settings.prefix,
        }
        thumb = after.get("thumb_path")
        if isinstance(thumb, str):
            payload["thumb_ref"] = thumb[:300]
        where = f" in zone {zone}" if zone else ""
        signals.append(
            _signal(
                device=device,
                camera=camera,
                type_code=type_code,
                at=at,
                zone=zone,
                summary=f"Review alert: {', '.join(objects)}{where}, camera {camera}",
                key=f"frigate-review:{review_id}:{zone or '*'}" + (":end" if restore else ""),
                payload=payload,
                restore=restore,
            )
        )
    return _finish(signals, dropped)


# --------------------------------------------------------------------------- helpers


def _type_for(label: str, device: Device | None, settings: FrigateSettings) -> str | None:
    if device is not None and label in device.labels:
        return device.labels[label].upper() or None
    code = settings.labels.get(label)
    return code.upper() if code else None


def _alarm_zones(entered: list[str], device: Device | None) -> list[str | None] | None:
    """The zones to raise for: ``[None]`` camera-wide; ``None`` when outside every alarm zone."""
    if device is None or not device.alarm_zones:
        return [None]
    inside: list[str | None] = [z for z in entered if z in device.alarm_zones]
    return inside or None


def _signal(
    *,
    device: Device | None,
    camera: str,
    type_code: str,
    at: datetime,
    zone: str | None,
    summary: str,
    key: str,
    payload: dict[str, Any],
    restore: bool,
) -> SignalIn:
    if device is not None:
        location: Location | None = device.location(zone)
        source_id = device.id
        if device.site:
            summary += f" — {device.site}"
    else:
        location = Location(zone=zone[:64]) if zone else None
        source_id = f"camera-{camera}"
        payload["unknown_camera"] = True
    if len(key) > 200:  # ids are short; a hostile one must not break the key column
        key = "frigate:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    return SignalIn(
        source_kind=SourceKind.EQUIPMENT,
        source_id=source_id[:128],
        type_code=type_code[:32],
        occurred_at=at,
        location=location,
        summary=summary[:1000],
        idempotency_key=key,
        payload={k: v for k, v in payload.items() if v is not None},
        condition="restored" if restore else "active",
        record_only=bool(device is not None and device.test_mode),
    )


def _finish(signals: list[SignalIn], dropped: int) -> Converted:
    out = []
    for s in signals:
        kept, n = minimise(s)
        dropped += n
        out.append(kept)
    return Converted(signals=out, dropped=dropped, skipped=None if out else "nothing_new")


def _sensitive_fields(obj: Mapping[str, Any]) -> int:
    """How many identity, face and plate fields a Frigate object carries (never copied)."""
    n = 0
    if obj.get("sub_label"):
        n += 1
    attributes = obj.get("attributes")
    if isinstance(attributes, Mapping):
        n += sum(1 for k in attributes if is_special(str(k)))
    current = obj.get("current_attributes")
    if isinstance(current, list):
        n += sum(1 for a in current if isinstance(a, Mapping) and is_special(str(a.get("label"))))
    if obj.get("recognized_license_plate"):
        n += 1
    return n


def _names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(v)[:64] for v in value if isinstance(v, str)][:32]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(float(value), 4)


def _time(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _iso(value: Any) -> str | None:
    at = _time(value)
    return at.isoformat() if at is not None else None
