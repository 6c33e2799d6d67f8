"""Equipment intake as one service: the DC-09 listeners, the MQTT client and supervision,
run as tasks on the application's event loop.

    intake = IntakeService()
    intake.start(services, loop, config.intake)   # sync: binds ports, loads devices
    ...
    intake.stop()                                 # or: await intake.aclose()

``start`` is synchronous so that it can run inside ``Services.start`` (called from the web
app's lifespan on the running loop): it loads the device registry and the supervision state
(two queries), binds the DC-09 sockets — a taken port fails start-up at once — and then
schedules the serving tasks. ``settings`` is :class:`IntakeConfig`, the ``[intake]`` table
of the configuration file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import msgspec

from alarmdesk.domain.purpose import screen

# The working parts are imported where they start, not here: alarmdesk.config embeds
# IntakeConfig, and reading the configuration (every CLI command) should not load
# SQLAlchemy, the DC-09 codec and the crypto library. No import cycle is involved.
if TYPE_CHECKING:
    import sqlalchemy as sa

    from alarmdesk.domain.signal import Receipt, SignalIn
    from alarmdesk.intake.dc09.model import TimestampWindow
    from alarmdesk.intake.dc09.receiver import Dc09Receiver
    from alarmdesk.intake.devices import DeviceRegistry, SignalSink
    from alarmdesk.intake.supervision import StoredState, Supervisor

log = logging.getLogger(__name__)

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Seconds = Annotated[float, msgspec.Meta(gt=0)]


class TopicMapping(msgspec.Struct, forbid_unknown_fields=True):
    """A generic MQTT topic turned into signals.

    Paths are dotted keys into the JSON message (``"device.id"``, ``"readings.0.t"``). A
    message that is not a JSON object is read as ``{"value": <the message>}``.

    Attributes:
        topic: MQTT topic filter (``+`` and ``#`` allowed).
        type_code: the incident type of its signals.
        source_path: the device id (looked up in the registry); default: the topic.
        id_path: the message id, for the idempotency key; default: a digest of the message.
        time_path: when it happened: epoch seconds or ISO 8601; default: when received.
        lat_path, lon_path, zone_path: where; default: the device's registered location.
        summary_path: a text for the summary.
        condition_path: a value that says active or restored; restored when it is one of
            ``restored_values`` (compared lower-case).
        record_only: stored and counted, never alarmed.
    """

    topic: str
    type_code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    source_path: str | None = None
    id_path: str | None = None
    time_path: str | None = None
    lat_path: str | None = None
    lon_path: str | None = None
    zone_path: str | None = None
    summary_path: str | None = None
    condition_path: str | None = None
    restored_values: list[str] = msgspec.field(
        default_factory=lambda: ["restored", "restore", "clear", "ok", "false", "off", "0"]
    )
    record_only: bool = False

    def __post_init__(self) -> None:
        # A topic mapping states a purpose: screened like incident types (DESIGN, "Purposes,
        # not keywords"). A refusal fails loading the configuration, naming the rule.
        screen({"topic": self.topic.replace("/", " "), "type_code": self.type_code})


class IntakeConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The ``[intake]`` table: equipment adapters and supervision. Off unless a port or URL.

    Attributes:
        dc09_port: TCP and UDP port of the DC-09 receiver; ``None`` = no receiver.
        dc09_host: address to listen on.
        dc09_udp: also listen on UDP.
        dc09_timestamp_window: ``[-behind, ahead]`` seconds accepted around the receiver
            clock (DC-09: ``[-40, 20]``); ``None`` turns the check off. Per account:
            ``timestamp_window`` in the device settings.
        dc09_check_plain_timestamps: also check plaintext frames' timestamps.
        dc09_max_in_flight: frames of one connection handled at once.
        dc09_idle_timeout_seconds: a TCP connection that sent no byte for this long is
            closed (panels that keep their connection send link tests far more often).
        dc09_frame_timeout_seconds: a TCP connection whose frame is still incomplete this
            long after its first byte is closed (a stuck or trickling sender).
        ack_unknown_accounts: ACK (after storing) frames of unknown accounts; else DUH.
        mqtt_url: ``mqtt://[user:password@]host[:port]``; ``None`` = no MQTT.
        mqtt_client_id: fixed client id: the broker keeps its session (and what was not
            acknowledged) across restarts. Unique per alarmdesk node.
        mqtt_session_expiry_seconds: how long the broker keeps the session while we are away.
        mqtt_max_in_flight: unacknowledged messages at once (MQTT 5 Receive Maximum).
        frigate_topic_prefix: Frigate's topic prefix; ``None`` = no Frigate.
        frigate_alarm_source: raise from tracked objects (``events``) or review alerts.
        frigate_labels: object label → incident type (cameras may override). Empty by
            default: nothing a camera sees raises an alarm until a deployment decides.
        frigate_source_id: device id of the Frigate server (availability); default
            ``nvr-<prefix>``.
        mqtt_topics: generic topics, see :class:`TopicMapping`.
        plates_enabled_types: incident types whose camera signals may keep plate text.
        supervision_grace_seconds: a device is missing after its interval plus this.
        devices_reload_seconds: how often the device registry is read again.
    """

    dc09_port: Port | None = None
    dc09_host: str = "127.0.0.1"
    dc09_udp: bool = True
    dc09_timestamp_window: list[float] | None = msgspec.field(default_factory=lambda: [-40.0, 20.0])
    dc09_check_plain_timestamps: bool = False
    dc09_max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 16
    dc09_idle_timeout_seconds: Seconds = 90.0
    dc09_frame_timeout_seconds: Seconds = 30.0
    ack_unknown_accounts: bool = True
    mqtt_url: str | None = None
    mqtt_client_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "alarmdesk"
    mqtt_session_expiry_seconds: Annotated[int, msgspec.Meta(ge=0)] = 7 * 86400
    mqtt_max_in_flight: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 100
    mqtt_reconnect_seconds: Seconds = 2.0
    frigate_topic_prefix: str | None = "frigate"
    frigate_alarm_source: Literal["events", "reviews"] = "events"
    frigate_labels: dict[str, str] = msgspec.field(default_factory=dict)
    frigate_source_id: str | None = None
    mqtt_topics: list[TopicMapping] = msgspec.field(default_factory=list)
    plates_enabled_types: list[str] = msgspec.field(default_factory=list)
    supervision_grace_seconds: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    devices_reload_seconds: Seconds = 300.0

    def __post_init__(self) -> None:
        screen({"frigate_labels": [f"{k} {v}" for k, v in self.frigate_labels.items()]})

    @property
    def enabled(self) -> bool:
        return self.dc09_port is not None or self.mqtt_url is not None

    def timestamp_window(self) -> TimestampWindow | None:
        """The default DC-09 window.

        Raises:
            ValueError: not ``[-behind, ahead]``.
        """
        from alarmdesk.intake.devices import window_from_pair

        if self.dc09_timestamp_window is None:
            return None
        return window_from_pair(self.dc09_timestamp_window)


class ServicesLike(Protocol):
    """What intake needs of :class:`alarmdesk.bootstrap.Services`."""

    @property
    def engine(self) -> sa.Engine: ...
    @property
    def writer(self) -> SignalSink: ...
    @property
    def clock(self) -> Callable[[], datetime]: ...


class _NotStarted:
    """A sink that refuses everything: what :class:`IntakeService` holds before start."""

    async def submit_signals(self, signals: Sequence[SignalIn]) -> list[Receipt]:
        raise RuntimeError("intake is not started")


class IntakeService:
    """DC-09 listeners, the MQTT client and supervision, on one event loop."""

    def __init__(self) -> None:
        self.settings = IntakeConfig()
        self.registry: DeviceRegistry | None = None
        self.receiver: Dc09Receiver | None = None
        self.supervisor: Supervisor | None = None
        self.mqtt: Any = None  # alarmdesk.intake.mqtt.MqttIntake, imported only when used
        self.tcp_address: tuple[str, int] | None = None
        self.udp_address: tuple[str, int] | None = None
        self._engine: sa.Engine | None = None
        self._sink: SignalSink = _NotStarted()
        self._tasks: list[asyncio.Task[Any]] = []
        self._sockets: list[socket.socket] = []

    def start(
        self,
        services: ServicesLike,
        loop: asyncio.AbstractEventLoop,
        settings: IntakeConfig,
    ) -> None:
        """Loads devices and supervision state, binds the sockets, schedules the tasks.

        Raises:
            OSError: the DC-09 port cannot be bound.
            ValueError: a setting is out of range (the timestamp window).
        """
        from alarmdesk.intake.devices import CoalescingSink, DeviceRegistry
        from alarmdesk.intake.supervision import Supervisor

        self.settings = settings
        self._engine = services.engine
        # Frames and messages stored in one event-loop turn go to the writer together.
        self._sink = CoalescingSink(services.writer)
        clock = services.clock
        window = settings.timestamp_window()
        registry = self.registry = DeviceRegistry.load(services.engine)
        supervisor = Supervisor(services.writer, clock, grace=settings.supervision_grace_seconds)
        supervisor.load(registry, self._stored_state(clock()), startup=True)
        self.supervisor = supervisor
        try:
            if settings.dc09_port is not None:
                self._start_dc09(services, loop, settings, window)
            if settings.mqtt_url is not None:
                self._start_mqtt(services, loop, settings)
        except BaseException:
            self.stop()
            raise
        self._spawn(loop, supervisor.run(), "supervision")
        self._spawn(loop, self._reload_forever(), "devices-reload")

    def _start_dc09(
        self,
        services: ServicesLike,
        loop: asyncio.AbstractEventLoop,
        settings: IntakeConfig,
        window: TimestampWindow | None,
    ) -> None:
        from alarmdesk.intake.dc09.receiver import Dc09Receiver, ReceiverSettings, listening_socket

        assert settings.dc09_port is not None and self.supervisor is not None
        assert self.registry is not None
        receiver = Dc09Receiver(
            self._sink,
            self.registry,
            clock=services.clock,
            supervision=self.supervisor,
            settings=ReceiverSettings(
                window=window,
                check_plain=settings.dc09_check_plain_timestamps,
                ack_unknown=settings.ack_unknown_accounts,
                max_in_flight=settings.dc09_max_in_flight,
                idle_timeout=settings.dc09_idle_timeout_seconds,
                frame_timeout=settings.dc09_frame_timeout_seconds,
            ),
        )
        self._remember_resends(receiver, services.clock())
        tcp = listening_socket(settings.dc09_host, settings.dc09_port, socket.SOCK_STREAM)
        self._sockets.append(tcp)
        self.tcp_address = tcp.getsockname()[:2]
        udp: socket.socket | None = None
        if settings.dc09_udp:
            # The same port number on UDP; with port 0 the OS picked one for TCP.
            udp = listening_socket(settings.dc09_host, self.tcp_address[1], socket.SOCK_DGRAM)
            self._sockets.append(udp)
            self.udp_address = udp.getsockname()[:2]
        self.receiver = receiver
        self._spawn(loop, self._serve_dc09(receiver, tcp, udp), "dc09-listen")
        log.info("DC-09 receiver on %s (tcp%s)", self.tcp_address, "+udp" if udp else "")

    def _remember_resends(self, receiver: Dc09Receiver, now: datetime) -> None:
        """Gives the receiver the keys stored within its resend window (a restart forgets)."""
        from alarmdesk.store.intake_keys import recent_keys

        assert self._engine is not None
        since = now - timedelta(seconds=receiver.settings.resend_seconds)
        with self._engine.connect() as conn:
            for stored in recent_keys(conn, "dc09:", since):
                receiver.remember(stored.idempotency_key, stored.occurred_at, stored.received_at)

    def _start_mqtt(
        self, services: ServicesLike, loop: asyncio.AbstractEventLoop, settings: IntakeConfig
    ) -> None:
        from alarmdesk.intake.mqtt import MqttIntake

        assert self.supervisor is not None and settings.mqtt_url is not None
        self.mqtt = MqttIntake.from_config(
            settings,
            sink=self._sink,
            registry=self._registry,
            supervisor=self.supervisor,
            clock=services.clock,
        )
        self._spawn(loop, self.mqtt.run(), "mqtt")

    async def _serve_dc09(
        self, receiver: Dc09Receiver, tcp: socket.socket, udp: socket.socket | None
    ) -> None:
        await receiver.start_tcp(tcp)
        if udp is not None:
            await receiver.start_udp(udp)

    def _registry(self) -> DeviceRegistry:
        assert self.registry is not None
        return self.registry

    def _stored_state(self, now: datetime, *, last: bool = True) -> StoredState:
        """What the store says; ``last=False`` skips the scan of recent signals (reloads
        need only the open supervision incidents: new devices get a full interval)."""
        from alarmdesk.intake.supervision import load_state

        assert self._engine is not None
        longest = max((d.checkin_seconds or 0 for d in self._registry().supervised()), default=0)
        horizon = timedelta(seconds=longest) + timedelta(days=1)
        return load_state(self._engine, now, horizon, last=last)

    def reload_devices(self) -> None:
        """Reads the registry and supervision state again (blocking: two or three queries)."""
        from alarmdesk.intake.devices import DeviceRegistry

        assert self._engine is not None and self.supervisor is not None
        registry = DeviceRegistry.load(self._engine)
        self.registry = registry
        state = self._stored_state(self.supervisor.clock(), last=False)
        self.supervisor.load(registry, state, startup=False)
        if self.receiver is not None:
            self.receiver.registry = registry

    async def _reload_forever(self) -> None:
        from alarmdesk.intake.devices import DeviceRegistry

        while True:
            await asyncio.sleep(self.settings.devices_reload_seconds)
            try:
                # The queries run in a thread; the swap happens back on the loop.
                assert self._engine is not None and self.supervisor is not None
                registry = await asyncio.to_thread(DeviceRegistry.load, self._engine)
                self.registry = registry
                state = await asyncio.to_thread(
                    self._stored_state, self.supervisor.clock(), last=False
                )
                self.supervisor.load(registry, state, startup=False)
                if self.receiver is not None:
                    self.receiver.registry = registry
            except Exception:
                log.exception("reloading devices failed; keeping the previous registry")

    def _spawn(self, loop: asyncio.AbstractEventLoop, coro: Any, name: str) -> None:
        task = loop.create_task(coro, name=f"intake-{name}")
        task.add_done_callback(_report)
        self._tasks.append(task)

    def stop(self) -> None:
        """Stops listening, closes connections, cancels the tasks (synchronous)."""
        if self.receiver is not None:
            self.receiver.close()
        for task in self._tasks:
            task.cancel()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._sockets.clear()

    async def aclose(self) -> None:
        """:meth:`stop`, then waits until every task has ended."""
        tasks = list(self._tasks)
        self.stop()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.receiver is not None:
            await self.receiver.wait_closed()
        self._tasks.clear()


def _report(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("intake task %s ended", task.get_name(), exc_info=task.exception())
