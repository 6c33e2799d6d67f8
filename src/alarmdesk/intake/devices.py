"""The device registry every intake adapter reads, and the one way adapters store signals.

Devices live in the ``devices`` table (kind ``panel`` | ``camera`` | ``sensor``); the registry
is an immutable in-memory snapshot of it, loaded with one query and swapped whole on reload,
so lookups on the hot path are dict reads and never touch the database.

``settings`` keys read here:

===================  ========  ==============================================================
key                  kinds     meaning
===================  ========  ==============================================================
account              panel     DC-09 account (hex, 3-16); default: the id after ``panel-``
key_hex              panel     AES key (32, 48 or 64 hex digits); frames must be encrypted
timestamp_window     panel     ``[-behind, ahead]`` seconds, or ``null`` to turn the check
                               off; absent: the receiver's default (DC-09: ``[-40, 20]``)
test_mode            any       signals are stored and counted but never alarmed
address              any       street address of the site
frigate_camera       camera    the camera's name in Frigate (default: the device id)
labels               camera    Frigate label → incident type, over the global map
alarm_zones          camera    Frigate zones that alarm; empty or absent: the whole view
===================  ========  ==============================================================

``zones`` maps a zone (panel zone number, camera zone name) to its description, or to an
object ``{"description", "lat", "lon", "address", "camera"}`` when the zone has its own
location or a camera looking at it (``camera``: the id of a camera device).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import msgspec
import sqlalchemy as sa

from alarmdesk.domain.errors import IdempotencyKeyReused
from alarmdesk.domain.signal import Location, SignalIn
from alarmdesk.intake.types import TimestampWindow, TopicMapping
from alarmdesk.store import tables as t

log = logging.getLogger(__name__)

_AES_HEX_LENGTHS = frozenset({32, 48, 64})


class UseDefault:
    """The device states no timestamp window: the receiver's default applies.

    ``None`` cannot say this, because ``None`` means "no window check at all".
    """

    def __repr__(self) -> str:
        return "USE_DEFAULT"


USE_DEFAULT = UseDefault()


@dataclass(frozen=True, slots=True)
class Zone:
    description: str | None = None
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    camera: str | None = None  # the id of the camera device that looks at the zone


@dataclass(frozen=True, slots=True)
class Device:
    """One registered device.

    Attributes:
        id: the ``devices`` id, and the ``source_id`` of its signals (``panel-12345A``).
        account: the DC-09 account, upper-case hex, for panels.
        key: the AES key of an encrypted panel.
        key_invalid: ``key_hex`` is set but unusable: every frame of the account is refused.
        window: the DC-09 timestamp window, ``None`` (off) or :data:`USE_DEFAULT`.
        checkin_seconds: the expected check-in interval; ``None`` = not supervised by time.
        camera: the Frigate camera name, for cameras.
        mapping: a sensor's own MQTT topic mapping (the centre's set-up, ``topic``).
    """

    id: str
    kind: str
    site: str
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    zones: Mapping[str, Zone] = field(default_factory=dict)
    checkin_seconds: int | None = None
    test_mode: bool = False
    account: str | None = None
    key: bytes | None = None
    key_invalid: bool = False
    window: TimestampWindow | UseDefault | None = USE_DEFAULT
    camera: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    alarm_zones: frozenset[str] = frozenset()
    mapping: TopicMapping | None = None  # a sensor's own MQTT topic

    def zone(self, name: str | None) -> Zone | None:
        """The zone ``name`` (``"015"`` finds ``"15"`` and the other way round)."""
        if name is None:
            return None
        found = self.zones.get(name)
        if found is None and name.isdecimal():
            found = self.zones.get(str(int(name)))
        return found

    def location(self, zone: str | None = None) -> Location:
        """Where a signal from ``zone`` of this device happened."""
        z = self.zone(zone)
        lat, lon = self.lat, self.lon
        if z is not None and z.lat is not None and z.lon is not None:
            lat, lon = z.lat, z.lon
        address = (z.address if z is not None and z.address else None) or self.address
        return Location(
            lat=lat if lat is not None and lon is not None else None,
            lon=lon if lat is not None and lon is not None else None,
            address=address[:200] if address else None,
            zone=zone[:64] if zone else None,
            site=self.site[:200] if self.site else None,
        )


def normalise_account(account: str) -> str:
    return account.strip().upper()


def _zones(raw: Any) -> dict[str, Zone]:
    out: dict[str, Zone] = {}
    if not isinstance(raw, Mapping):
        return out
    for name, value in raw.items():
        if isinstance(value, Mapping):
            out[str(name)] = Zone(
                description=_str(value.get("description")),
                lat=_float(value.get("lat")),
                lon=_float(value.get("lon")),
                address=_str(value.get("address")),
                camera=_str(value.get("camera")),
            )
        else:
            out[str(name)] = Zone(description=_str(value))
    return out


def _str(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _window(settings: Mapping[str, Any], device_id: str) -> TimestampWindow | UseDefault | None:
    if "timestamp_window" not in settings:
        return USE_DEFAULT
    raw = settings["timestamp_window"]
    if raw is None:
        return None
    try:
        return window_from_pair(raw)
    except (TypeError, ValueError):
        log.error("device %s: timestamp_window %r is not [-behind, ahead]", device_id, raw)
        return USE_DEFAULT


def window_from_pair(raw: Sequence[float]) -> TimestampWindow:
    """``[-40, 20]`` → 40 s behind, 20 s ahead of the receiver clock.

    Raises:
        ValueError: not two numbers, or the first positive / the second negative.
    """
    behind, ahead = (float(x) for x in raw)
    if behind > 0 or ahead < 0:
        raise ValueError("window is [-behind, ahead]: first <= 0, second >= 0")
    return TimestampWindow(ahead=timedelta(seconds=ahead), behind=timedelta(seconds=-behind))


def _mapping(raw: Any, device_id: str) -> TopicMapping | None:
    """A sensor's own topic mapping (set-up ``topic``) as the MQTT adapter reads it."""
    if not isinstance(raw, Mapping) or not raw.get("topic") or not raw.get("type"):
        return None
    fields = {k: v for k, v in raw.items() if k not in ("type", "restored_values")}
    if raw.get("restored_values") is not None:
        fields["restored_values"] = list(raw["restored_values"])
    try:
        return msgspec.convert(
            {**fields, "type_code": raw["type"], "device": device_id}, TopicMapping
        )
    except (msgspec.ValidationError, ValueError) as exc:  # a refused purpose, too
        log.error(
            "device %s: its topic mapping is refused (%s); not subscribing to it", device_id, exc
        )
        return None


