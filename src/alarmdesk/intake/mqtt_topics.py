"""Generic MQTT topics (a sensor's own messages): topic → incident type by configuration,
and the key of a message that has no id of its own. Pure: the client is ``intake/mqtt.py``."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from alarmdesk.domain.errors import MalformedInput
from alarmdesk.domain.signal import Location, SignalIn, SourceKind, validate
from alarmdesk.intake.devices import DeviceRegistry
from alarmdesk.intake.types import TopicMapping
from alarmdesk.safeguards.minimise import minimise

_decoder = msgspec.json.Decoder()

# How long the same bytes on a topic are taken for the broker's redelivery of one message
# (QoS 1 after a reconnect, or our restart) rather than a new alarm. DC-09's resend window.
REDELIVERY_SECONDS: Final = 120
# A key's base is capped so that the arrival stamp after it keeps the key within 200.
_BASE_MAX: Final = 180


class Redeliveries:
    """The keys of messages without an id of their own, by topic and bytes.

    A sensor has no message id when its mapping names no ``id_path``: its key came from the
    bytes alone, so the next alarm in the same bytes (a smoke sensor sends the same
    ``{"state": "alarm"}`` each time) had the first one's key, and was dropped as a resend
    for ever. Now the key is the bytes' digest and the first arrival's time: the same bytes
    within :data:`REDELIVERY_SECONDS` get the same key (a redelivery is answered from the
    store; a real repeat that soon folds into the open incident anyway), later ones a new
    key and a signal of their own. A restart reads the window back from the store
    (:meth:`remember`), as the DC-09 receiver does.
    """

    def __init__(self, seconds: float = REDELIVERY_SECONDS) -> None:
        self.seconds = seconds
        self._keys: dict[str, tuple[str, float]] = {}  # base -> (key, until)

    def key(self, base: str, now: datetime) -> str:
        tick = now.timestamp()
        found = self._keys.get(base)
        if found is not None and found[1] > tick:
            return found[0]
        if len(self._keys) > 10_000:  # bounded by the message rate over the window
            self._keys = {b: k for b, k in self._keys.items() if k[1] > tick}
        key = f"{base}:{int(tick * 1000)}"
        self._keys[base] = (key, tick + self.seconds)
        return key

    def remember(self, key: str, received_at: datetime) -> None:
        """Takes back the key of a signal stored before a restart."""
        base, _, stamp = key.rpartition(":")
        if base.startswith("mqtt:") and stamp.isdigit():
            until = received_at.timestamp() + self.seconds
            found = self._keys.get(base)
            if found is None or found[1] < until:
                self._keys[base] = (key, until)


def topic_matches(topic: str, pattern: str) -> bool:
    """MQTT topic filter matching: ``+`` one level, ``#`` the rest (and the parent)."""
    parts, wanted = topic.split("/"), pattern.split("/")
    for i, w in enumerate(wanted):
        if w == "#":
            return True
        if i >= len(parts) or (w != "+" and w != parts[i]):
            return False
    return len(parts) == len(wanted)


def get_path(data: Any, path: str | None) -> Any:
    """The value at a dotted path (``"a.b.0"``), or ``None``."""
    if path is None:
        return None
    for part in path.split("."):
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.isdecimal() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(float(value), UTC)
        if isinstance(value, str):
            at = datetime.fromisoformat(value)
            return at if at.tzinfo is not None else None
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _coord(value: Any, bound: float) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    return x if -bound <= x <= bound else None


def generic_signal(
    mapping: TopicMapping,
    topic: str,
    body: bytes,
    registry: DeviceRegistry,
    now: datetime,
    redeliveries: Redeliveries,
) -> tuple[SignalIn, int]:
    """The signal of a message on a generic topic, minimised; and how many fields went.

    The whole message is the payload, under the HTTP API's limits. Its key is the
    message's id (``id_path``), else its bytes' within the redelivery window
    (:class:`Redeliveries`).

    Raises:
        InputError: the message is nested too deeply to decode, or its signal breaks a
            limit of :func:`~alarmdesk.domain.signal.validate` (its code says which).
    """
    try:
        data: Any = _decoder.decode(body)
    except msgspec.DecodeError:
        data = body.decode("utf-8", "replace")[:1000]
    except RecursionError:
        raise MalformedInput("message is nested too deeply") from None
    if not isinstance(data, dict):
        data = {"value": data}
    source = mapping.device or get_path(data, mapping.source_path)
    source_id = str(source)[:128] if source not in (None, "") else topic[:128]
    device = registry.get(source_id)
    message_id = get_path(data, mapping.id_path)
    if message_id not in (None, ""):
        key = f"mqtt:{topic}:{message_id}"
        if len(key) > 200:
            key = "mqtt:" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
    else:
        base = f"mqtt:{topic}:{hashlib.blake2b(body, digest_size=12).hexdigest()}"
        if len(base) > _BASE_MAX:
            base = "mqtt:" + hashlib.blake2b(base.encode(), digest_size=16).hexdigest()
        key = redeliveries.key(base, now)
    zone_value = get_path(data, mapping.zone_path)
    zone = str(zone_value)[:64] if zone_value not in (None, "") else None
    lat = _coord(get_path(data, mapping.lat_path), 90)
    lon = _coord(get_path(data, mapping.lon_path), 180)
    if lat is not None and lon is not None:
        location: Location | None = Location(lat=lat, lon=lon, zone=zone)
    elif device is not None:
        location = device.location(zone)
    else:
        location = Location(zone=zone) if zone else None
    condition = get_path(data, mapping.condition_path)
    restored = condition is not None and str(condition).lower() in {
        v.lower() for v in mapping.restored_values
    }
    text = get_path(data, mapping.summary_path)
    summary = f"{mapping.type_code} from {source_id}" + (f": {text}" if text else "")
    signal = SignalIn(
        source_kind=SourceKind.EQUIPMENT,
        source_id=(device.id if device is not None else source_id),
        type_code=mapping.type_code,
        occurred_at=_parse_time(get_path(data, mapping.time_path)) or now,
        location=location,
        summary=summary[:1000],
        idempotency_key=key,
        payload=data,
        condition="restored" if restored else "active",
        record_only=mapping.record_only or bool(device is not None and device.test_mode),
    )
    # Validated before minimisation walks the message: a hostile nesting is refused first.
    return minimise(validate(signal, now))
