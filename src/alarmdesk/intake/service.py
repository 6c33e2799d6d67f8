"""Equipment intake as one service: the DC-09 listeners, the MQTT client, supervision and the
CAP feed poller, run as tasks on the application's event loop.

    intake = IntakeService()
    intake.start(services, loop, config.intake)   # sync: binds ports, loads devices
    ...
    intake.stop()                                 # or: await intake.aclose()

``start`` is synchronous so that it can run inside ``Services.start`` (called from the web
app's lifespan on the running loop): it loads the device registry and the supervision state
(two queries), binds the DC-09 sockets — a taken port fails start-up at once — and then
schedules the serving tasks. ``settings`` is :class:`~alarmdesk.intake.types.IntakeConfig`, the
``[intake]`` table of the configuration file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from alarmdesk.domain.signal import Receipt, SignalIn
from alarmdesk.intake.cap import load_mapping
from alarmdesk.intake.cap_feeds import CapFeedPoller
from alarmdesk.intake.dc09.receiver import CheckinSink, Dc09Receiver, ReceiverSettings
from alarmdesk.intake.dc09.transport import Dc09Listeners, listening_socket
from alarmdesk.intake.devices import CoalescingSink, DeviceRegistry, SignalSink, window_from_pair
from alarmdesk.intake.frigate import check_plate_types
from alarmdesk.intake.mqtt import MqttIntake
from alarmdesk.intake.mqtt_topics import Redeliveries
from alarmdesk.intake.supervision import StoredState, Supervisor, load_state

# The configuration types live in alarmdesk.intake.types (alarmdesk.config embeds them and
# every intake module names them); they are re-exported here for the callers that start
# intake with them.
from alarmdesk.intake.types import IntakeConfig, TimestampWindow, TopicMapping
from alarmdesk.store import repository as repo
from alarmdesk.store.centre import revision as setup_revision
from alarmdesk.store.intake_keys import recent_keys

__all__ = ["IntakeConfig", "IntakeService", "ServicesLike", "TopicMapping", "timestamp_window"]

log = logging.getLogger(__name__)

# How often the set-up's revision is read: a device registered is known within this.
SETUP_POLL_SECONDS = 2.0


def timestamp_window(settings: IntakeConfig) -> TimestampWindow | None:
    """The default DC-09 window of the ``[intake]`` settings.

    Raises:
        ValueError: not ``[-behind, ahead]``.
    """
    if settings.dc09_timestamp_window is None:
        return None
    return window_from_pair(settings.dc09_timestamp_window)


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
        self.listeners: Dc09Listeners | None = None
        self.supervisor: Supervisor | None = None
        self.mqtt: MqttIntake | None = None
        self.cap: CapFeedPoller | None = None
        self.tcp_address: tuple[str, int] | None = None
        self.udp_address: tuple[str, int] | None = None
        self._engine: sa.Engine | None = None
        self._sink: SignalSink = _NotStarted()
        self._checkins: CheckinSink | None = None  # None: the local supervisor
        self._tasks: list[asyncio.Task[Any]] = []
        self._sockets: list[socket.socket] = []

    def start(
        self,
        services: ServicesLike,
        loop: asyncio.AbstractEventLoop,
        settings: IntakeConfig,
    ) -> None:
        """One machine: everything, storing through the writer. Loads devices and
        supervision state, binds the sockets, schedules the tasks.

        Raises:
            OSError: the DC-09 port cannot be bound.
            ValueError: a setting is out of range (the timestamp window).
            ConfigError: ``plates_enabled_types`` names a type plates may not be kept for.
        """
        self.listen(services, loop, settings, services.writer)
        try:
            self.supervise(services, loop)
        except BaseException:
            self.stop()
            raise

    def listen(
        self,
        services: ServicesLike,
        loop: asyncio.AbstractEventLoop,
        settings: IntakeConfig,
        sink: SignalSink,
        checkins: CheckinSink | None = None,
    ) -> None:
        """The DC-09 receiver alone (when ``dc09_port`` is set) and the devices' reloads:
        frames are stored through ``sink`` and check-ins told to ``checkins`` (None: to the
        supervisor :meth:`supervise` starts). In distributed mode every node listens, with
        the intake log as its sink and the check-in relay (bus/checkins.py), writer or not.

        Raises:
            OSError: the DC-09 port cannot be bound.
            ValueError: a setting is out of range (the timestamp window).
        """
        self.settings = settings
        self._engine = services.engine
        # Frames and messages stored in one event-loop turn are handed over together.
        self._sink = CoalescingSink(sink)
        window = timestamp_window(settings)
        self.registry = DeviceRegistry.load(services.engine)
        try:
            if settings.dc09_port is not None:
                self._start_dc09(services, loop, settings, window, checkins)
        except BaseException:
            self.stop()
            raise
        self._spawn(loop, self._reload_forever(), "devices-reload")

    def supervise(self, services: ServicesLike, loop: asyncio.AbstractEventLoop) -> None:
        """After :meth:`listen`, on the node that writes: supervision of check-ins, the MQTT
        client and the CAP feeds, storing through the writer.

        Raises:
            ConfigError: ``plates_enabled_types`` names a type plates may not be kept for.
        """
        settings = self.settings
        if settings.plates_enabled_types:
            with services.engine.connect() as conn:
                check_plate_types(settings.plates_enabled_types, repo.load_taxonomy(conn))
        clock = services.clock
        # MQTT stores through the writer: frames and messages of one event-loop turn together
        writer = CoalescingSink(services.writer)
        supervisor = Supervisor(services.writer, clock, grace=settings.supervision_grace_seconds)
        supervisor.load(self._registry(), self._stored_state(clock()), startup=True)
        self.supervisor = supervisor
        if self.receiver is not None and self._checkins is None:
            self.receiver.supervision = supervisor
        if settings.mqtt_url is not None:
            self._start_mqtt(services, loop, settings, writer)
        if settings.cap_feeds:
            self.cap = CapFeedPoller(
                settings.cap_feeds,
                settings.cap_poll_seconds,
                services.writer,
                services.engine,
                load_mapping(settings.cap_mapping),
                clock,
                settings.cap_languages,
            )
            self._spawn(loop, self.cap.run(), "cap-feeds")
        self._spawn(loop, supervisor.run(), "supervision")

    def _start_dc09(
        self,
        services: ServicesLike,
        loop: asyncio.AbstractEventLoop,
        settings: IntakeConfig,
        window: TimestampWindow | None,
        checkins: CheckinSink | None,
    ) -> None:

        assert settings.dc09_port is not None and self.registry is not None
        self._checkins = checkins
        receiver = Dc09Receiver(
            self._sink,
            self.registry,
            clock=services.clock,
            supervision=checkins,
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
        self.listeners = listeners = Dc09Listeners(receiver)
        self._spawn(loop, self._serve_dc09(listeners, tcp, udp), "dc09-listen")
        log.info("DC-09 receiver on %s (tcp%s)", self.tcp_address, "+udp" if udp else "")

    def _remember_resends(self, receiver: Dc09Receiver, now: datetime) -> None:
        """Gives the receiver the keys stored within its resend window (a restart forgets)."""
        assert self._engine is not None
        since = now - timedelta(seconds=receiver.settings.resend_seconds)
        with self._engine.connect() as conn:
            for stored in recent_keys(conn, "dc09:", since):
                receiver.remember(stored.idempotency_key, stored.occurred_at, stored.received_at)

    def _remember_redeliveries(self, redeliveries: Redeliveries, now: datetime) -> None:
        """The keys of generic MQTT messages stored within the redelivery window."""
        assert self._engine is not None
        since = now - timedelta(seconds=redeliveries.seconds)
        with self._engine.connect() as conn:
            for stored in recent_keys(conn, "mqtt:", since):
                redeliveries.remember(stored.idempotency_key, stored.received_at)

    def _start_mqtt(
        self,
        services: ServicesLike,
        loop: asyncio.AbstractEventLoop,
        settings: IntakeConfig,
        sink: SignalSink,
    ) -> None:

        assert self.supervisor is not None and settings.mqtt_url is not None
        self.mqtt = MqttIntake.from_config(
            settings,
            sink=sink,
            registry=self._registry,
            supervisor=self.supervisor,
            clock=services.clock,
        )
        self._remember_redeliveries(self.mqtt.redeliveries, services.clock())
        self._spawn(loop, self.mqtt.run(), "mqtt")

    async def _serve_dc09(
        self, listeners: Dc09Listeners, tcp: socket.socket, udp: socket.socket | None
    ) -> None:
        await listeners.start_tcp(tcp)
        if udp is not None:
            await listeners.start_udp(udp)

    def _registry(self) -> DeviceRegistry:
        assert self.registry is not None
        return self.registry

    def _stored_state(self, now: datetime, *, last: bool = True) -> StoredState:
        """What the store says; ``last=False`` skips the scan of recent signals (reloads
        need only the open supervision incidents: new devices get a full interval)."""

        assert self._engine is not None
        longest = max((d.checkin_seconds or 0 for d in self._registry().supervised()), default=0)
        horizon = timedelta(seconds=longest) + timedelta(days=1)
        return load_state(self._engine, now, horizon, last=last)

    def reload_devices(self) -> None:
        """Reads the registry and supervision state again (blocking: two or three queries)."""

        assert self._engine is not None
        registry = self.registry = DeviceRegistry.load(self._engine)  # what _stored_state reads
        state = None
        if self.supervisor is not None:
            state = self._stored_state(self.supervisor.clock(), last=False)
        self._swap(registry, state)

    def _swap(self, registry: DeviceRegistry, state: StoredState | None) -> None:
        """The new registry, to the receiver and (with its state) to the supervisor."""
        self.registry = registry
        if self.supervisor is not None and state is not None:
            self.supervisor.load(registry, state, startup=False)
        if self.receiver is not None:
            self.receiver.registry = registry

    def _setup_revision(self) -> int:
        assert self._engine is not None
        with self._engine.connect() as conn:
            return setup_revision(conn)

    async def _reload_forever(self) -> None:
        """Reads the devices again every ``devices_reload_seconds``, and within seconds of a
        set-up apply (a panel registered from the console is known to the receiver at once)."""
        every = self.settings.devices_reload_seconds
        seen = await asyncio.to_thread(self._setup_revision)
        last = time.monotonic()
        while True:
            await asyncio.sleep(min(SETUP_POLL_SECONDS, every))
            try:
                revision = await asyncio.to_thread(self._setup_revision)
                if revision == seen and time.monotonic() - last < every:
                    continue
                seen, last = revision, time.monotonic()
                # The queries run in a thread; the swap happens back on the loop.
                assert self._engine is not None
                registry = await asyncio.to_thread(DeviceRegistry.load, self._engine)
                supervisor, state = self.supervisor, None
                if supervisor is not None:
                    self.registry = registry  # what _stored_state reads
                    state = await asyncio.to_thread(
                        self._stored_state, supervisor.clock(), last=False
                    )
                self._swap(registry, state)
            except Exception:
                log.exception("reloading devices failed; keeping the previous registry")

    def _spawn(self, loop: asyncio.AbstractEventLoop, coro: Any, name: str) -> None:
        task = loop.create_task(coro, name=f"intake-{name}")
        task.add_done_callback(_report)
        self._tasks.append(task)

    def stop(self) -> None:
        """Stops listening, closes connections, cancels the tasks (synchronous)."""
        if self.listeners is not None:
            self.listeners.close()
        if self.mqtt is not None:
            self.mqtt.stopping = True
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
        if self.listeners is not None:
            await self.listeners.wait_closed()
        self._tasks.clear()


def _report(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("intake task %s ended", task.get_name(), exc_info=task.exception())
