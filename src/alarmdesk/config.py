"""Configuration: a TOML file, then environment variables over it.

    ALARMDESK_CONFIG        path of the TOML file (default: ./alarmdesk.toml if present)
    ALARMDESK_DATABASE_URL  sqlite:///path/to.db (default var/alarmdesk.db) or postgresql://…
    ALARMDESK_HOST / ALARMDESK_PORT   where `alarmdesk serve` listens
    ALARMDESK_DC09_PORT     the SIA DC-09 receiver's TCP and UDP port (default: off)
    ALARMDESK_MQTT_URL      mqtt://host:port of the broker for cameras (default: off)
    ALARMDESK_FRIGATE_URL   http://host:port of Frigate's API, for video on incidents (default: off)
    ALARMDESK_ANALYTICS_DIR the analytics store's directory (default var/analytics)
    ALARMDESK_NATS_URL      nats://host:port of NATS JetStream: distributed mode (default: off)

Every key of the file is documented in docs/configuration.md; unknown keys are refused so
a typo never silently leaves a default in force.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated

import msgspec

from alarmdesk.domain.errors import ConfigError
from alarmdesk.intake.types import IntakeConfig, check_frigate_url
from alarmdesk.safeguards.retention_policy import ReportConfig, RetentionConfig

Positive = Annotated[float, msgspec.Meta(gt=0)]


class DatabaseConfig(msgspec.Struct, forbid_unknown_fields=True):
    url: str = "sqlite:///var/alarmdesk.db"


class ServerConfig(msgspec.Struct, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    # Slow clients (web/server.py): a request's headers must be complete this long after the
    # connection (or its first byte), its body this long after the request starts; an idle
    # connection is closed this long after a response.
    header_timeout_seconds: Positive = 10.0
    body_timeout_seconds: Positive = 30.0
    keep_alive_seconds: Positive = 5.0
    # HTTP worker processes in front of the writer process (web/workers.py): 0 serves HTTP in
    # the one process that writes; N > 0 lets HTTP use N more cores (docs/operations.md)
    workers: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0


class WriterConfig(msgspec.Struct, forbid_unknown_fields=True):
    max_batch: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 2000
    # under load (the last transaction held 8 requests or more), how long the writer waits for
    # more requests before it commits: one flush serves more of them; 0 never waits
    gather_ms: Annotated[float, msgspec.Meta(ge=0, le=50)] = 0.5
    # /readyz answers 503 while more requests than this wait for the writer
    ready_backlog: Annotated[int, msgspec.Meta(ge=1)] = 10_000


class MetricsConfig(msgspec.Struct, forbid_unknown_fields=True):
    # GET /metrics for Prometheus: counts and durations only, never incident data; serve it
    # to the monitoring network (or turn it off)
    enabled: bool = True


class CorrelationConfig(msgspec.Struct, forbid_unknown_fields=True):
    radius_m: Positive = 200.0  # calls and duty reports within this distance fold together
    window_minutes: Positive = 30.0  # … if the incident's last signal is this recent
    # An intruder alarm is confirmed by another zone of its panel within this time (BS 8243).
    confirmation_minutes: Positive = 30.0


class RoutingConfig(msgspec.Struct, forbid_unknown_fields=True):
    fallback_desk: str | None = None  # sees what no desk claims; default: the first desk


class StreamConfig(msgspec.Struct, forbid_unknown_fields=True):
    heartbeat_seconds: Positive = 15.0
    client_queue: Annotated[int, msgspec.Meta(ge=10)] = 2000
    # An open stream re-reads its credential this often: a token revoked or a session ended
    # by another process (the command line), or a session expired, ends it within this time.
    recheck_seconds: Positive = 30.0


class LimitsConfig(msgspec.Struct, forbid_unknown_fields=True):
    max_signal_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 64 * 1024
    max_batch_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 8 * 1024 * 1024


class AuthConfig(msgspec.Struct, forbid_unknown_fields=True):
    session_hours: Positive = 12.0  # a console session lasts a shift
    cookie_secure: bool | None = None  # None: Secure whenever the request came over TLS
    login_failures_per_name: Annotated[int, msgspec.Meta(ge=1)] = 5
    login_failures_per_address: Annotated[int, msgspec.Meta(ge=1)] = 20
    login_window_seconds: Positive = 900.0


class AuditConfig(msgspec.Struct, forbid_unknown_fields=True):
    key_file: str = "var/audit-signing.key"  # Ed25519 signer; created on first use (0600)
    origin: str = "alarmdesk/audit"  # the log's name in its signed checkpoints
    checkpoint_every: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1000  # entries
    checkpoint_minutes: Annotated[float, msgspec.Meta(gt=0, le=15)] = 15.0


class WebhooksConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Delivery of events to subscribed URLs (docs/webhooks.md)."""

    enabled: bool = True  # deliver while serving; subscriptions are made with `alarmdesk webhooks`
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=30)] = 8
    backoff_seconds: Positive = 5.0  # after the first failure; doubled after each next one
    backoff_cap_seconds: Positive = 3600.0
    timeout_seconds: Positive = 10.0  # per attempt
    poll_seconds: Positive = 0.5  # how often an idle subscription looks for new events


class ConsoleConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The map's background (docs/console.md); empty: the offline basemap shipped inside."""

    tile_url: str = ""  # e.g. https://tiles.example.org/{z}/{x}/{y}.png
    tile_attribution: str = ""
    tile_max_zoom: Annotated[int, msgspec.Meta(ge=1, le=24)] | None = None  # None: env, else 19
    pmtiles: str = ""  # URL, or a file path served by alarmdesk with range requests
    basemap_geojson: str = ""  # the city's own GeoJSON instead of the demo city's


class SharingConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Who the centre is to the agencies it shares incidents with (docs/sharing.md)."""

    # The centre's Agency Identifier: a domain name it holds, globally unique (NENA i3).
    agency_id: Annotated[
        str,
        msgspec.Meta(
            min_length=3, max_length=253, pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$"
        ),
    ] = "centre.invalid"
    agency_name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "alarmdesk"
    # IANA urn:emergency:service:responder values, without that prefix (police, fire, ems…).
    agency_types: list[Annotated[str, msgspec.Meta(min_length=1, max_length=100)]] = msgspec.field(
        default_factory=lambda: ["psap"]
    )
    # unit kind → EIDO-EmergencyResourceType-Common value, over interop/eido.RESOURCE_TYPES.
    eido_resource_types: dict[str, str] = msgspec.field(default_factory=dict)


class CapConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Public warnings published as CAP 1.2 (docs/cap.md); CAP in is under ``[intake]``."""

    sender: Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\s,<&]+$")] = (
        "alarmdesk@example.invalid"  # CAP <sender>: no spaces, commas, < or &
    )
    sender_name: Annotated[str, msgspec.Meta(max_length=200)] = "alarmdesk"
    language: Annotated[str, msgspec.Meta(min_length=2, max_length=35)] = "en-US"
    # Where the public reaches alarmdesk (https://warnings.example.org, a path behind a proxy
    # allowed): the Atom feed's id and links are built from it, never from the request's Host.
    # Empty: from the request, answered with Vary: Host and Cache-Control: no-cache.
    public_url: Annotated[
        str, msgspec.Meta(max_length=2000, pattern=r"^(https?://[^\s/?#@]+(/[^\s?#]*)?)?$")
    ] = ""


class AnalyticsConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The analytics store: finished calls as Parquet, KPIs with DuckDB (docs/analytics.md)."""

    dir: str = "var/analytics"  # one directory per database: it records whose calls it holds
    # While serving, finished calls are exported this often (0: only by `analytics export`
    # and before each KPI report, which exports what is new first).
    export_minutes: Annotated[float, msgspec.Meta(ge=0)] = 15.0


class NatsConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Distributed mode (docs/operations.md, "Several nodes"): NATS JetStream as the intake
    log. ``url`` empty: one machine, signals go straight to the writer as always."""

    url: str = ""  # nats://host:4222 (several servers: comma-separated)
    # The stream that holds signals until a node has committed them; its subjects are
    # ``<stream>.intake.<partition>``.
    stream: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = "ALARMDESK_INTAKE"
    replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1  # 3 on a three-server cluster
    # Signals are split by correlation scope into this many partitions, each consumed in
    # order by one node at a time. Fixed for the life of a stream (a node refuses another
    # count while the stream holds signals).
    partitions: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 16
    # The writer, partition and heartbeat leases' time to live; renewed every third of it.
    # A node that dies is replaced this long after (plus one renewal).
    lease_seconds: Annotated[float, msgspec.Meta(ge=1, le=300)] = 15.0

    @property
    def enabled(self) -> bool:
        return bool(self.url)