def device_from_row(row: Mapping[Any, Any]) -> Device:
    """A :class:`Device` from a ``devices`` row (as a mapping)."""
    settings: Mapping[str, Any] = row.get("settings") or {}
    device_id = str(row["id"])
    kind = str(row["kind"])
    account = settings.get("account")
    if account is None and kind == "panel" and device_id.startswith("panel-"):
        account = device_id.removeprefix("panel-")
    key: bytes | None = None
    key_invalid = False
    key_hex = settings.get("key_hex")
    if key_hex:
        try:
            if len(str(key_hex)) not in _AES_HEX_LENGTHS:
                raise ValueError("length")
            key = bytes.fromhex(str(key_hex))
        except ValueError:
            log.error("device %s: key_hex is not 16, 24 or 32 bytes of hex; refusing it", device_id)
            key_invalid = True
    camera = settings.get("frigate_camera") or (device_id if kind == "camera" else None)
    labels = settings.get("labels")
    alarm_zones = settings.get("alarm_zones")
    checkin = row.get("checkin_seconds")
    return Device(
        id=device_id,
        kind=kind,
        site=str(row.get("site") or ""),
        lat=_float(row.get("lat")),
        lon=_float(row.get("lon")),
        address=_str(settings.get("address")),
        zones=_zones(row.get("zones")),
        checkin_seconds=int(checkin) if checkin else None,
        test_mode=bool(settings.get("test_mode", False)),
        account=normalise_account(str(account)) if account else None,
        key=key,
        key_invalid=key_invalid,
        window=_window(settings, device_id),
        camera=str(camera) if camera else None,
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
        alarm_zones=frozenset(str(z) for z in alarm_zones)
        if isinstance(alarm_zones, list)
        else (frozenset()),
        mapping=_mapping(settings.get("topic"), device_id) if kind == "sensor" else None,
    )


