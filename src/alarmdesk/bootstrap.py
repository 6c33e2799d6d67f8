"""The composition root: the only place that picks concrete adapters.

Tests build the same application through :func:`build_services` with their own database
URL, clock and settings.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from alarmdesk import logs
from alarmdesk.analytics.parts import PartStore
from alarmdesk.bus.checkins import CheckinRelay
from alarmdesk.bus.commands import CommandRelay
from alarmdesk.bus.hub import Hub
from alarmdesk.bus.jetstream import LogSettings
from alarmdesk.bus.link import LinkClient
from alarmdesk.bus.relay import EventRelay
from alarmdesk.clock import utcnow
from alarmdesk.config import Config
from alarmdesk.domain.events import IncidentEvent
from alarmdesk.domain.routing import compile_routes
from alarmdesk.intake.cap import load_mapping
from alarmdesk.intake.service import IntakeService
from alarmdesk.pipeline import CorrelationSettings, Pipeline
from alarmdesk.service.analytics import store_for
from alarmdesk.service.cluster import Node
from alarmdesk.service.metrics import Metric, audit_metrics, counter, gauge
from alarmdesk.service.standby import Elsewhere
from alarmdesk.service.webhooks import Deliverer, DelivererSettings
from alarmdesk.service.writer import Writer
from alarmdesk.store import repository as repo
from alarmdesk.store import tables
from alarmdesk.store.audit import AuditChain, Signer
from alarmdesk.store.database import make_engine, require_head

log = logs.get_logger(__name__)


def pipeline_factory(cfg: Config) -> Callable[[sa.Connection], Pipeline]:
    settings = CorrelationSettings(
        radius_m=cfg.correlation.radius_m,
        window=timedelta(minutes=cfg.correlation.window_minutes),
        confirmation=timedelta(minutes=cfg.correlation.confirmation_minutes),
    )

    def build(conn: sa.Connection) -> Pipeline:
        desks = repo.load_desks(conn)
        pipeline = Pipeline(
            repo.load_taxonomy(conn),
            desks,
            repo.load_units(conn),
            settings=settings,
            fallback_desk=cfg.routing.fallback_desk,
            next_incident_id=repo.highest_id(conn, tables.incidents) + 1,
            routes=compile_routes(repo.load_routes(conn), {d.id: d.area for d in desks}),
            silences=repo.load_silences(conn, utcnow()),
            policies=repo.load_policies(conn),
        )
        pipeline.restore(repo.load_unfinished_incidents(conn))
        return pipeline

    return build


@dataclass
class Services:
    """Everything a running alarmdesk holds: one engine, one writer, one hub."""

    config: Config
    engine: sa.Engine
    writer: Writer
    hub: Hub
    clock: Callable[[], datetime] = utcnow
    started: bool = field(default=False)
    intake: IntakeService | None = None  # DC-09, MQTT, supervision: when configured
    webhooks: Deliverer | None = None  # signed webhooks: when enabled
    # this node among others on one database (the leases name it): host, process, random
    node_id: str = field(default_factory=lambda: new_node_id())
    analytics: PartStore = field(init=False)  # the analytics store ([analytics] dir)
    # distributed mode ([nats] url): the intake log, the writer lease, the partitions
    node: Node | None = field(init=False, default=None)
    failed: bool = field(init=False, default=False)  # took the writer lease, could not start
    relay: EventRelay | None = field(init=False, default=None)  # events to and from other nodes
    checkins: CheckinRelay | None = field(init=False, default=None)  # device check-ins, too
    commands: CommandRelay | None = field(init=False, default=None)  # a standby's, to the writer
    # an HTTP worker ([server] workers): its link to the writer process of this machine
    link: LinkClient | None = field(default=None)

    def __post_init__(self) -> None:
        self.analytics = analytics_store(self.config, self.engine)
        nats = self.config.nats
        if nats.enabled:
            self.node = Node(
                LogSettings(nats.url, nats.stream, nats.replicas, nats.partitions),
                self.engine,
                self.node_id,
                ttl=timedelta(seconds=nats.lease_seconds),
                clock=self.clock,
            )
            self.writer.fence = self.node.fence

    async def connect_node(self) -> None:
        """Distributed mode, at start-up: connects to the intake log (a NATS or stream that
        does not answer fails start-up). From then on this node takes intake, standby or
        not: signals are queued in the log."""
        if self.node is not None:
            await self.node.connect()
            intake = self.node.intake
            assert intake.nc is not None
            self.relay = EventRelay(
                intake.nc, f"{intake.settings.stream}.events", self.node_id, self.hub
            )
            intake.on_reconnect.append(self.relay.reconnected)
            await self.relay.start()
            self.checkins = CheckinRelay(intake.nc, f"{intake.settings.stream}.checkins")
            # What a console on this node does while another node writes (service/standby.py)
            self.commands = CommandRelay(intake.nc, f"{intake.settings.stream}.commands")
            self.writer.elsewhere = Elsewhere(
                self.commands, self.engine, self.new_audit_chain(), self.clock
            )
            if self.config.intake.enabled:
                # Every node listens for panels and queues their frames in the log; the
                # one that writes supervises them all (bus/checkins.py). A taken port
                # fails start-up here.
                self.intake = IntakeService()
                self.intake.listen(
                    self, asyncio.get_running_loop(), self.config.intake, self.node, self.checkins
                )

    async def connect_link(self) -> None:
        """An HTTP worker, at start-up: connects to the writer process (whose link failing
        fails start-up), hands it the writer's work (service/standby.py) and offers its
        commits to this process's consoles."""
        assert self.link is not None  # the schema: checked by the writer process, its parent
        await self.link.connect(self.hub)
        self.writer.elsewhere = Elsewhere(
            self.link, self.engine, self.new_audit_chain(), self.clock, same_machine=True
        )
        self.hub_after_stored()  # after the link listens: a later commit is heard

    @property
    def writer_up(self) -> bool:
        """Whether work handed to this process's writer is done: its own thread runs, or (an
        HTTP worker) the link to the writer process is up and its writer runs."""
        if self.link is not None:
            return self.link.up and self.link.writing
        return self.writer.alive

    @property
    def writer_backlog(self) -> int:
        """Requests waiting for the writer: this process's, or (an HTTP worker) the writer
        process's as it last said (within a second)."""
        return self.link.backlog if self.link is not None else self.writer.backlog

    @property
    def standby(self) -> bool:
        """Distributed mode: waiting for the writer lease while another node writes. A
        standby takes HTTP and DC-09 intake into the log, serves consoles and answers
        probes; it stores nothing itself (whatever needs the writer answers 503) and runs no
        supervision, MQTT client or CAP feeds."""
        return self.node is not None and not self.started and not self.failed

    async def become_writer(self, loop: asyncio.AbstractEventLoop) -> None:
        """Distributed mode: waits for the writer lease (as a standby), then starts the
        writer, supervision (hearing every node's check-ins), MQTT and CAP feeds, consuming
        the partitions and webhook delivery."""
        assert self.node is not None
        await self.node.take_writer()

        async def writer_lost() -> None:
            if self.commands is not None:
                await self.commands.stop_serving()  # the standbys ask the next writer
            await asyncio.to_thread(self.writer.stop)

        self.node.on_writer_lost = writer_lost
        try:
            self.start(loop)
        except Exception:
            # e.g. a device receiver's port taken: /healthz turns 503 (no writer, no longer a
            # standby), so the node's supervisor restarts it; the lease lapses meanwhile
            self.failed = True
            log.exception("this node took the writer lease but could not start writing")
            await self.node.close()
            return
        if self.intake is not None and self.intake.supervisor is not None:
            assert self.checkins is not None
            await self.checkins.listen(self.intake.supervisor.checkin)
        if self.commands is not None:
            await self.commands.serve(self.writer.side())
        self.node.start_consuming(self.writer)
        self.start_webhooks(loop)

    async def stop_node(self) -> None:
        """Stops consuming (a batch in hand is committed first) and gives partitions back."""
        if self.node is not None:
            await self.node.stop()

    async def close_node(self) -> None:
        """After :meth:`stop`: gives the writer lease back and leaves NATS."""
        if self.commands is not None:
            await self.commands.stop_serving()
        if self.checkins is not None:
            await self.checkins.stop_listening()
        if self.relay is not None:
            await self.relay.close()
        if self.node is not None:
            await self.node.close()

    def _offer(self, events: list[IncidentEvent]) -> None:
        """A commit's events to this node's consoles, and to the other nodes' (distributed
        mode). On the hub's loop, after the commit."""
        self.hub.publish(events)
        if self.relay is not None:
            self.relay.send(events)

    def hub_after_stored(self) -> None:
        """Starts the hub after the newest stored event: a console opened before the first
        commit since start-up (its page reads the present state) streams from there,
        instead of replaying the whole events table from event 0. On a single node, after
        the writer started (its first commit is offered on this loop, later); on a standby,
        once its relay listens: a commit stored before is in the table the page reads, one
        stored after is published after, so it is heard. Either way a commit already
        offered is kept (the larger id counts)."""
        with self.engine.connect() as conn:
            newest = repo.last_event_id(conn)
        self.hub.last_id = max(self.hub.last_id, newest)

    def check_schema(self) -> None:
        """Raises unless the database is at this alarmdesk's schema (``alarmdesk db upgrade``)."""
        require_head(self.engine)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Checks the schema, loads state and starts the writer (publishing on ``loop``)."""
        self.check_schema()

        def publish(events: list[IncidentEvent]) -> None:
            loop.call_soon_threadsafe(self._offer, events)

        self.writer.publish = publish
        self.writer.start()
        self.started = True
        if self.config.intake.enabled:
            # On the running loop (the web app's lifespan): binds its ports now, serves as
            # tasks. A taken port fails start-up here. In distributed mode the node listens
            # already (connect_node); the writer adds what runs once.
            try:
                if self.intake is None:
                    self.intake = IntakeService()
                    self.intake.start(self, loop, self.config.intake)
                else:
                    self.intake.supervise(self, loop)
            except BaseException:
                self.stop()
                raise

    def scraped(self) -> Iterator[Metric]:
        """What the components count for themselves, read when Prometheus scrapes."""
        yield gauge(
            "alarmdesk_pipeline_backlog", "Requests waiting for the writer", self.writer.backlog
        )
        yield gauge(
            "alarmdesk_sse_clients", "Live-stream clients connected", len(self.hub.subscribers)
        )
        yield gauge("alarmdesk_writer_up", "1 while the writer runs", int(self.writer_up))
        intake = self.intake
        if intake is not None and intake.receiver is not None:
            stats = intake.receiver.stats
            replies = {k.split(".", 1)[1]: v for k, v in stats.items() if k.startswith("replies.")}
            yield counter("alarmdesk_dc09_replies", "DC-09 replies sent, by kind", replies, "reply")
            refused = {k.split(".", 1)[1]: v for k, v in stats.items() if k.startswith("rejected.")}
            yield counter(
                "alarmdesk_dc09_rejected", "DC-09 frames refused, by reason", refused, "reason"
            )
        if intake is not None and intake.mqtt is not None:
            m = intake.mqtt.stats
            yield counter(
                "alarmdesk_mqtt_messages",
                "MQTT messages, by what became of them",
                {
                    k: m[k]
                    for k in ("received", "acknowledged", "invalid", "too_large", "store_failures")
                },
                "outcome",
            )

    def start_webhooks(self, loop: asyncio.AbstractEventLoop) -> None:
        """Starts delivering to webhook subscriptions (``[webhooks] enabled``), on the running
        loop of a server: it is the server's job, beside serving requests."""
        if not self.config.webhooks.enabled or self.webhooks is not None:
            return
        w = self.config.webhooks
        self.webhooks = Deliverer(
            self.engine,
            self.writer.run,
            self.clock,
            DelivererSettings(
                max_attempts=w.max_attempts,
                backoff_seconds=w.backoff_seconds,
                backoff_cap_seconds=w.backoff_cap_seconds,
                timeout_seconds=w.timeout_seconds,
                poll_seconds=w.poll_seconds,
            ),
        )
        self.webhooks.start(loop)

    def new_audit_chain(self) -> AuditChain:
        """An appender of the audit log of its own (for a job beside the writer)."""
        return audit_chain(self.config)

    def stop(self) -> None:
        if self.webhooks is not None:
            self.webhooks.stop()  # its tasks end with the loop; a delivery in flight is redone
            self.webhooks = None
        if self.intake is not None:
            self.intake.stop()  # first: nothing new reaches the writer while it stops
            self.intake = None
        self.writer.stop()
        self.hub.close()
        self.engine.dispose()
        self.started = False