class Config(msgspec.Struct, forbid_unknown_fields=True):
    database: DatabaseConfig = msgspec.field(default_factory=DatabaseConfig)
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    writer: WriterConfig = msgspec.field(default_factory=WriterConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    correlation: CorrelationConfig = msgspec.field(default_factory=CorrelationConfig)
    routing: RoutingConfig = msgspec.field(default_factory=RoutingConfig)
    stream: StreamConfig = msgspec.field(default_factory=StreamConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    audit: AuditConfig = msgspec.field(default_factory=AuditConfig)
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)
    report: ReportConfig = msgspec.field(default_factory=ReportConfig)
    console: ConsoleConfig = msgspec.field(default_factory=ConsoleConfig)
    webhooks: WebhooksConfig = msgspec.field(default_factory=WebhooksConfig)
    intake: IntakeConfig = msgspec.field(default_factory=IntakeConfig)
    sharing: SharingConfig = msgspec.field(default_factory=SharingConfig)
    cap: CapConfig = msgspec.field(default_factory=CapConfig)
    analytics: AnalyticsConfig = msgspec.field(default_factory=AnalyticsConfig)
    nats: NatsConfig = msgspec.field(default_factory=NatsConfig)

    def check(self) -> None:
        """Checks what no single section can: called once every override is applied.

        Raises:
            ConfigError: distributed mode on a database other than PostgreSQL, or with HTTP
                workers.
        """
        if self.nats.enabled and not self.database.url.startswith(("postgres://", "postgresql")):
            raise ConfigError(
                "distributed mode ([nats] url, ALARMDESK_NATS_URL) needs PostgreSQL: the "
                "nodes share one database. SQLite is for one machine: leave [nats] url empty"
            )
        if self.nats.enabled and self.server.workers:
            raise ConfigError(
                "[server] workers is for one machine: in distributed mode run more nodes "
                "instead (leave workers at 0)"
            )


def load(path: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Config:
    """Reads the file (if any) and applies the environment over it."""
    env = dict(os.environ) if env is None else env
    raw: dict[str, object] = {}
    path = path or env.get("ALARMDESK_CONFIG")
    if path is None and Path("alarmdesk.toml").is_file():
        path = "alarmdesk.toml"
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"cannot read configuration {path}: not UTF-8 text (byte {exc.start}: "
                f"{exc.object[exc.start : exc.start + 1]!r})"
            ) from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read configuration {path}: {exc}") from None
    try:
        cfg = msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"configuration {path}: {exc}") from None
    if url := env.get("ALARMDESK_DATABASE_URL"):
        cfg.database.url = url
    if host := env.get("ALARMDESK_HOST"):
        cfg.server.host = host
    if dc09 := env.get("ALARMDESK_DC09_PORT"):
        try:
            cfg.intake.dc09_port = int(dc09)
        except ValueError:
            raise ConfigError(f"ALARMDESK_DC09_PORT must be a number, not {dc09!r}") from None
    if mqtt := env.get("ALARMDESK_MQTT_URL"):
        cfg.intake.mqtt_url = mqtt
    if frigate := env.get("ALARMDESK_FRIGATE_URL"):
        try:
            check_frigate_url(frigate)
        except ValueError as exc:
            raise ConfigError(f"ALARMDESK_FRIGATE_URL: {exc}") from None
        cfg.intake.frigate_url = frigate
    if analytics := env.get("ALARMDESK_ANALYTICS_DIR"):
        cfg.analytics.dir = analytics
    if nats_url := env.get("ALARMDESK_NATS_URL"):
        cfg.nats.url = nats_url
    if port := env.get("ALARMDESK_PORT"):
        try:
            cfg.server.port = int(port)
        except ValueError:
            raise ConfigError(f"ALARMDESK_PORT must be a number, not {port!r}") from None
    return cfg