class DeviceRegistry:
    """An immutable snapshot of the registered devices, indexed for the adapters."""

    def __init__(self, devices: Iterable[Device] = ()) -> None:
        self._by_id: dict[str, Device] = {}
        self._by_account: dict[str, Device] = {}
        self._by_camera: dict[str, Device] = {}
        self._by_topic: dict[str, TopicMapping] = {}
        for d in devices:
            if d.mapping is not None:
                self._by_topic[d.mapping.topic] = d.mapping
            self._by_id[d.id] = d
            if d.account is not None:
                self._by_account[d.account] = d
            if d.camera is not None:
                self._by_camera[d.camera] = d

    def __len__(self) -> int:
        return len(self._by_id)

    def get(self, device_id: str) -> Device | None:
        return self._by_id.get(device_id)

    def account(self, account: str | None) -> Device | None:
        """The panel of a DC-09 account (case-insensitive), or ``None``."""
        if not account:
            return None
        return self._by_account.get(normalise_account(account))

    def camera(self, name: str) -> Device | None:
        """The camera with this Frigate name (or id), or ``None``."""
        return self._by_camera.get(name) or self._by_id.get(name)

    def mappings(self) -> list[TopicMapping]:
        """The sensors' own topic mappings."""
        return list(self._by_topic.values())

    def mapping(self, topic: str) -> TopicMapping | None:
        """The sensor mapping of exactly this topic (a sensor's topic has no wildcard)."""
        return self._by_topic.get(topic)

    def supervised(self) -> list[Device]:
        """Devices with an expected check-in interval."""
        return [d for d in self._by_id.values() if d.checkin_seconds]

    @classmethod
    def load(cls, engine: sa.Engine) -> DeviceRegistry:
        """Reads every device with one query."""
        with engine.connect() as conn:
            rows = conn.execute(sa.select(t.devices)).mappings().all()
        return cls(device_from_row(r) for r in rows)


class SignalSink(Protocol):
    """What adapters store through: the writer (``Writer.submit_signals``: a receipt per
    signal once committed), or in distributed mode the intake log (``service.cluster.Node``:
    per signal its key once queued). Either way, once it returns the signals are durable and
    the source may be acknowledged."""

    async def submit_signals(self, signals: Sequence[SignalIn]) -> Sequence[object]: ...


async def store(sink: SignalSink, signals: Sequence[SignalIn]) -> list[object | None]:
    """Stores ``signals`` and returns once they are durable (committed, or queued).

    Every adapter's idempotency key is derived from what the source sent (DC-09: account,
    sequence, timestamp, a digest of the data; MQTT: the message id or a digest), so a key
    that comes back "reused" is a resend whose incidental fields (our receipt time) differ:
    it is already stored, and is reported as ``None`` instead of failing the others.

    Raises:
        Exception: whatever the writer raises otherwise (the caller must not acknowledge).
    """
    if not signals:
        return []
    try:
        return list(await sink.submit_signals(signals))
    except IdempotencyKeyReused:
        if len(signals) == 1:
            return [None]
    out: list[object | None] = []
    for s in signals:  # one by one: which of them is the resend?
        try:
            out.extend(await sink.submit_signals([s]))
        except IdempotencyKeyReused:
            out.append(None)
    return out


class CoalescingSink:
    """One writer submission per event-loop turn for everything stored during that turn.

    A busy receiver hands over hundreds of one-signal frames between two commits; handing
    them over as one request saves a future, a queue item and a wake-up per frame on both
    sides. It changes nothing in the outcome: the writer commits a whole group commit or
    none of it anyway, so signals that share a transaction already share its fate. A key
    reused with different content fails the combined request; then each caller's signals
    are submitted alone, so only that caller gets the error.
    """

    def __init__(self, sink: SignalSink, max_signals: int = 1000) -> None:
        self.sink = sink
        self.max_signals = max_signals
        self._pending: list[tuple[Sequence[SignalIn], asyncio.Future[list[object]]]] = []
        self._count = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit_signals(self, signals: Sequence[SignalIn]) -> list[object]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[object]] = loop.create_future()
        self._pending.append((signals, future))
        self._count += len(signals)
        if self._count >= self.max_signals:
            self._flush()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        groups, self._pending, self._count = self._pending, [], 0
        if groups:
            task = asyncio.get_running_loop().create_task(self._submit(groups))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _submit(
        self, groups: list[tuple[Sequence[SignalIn], asyncio.Future[list[object]]]]
    ) -> None:
        try:
            receipts = await self.sink.submit_signals([s for g, _ in groups for s in g])
        except IdempotencyKeyReused as exc:
            if len(groups) == 1:
                _fail(groups[0][1], exc)
                return
            for signals, future in groups:  # find whose key it was
                try:
                    _succeed(future, list(await self.sink.submit_signals(signals)))
                except Exception as error:
                    _fail(future, error)
            return
        except Exception as exc:
            for _, future in groups:
                _fail(future, exc)
            return
        i = 0
        for signals, future in groups:
            _succeed(future, list(receipts[i : i + len(signals)]))
            i += len(signals)


def _succeed(future: asyncio.Future[list[object]], receipts: list[object]) -> None:
    if not future.done():
        future.set_result(receipts)


def _fail(future: asyncio.Future[list[object]], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
