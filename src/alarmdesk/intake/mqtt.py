"""MQTT intake (aiomqtt): Frigate cameras and generic topics, acknowledged after commit.

Delivery: QoS 1 subscriptions on a persistent MQTT 5 session (fixed client id, Clean Start
0, a Session Expiry Interval), with *manual* acknowledgement: the PUBACK for a message is
sent only once every signal it gave is committed. A message that was not committed is never
acknowledged, so the broker sends it again — after our restart, or at once after a store
failure, which ends the session on purpose (reconnecting makes the broker resend what is
unacknowledged, MQTT-4.4.0-1). PUBACKs go out in the order the messages came
(MQTT-4.6.0-2) while the messages are handled concurrently, so that they share the writer's
group commits; the broker sends at most ``max_in_flight`` unacknowledged messages (MQTT 5
Receive Maximum), which bounds our memory.

aiomqtt 2.5 does not expose paho's manual acknowledgement yet (aiomqtt issue #345, draft PR
#346): :func:`_paho` reaches the paho client it wraps, and fails loudly if a new aiomqtt
moves it, rather than silently falling back to acknowledging before commit.

Resends are harmless: every signal's idempotency key comes from the message (Frigate event
id and zone; a generic message's id, or a digest of its bytes with the time it first came:
``intake/mqtt_topics.py``), so a redelivered message is answered from the store.

Input the store must never see: a message larger than :data:`MAX_MESSAGE_BYTES` is refused
before it is decoded, JSON nested beyond the decoder's depth is malformed, and every signal
a message gives passes :func:`alarmdesk.domain.signal.validate` — the HTTP API's limits and
error codes (control characters and NUL, lengths, payload ≤ 8 KiB and ≤ 16 levels). A
refused message is logged, counted (``invalid``, ``invalid.<code>``, ``too_large``) and
acknowledged: it can never be stored, and a message the broker sends again forever would
hold up every message behind it (PostgreSQL refuses NUL; the session would end and resume
on the same message without end).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alarmdesk.domain.errors import InputError
from alarmdesk.domain.signal import SignalIn, validate
from alarmdesk.intake import frigate
from alarmdesk.intake.devices import DeviceRegistry, SignalSink, store
from alarmdesk.intake.mqtt_topics import Redeliveries, generic_signal, topic_matches
from alarmdesk.intake.supervision import Supervisor
from alarmdesk.intake.types import IntakeConfig, TopicMapping

log = logging.getLogger(__name__)

# Bigger than any alarm a sensor or Frigate sends (a Frigate event is ~3 KiB), small enough
# that a hostile message costs nothing to refuse. Brokers should refuse bigger ones first
# (Mosquitto ``message_size_limit``, docs/mqtt.md).
MAX_MESSAGE_BYTES: Final = 64 * 1024
# How often the subscriptions follow the device registry (sensors of the set-up).
FOLLOW_SECONDS: Final = 1.0


# -------------------------------------------------------------------------- the client


def _paho(client: aiomqtt.Client) -> paho.Client:
    """The paho client inside aiomqtt, for manual acknowledgement (see the module doc)."""
    inner = getattr(client, "_client", None)
    if not isinstance(inner, paho.Client) or not hasattr(inner, "manual_ack_set"):
        raise RuntimeError(
            "this aiomqtt version hides its paho client: cannot acknowledge after commit"
        )
    return inner


class MqttIntake:
    """Subscribes, converts, stores, and acknowledges after commit; reconnects forever.

    Args:
        host, port, username, password: the broker.
        client_id: fixed, so that the broker keeps our session across restarts.
        frigate_settings: ``None`` = no Frigate topics.
        frigate_source_id: the device id of the Frigate server (availability).
        topics: generic topic mappings.
        registry: returns the current device registry.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        client_id: str,
        sink: SignalSink,
        registry: Callable[[], DeviceRegistry],
        supervisor: Supervisor,
        clock: Callable[[], datetime],
        frigate_settings: frigate.FrigateSettings | None = None,
        frigate_source_id: str | None = None,
        topics: Sequence[TopicMapping] = (),
        username: str | None = None,
        password: str | None = None,
        session_expiry: int = 7 * 86400,
        max_in_flight: int = 100,
        reconnect_seconds: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.sink = sink
        self.registry = registry
        self.supervisor = supervisor
        self.clock = clock
        self.frigate = frigate_settings
        self.topics = list(topics)
        self.username = username
        self.password = password
        self.session_expiry = session_expiry
        self.max_in_flight = max_in_flight
        self.reconnect_seconds = reconnect_seconds
        self.frigate_source_id = frigate_source_id
        if frigate_settings is not None:
            self.frigate_source_id = frigate_source_id or f"nvr-{frigate_settings.prefix}"
            failed = self.frigate_source_id in supervisor.tracker.failed()
            supervisor.watch_availability(self.frigate_source_id, failed=failed)
        self.ready = asyncio.Event()  # set while subscribed
        # Set by IntakeService.stop before it cancels run(): read in run(), because a stop
        # landing while a session fails is lost in the session's TaskGroup (Python 3.11),
        # and the task's cancelling() is no sign of it either (a session that ends on its
        # own can leave it above 0).
        self.stopping = False
        self.stats: Counter[str] = Counter()
        # What the last CONNACK and SUBACKs said (see _check_session): None before.
        self.session_present: bool | None = None
        self.broker_session_expiry: int | None = None
        self.granted_qos: dict[str, int] = {}
        self.redeliveries = Redeliveries()

    @classmethod
    def from_config(
        cls,
        cfg: IntakeConfig,
        *,
        sink: SignalSink,
        registry: Callable[[], DeviceRegistry],
        supervisor: Supervisor,
        clock: Callable[[], datetime],
    ) -> MqttIntake:
        assert cfg.mqtt_url is not None
        url = urlsplit(cfg.mqtt_url)
        if url.scheme not in ("mqtt", "tcp") or not url.hostname:
            raise ValueError(f"mqtt_url must be mqtt://host[:port], not {cfg.mqtt_url!r}")
        settings = frigate.settings_from(cfg)
        return cls(
            host=url.hostname,
            port=url.port or 1883,
            username=unquote(url.username) if url.username else None,
            password=unquote(url.password) if url.password else None,
            client_id=cfg.mqtt_client_id,
            sink=sink,
            registry=registry,
            supervisor=supervisor,
            clock=clock,
            frigate_settings=settings,
            frigate_source_id=cfg.frigate_source_id,
            topics=cfg.mqtt_topics,
            session_expiry=cfg.mqtt_session_expiry_seconds,
            max_in_flight=cfg.mqtt_max_in_flight,
            reconnect_seconds=cfg.mqtt_reconnect_seconds,
        )

    def subscriptions(self) -> list[str]:
        out = []
        if self.frigate is not None:
            p = self.frigate.prefix
            out += [f"{p}/events", f"{p}/reviews", f"{p}/available"]
        out += [m.topic for m in self.topics]
        out += [m.topic for m in self.registry().mappings()]  # sensors of the set-up
        return list(dict.fromkeys(out))

    async def run(self) -> None:
        """Connects, serves, and reconnects after any failure, until cancelled."""
        while True:
            try:
                await self.session()
            except Exception as exc:  # an ExceptionGroup from the session's tasks, too
                self.stats["disconnects"] += 1
                if self.stopping:  # reconnecting would go on for ever, and aclose() wait
                    raise asyncio.CancelledError from exc
                log.warning("MQTT session ended (%s); reconnecting", _reason(exc))
            finally:
                self.ready.clear()
            await asyncio.sleep(self.reconnect_seconds)

    def _client(self) -> aiomqtt.Client:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.session_expiry
        props.ReceiveMaximum = self.max_in_flight
        client = aiomqtt.Client(
            self.host,
            self.port,
            identifier=self.client_id,
            username=self.username,
            password=self.password,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,  # resume the session: get what was not acknowledged
            properties=props,
            keepalive=30,
            timeout=10,
        )
        inner = _paho(client)
        inner.manual_ack_set(True)
        answered = inner.on_connect

        def on_connect(*args: Any) -> None:
            # paho: (client, userdata, flags, reason_code, properties). The CONNACK says
            # whether the broker resumed our session; aiomqtt does not pass that on.
            flags, properties = args[2], (args[4] if len(args) > 4 else None)
            self.session_present = bool(getattr(flags, "session_present", False))
            expiry = getattr(properties, "SessionExpiryInterval", None)
            self.broker_session_expiry = expiry if isinstance(expiry, int) else None
            if answered is not None:
                answered(*args)

        inner.on_connect = on_connect
        return client

    async def session(self) -> None:
        """One connection: subscribe, then handle messages until it fails."""
        client = self._client()
        async with client:
            subscribed: set[str] = set()
            await self._follow_subscriptions(client, subscribed)
            self._check_session()
            self.stats["sessions"] += 1
            self.ready.set()
            pending: asyncio.Queue[tuple[aiomqtt.Message, asyncio.Task[None]]] = asyncio.Queue(
                maxsize=self.max_in_flight
            )
            async with asyncio.TaskGroup() as group:
                group.create_task(self._acknowledge(client, pending))
                group.create_task(self._receive(client, pending))
                group.create_task(self._follow_forever(client, subscribed))

    async def _follow_subscriptions(self, client: aiomqtt.Client, subscribed: set[str]) -> None:
        """Subscribes to what is wanted and not yet subscribed, and leaves what is no longer
        wanted (a sensor added to or removed from the set-up)."""
        wanted = self.subscriptions()
        for topic in wanted:
            if topic not in subscribed:
                granted = await client.subscribe(topic, qos=1)
                self.granted_qos[topic] = _granted(granted)
                subscribed.add(topic)
        for topic in subscribed - set(wanted):
            await client.unsubscribe(topic)
            subscribed.discard(topic)
            self.granted_qos.pop(topic, None)

    async def _follow_forever(self, client: aiomqtt.Client, subscribed: set[str]) -> None:
        while True:
            await asyncio.sleep(FOLLOW_SECONDS)
            await self._follow_subscriptions(client, subscribed)

    def _check_session(self) -> None:
        """Warns when the broker does not give what delivery after a restart rests on
        (docs/mqtt.md): a resumed session, the session expiry we asked for, QoS 1."""
        if self.session_present:
            self.stats["sessions_resumed"] += 1
        elif self.stats["sessions"] > 0:
            log.warning(
                "MQTT broker %s:%s kept no session for client id %r across a reconnect: "
                "messages published meanwhile are lost. Check its persistence and "
                "persistent_client_expiration (docs/mosquitto.conf)",
                self.host,
                self.port,
                self.client_id,
            )
        else:
            log.warning(
                "MQTT broker %s:%s has no session for client id %r: a first start, or the "
                "broker lost it (persistence off, broker restarted, session expired) and "
                "with it what was published while alarmdesk was stopped",
                self.host,
                self.port,
                self.client_id,
            )
        expiry = self.broker_session_expiry
        if expiry is not None and expiry < self.session_expiry:
            log.warning(
                "MQTT broker keeps our session %d s, not the %d s asked for "
                "(mqtt_session_expiry_seconds): a longer outage loses messages",
                expiry,
                self.session_expiry,
            )
        for topic, qos in self.granted_qos.items():
            if qos != 1:
                log.warning(
                    "MQTT broker granted %s on %r, not QoS 1: messages can be lost",
                    f"QoS {qos}" if qos < 0x80 else f"nothing (reason code {qos:#x})",
                    topic,
                )

    async def _receive(
        self,
        client: aiomqtt.Client,
        pending: asyncio.Queue[tuple[aiomqtt.Message, asyncio.Task[None]]],
    ) -> None:
        async for message in client.messages:
            self.stats["received"] += 1
            # The conversion runs at once, in arrival order, so signals reach the writer
            # in the order the messages came.
            task = asyncio.get_running_loop().create_task(self.handle(message))
            await pending.put((message, task))

    async def _acknowledge(
        self,
        client: aiomqtt.Client,
        pending: asyncio.Queue[tuple[aiomqtt.Message, asyncio.Task[None]]],
    ) -> None:
        inner = _paho(client)
        while True:
            message, task = await pending.get()
            try:
                await task
            except Exception as exc:
                self.stats["store_failures"] += 1
                # Not committed: never acknowledge it. End the session; the broker resends.
                raise _StoreFailed(f"message on {message.topic.value} was not stored") from exc
            if message.qos > 0:
                inner.ack(message.mid, message.qos)
                self.stats["acknowledged"] += 1

    async def handle(self, message: aiomqtt.Message) -> None:
        """Converts one message and stores its signals; raises if they are not committed.

        A message that cannot be converted or is refused by validation is logged, counted
        and acknowledged: sending it again would fail the same way (a poison message must
        not stop the queue).
        """
        body = _body(message.payload)
        if len(body) > MAX_MESSAGE_BYTES:
            self.stats["too_large"] += 1
            log.warning(
                "MQTT message on %s refused (%d bytes, over %d); dropped",
                message.topic,
                len(body),
                MAX_MESSAGE_BYTES,
            )
            return
        try:
            signals, undo = self._convert(message.topic.value, body)
        except InputError as exc:
            self._refused(message, exc)
            return
        except Exception:
            self.stats["unconvertible"] += 1
            log.exception("MQTT message on %s cannot be converted; dropped", message.topic)
            return
        if not signals:
            return
        try:
            now = self.clock()
            signals = [validate(s, now) for s in signals]
        except InputError as exc:
            if undo is not None:
                undo()
            self._refused(message, exc)
            return
        try:
            await store(self.sink, signals)
        except Exception:
            if undo is not None:
                undo()
            raise
        self.stats["stored_signals"] += len(signals)

    def _refused(self, message: aiomqtt.Message, exc: InputError) -> None:
        """Counts and logs a message that can never be stored (the error names the field,
        never its content)."""
        self.stats["invalid"] += 1
        self.stats[f"invalid.{exc.code}"] += 1
        log.warning(
            "MQTT message on %s refused (%s: %s); dropped", message.topic, exc.code, exc.message
        )

    def _convert(self, topic: str, body: bytes) -> tuple[list[SignalIn], Callable[[], None] | None]:
        registry = self.registry()
        own = registry.mapping(topic)  # a sensor of the set-up: the most specific mapping
        fr = self.frigate
        if own is None and fr is not None and topic.startswith(fr.prefix + "/"):
            suffix = topic[len(fr.prefix) + 1 :]
            if suffix == "available":
                signal, undo = self._availability(body)
                return ([signal] if signal is not None else []), undo
            converted = frigate.convert(suffix, body, registry, fr)
            self.stats["minimised_fields"] += converted.dropped
            if converted.skipped:
                self.stats[f"frigate.{converted.skipped}"] += 1
            return converted.signals, None
        own = registry.mapping(topic)
        for mapping in [own] if own is not None else self.topics:
            if topic_matches(topic, mapping.topic):
                signal, dropped = generic_signal(
                    mapping, topic, body, registry, self.clock(), self.redeliveries
                )
                self.stats["minimised_fields"] += dropped
                return [signal], None
        self.stats["unmapped"] += 1
        return [], None

    def _availability(self, body: bytes) -> tuple[SignalIn | None, Callable[[], None] | None]:
        assert self.frigate_source_id is not None
        source = self.frigate_source_id
        up = frigate.availability(body)
        tracker = self.supervisor.tracker
        was_failed = tracker.is_failed(source)

        def undo() -> None:  # the store refused it: the redelivered message must redo it
            tracker.set_failed(source, was_failed, self.clock().timestamp())

        if up is True:
            return self.supervisor.checkin_signal(source), undo
        if up is False:
            return self.supervisor.down_signal(source, "offline"), undo
        self.stats["availability.unknown"] += 1
        return None, None


def _granted(answer: Any) -> int:
    """The QoS a SUBACK granted (or its failure reason code, >= 0x80)."""
    first = answer[0] if answer else 0x80
    return int(getattr(first, "value", first))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_reason(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


class _StoreFailed(Exception):
    """A message's signals were not committed: the session ends so the broker resends it."""


def _body(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if payload is None:
        return b""
    return str(payload).encode()