def analytics_store(cfg: Config, engine: sa.Engine) -> PartStore:
    """The analytics store of ``engine``'s database, in ``[analytics] dir``."""
    return store_for(cfg.analytics.dir, engine)


def audit_chain(cfg: Config) -> AuditChain:
    return AuditChain(
        Signer.load_or_create(cfg.audit.key_file),
        cfg.audit.origin,
        every=cfg.audit.checkpoint_every,
        interval=timedelta(minutes=cfg.audit.checkpoint_minutes),
    )


def new_node_id() -> str:
    """A name for this process that no other node shares, readable in the leases table."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


MQTT_OUTCOMES = ("received", "acknowledged", "invalid", "too_large", "store_failures")


def build_services(cfg: Config, *, clock: Callable[[], datetime] = utcnow) -> Services:
    cfg.check()
    load_mapping(cfg.intake.cap_mapping)  # a bad CAP mapping table fails start-up, not an alert
    engine = make_engine(cfg.database.url)
    writer = Writer(
        engine,
        pipeline_factory(cfg),
        max_batch=cfg.writer.max_batch,
        gather=cfg.writer.gather_ms / 1000,
        clock=clock,
        audit=audit_chain(cfg),
    )
    svc = Services(cfg, engine, writer, Hub(cfg.stream.client_queue), clock)
    writer.metrics.watch(svc.scraped)
    writer.metrics.watch(audit_metrics(engine, clock))
    return svc
