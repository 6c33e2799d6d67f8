"""The schema, as SQLAlchemy Core tables (not the ORM: Core is ~20× faster on inserts).

Times are stored in UTC; ``UTCDateTime`` gives aware datetimes back on every dialect.
The migrations in ``migrations/versions`` create exactly this schema; a test compares them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect


def stored_utc(value: datetime | None) -> datetime | None:
    """A time as the store gives it back: aware, in UTC (SQLite keeps no offset by itself,
    so its times are read as UTC). ``UTCDateTime`` reads through it, and so do the writer's
    driver-level reads (``bulk.stored_time``)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out (SQLite keeps no offset by itself)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; alarmdesk keeps UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return stored_utc(value)


JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    }
)

incident_types = sa.Table(
    "incident_types",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("definition", sa.Text, nullable=False, server_default=""),
    sa.Column("sop", JSONType, nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),  # or pending
    sa.Column("purpose", sa.Text, nullable=False, server_default=""),
    sa.Column("legal_basis", sa.Text, nullable=False, server_default=""),
    sa.Column("author", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=True),
)

desks = sa.Table(
    "desks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("categories", JSONType, nullable=False),  # [] = all
    sa.Column("source_kinds", JSONType, nullable=False),  # [] = all
    sa.Column("jurisdiction", JSONType, nullable=True),  # GeoJSON Polygon/MultiPolygon
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
)


def _rules(name: str) -> sa.Table:
    """A kind of rule of the centre's set-up, kept whole (``spec``) and in file order."""
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("spec", JSONType, nullable=False),
    )


# The routing tree: one row per top-level rule, its children inside.
routing_rules = _rules("routing_rules")
# Escalation policies; an incident keeps a copy of the one it opened under.
escalation_policies = _rules("escalation_policies")
# Response plans: what each type of incident needs.
response_plans = _rules("response_plans")
# A centre's own procedures (SOPs), by incident type code: they replace the type's default.
procedures = _rules("procedures")

# One row: moved by every set-up apply that changes something, read by the running writer.
setup_revision = sa.Table(
    "setup_revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

stations = sa.Table(
    "stations",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("lat", sa.Float, nullable=True),
    sa.Column("lon", sa.Float, nullable=True),
)

units = sa.Table(
    "units",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("station_id", sa.String(64), sa.ForeignKey("stations.id"), nullable=True),
    sa.Column("capabilities", JSONType, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("incident_id", sa.BigInteger, nullable=True),
    sa.Column("lat", sa.Float, nullable=True),
    sa.Column("lon", sa.Float, nullable=True),
    sa.Column("status_at", UTCDateTime, nullable=True),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),  # DC-09 account or camera id
    sa.Column("kind", sa.String(32), nullable=False),  # panel | camera | sensor
    sa.Column("site", sa.String(200), nullable=False),
    sa.Column("lat", sa.Float, nullable=True),
    sa.Column("lon", sa.Float, nullable=True),
    sa.Column("zones", JSONType, nullable=False),
    sa.Column("checkin_seconds", sa.Integer, nullable=True),
    sa.Column("settings", JSONType, nullable=False),
)

_SILENCED = sa.text("silenced_by IS NOT NULL")  # the partial index's rows, on both databases

signals = sa.Table(
    "signals",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("idempotency_key", sa.String(220), nullable=False, unique=True),
    sa.Column("content_digest", sa.String(32), nullable=False),
    sa.Column("source_kind", sa.String(16), nullable=False),
    sa.Column("source_id", sa.String(128), nullable=False),
    sa.Column("type_code", sa.String(32), nullable=False),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("location", JSONType, nullable=True),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("condition", sa.String(16), nullable=False),
    sa.Column("record_only", sa.Boolean, nullable=False),
    sa.Column("incident_id", sa.BigInteger, nullable=True, index=True),
    sa.Column("silenced_by", sa.BigInteger, nullable=True),  # silences.id
    # Only the signals a silence held back (few): the others, nearly all, add no entry and
    # no page to write (bench/README.md, "What a commit writes").
    sa.Index(
        "ix_signals_silenced_by_id",
        "silenced_by",
        "id",
        sqlite_where=_SILENCED,
        postgresql_where=_SILENCED,
    ),
)

# Public warnings published as CAP 1.2 (docs/cap.md): the document as served, byte for byte.
cap_alerts = sa.Table(
    "cap_alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("identifier", sa.String(200), nullable=False, unique=True),
    sa.Column("incident_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("msg_type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("sent", UTCDateTime, nullable=False),
    sa.Column("refs", sa.Text, nullable=True),  # CAP <references>: sender,identifier,sent
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("document", sa.Text, nullable=False),
    sa.Column("published_by", sa.String(64), nullable=False),
)

# Silences: maintenance windows and known faults; signals they hold back are stored, not alarmed.
silences = sa.Table(
    "silences",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("spec", JSONType, nullable=False),  # domain.silences.SilenceSpec
    sa.Column("author", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("ended_by", sa.String(64), nullable=True),
)

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("type_code", sa.String(32), nullable=False, index=True),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("condition", sa.String(16), nullable=False),
    sa.Column("source_kind", sa.String(16), nullable=False),
    sa.Column("source_id", sa.String(128), nullable=False),
    sa.Column("location", JSONType, nullable=True),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("correlation_key", sa.String(400), nullable=True),
    sa.Column("desks", JSONType, nullable=False),
    sa.Column("routed_by", JSONType, nullable=True),  # ids of the routing rules that chose them
    sa.Column("escalation", JSONType, nullable=True),  # the frozen policy and its timers
    sa.Column("procedure", JSONType, nullable=True),  # the type's checklist, steps ticked
    sa.Column("confirmed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("verification", JSONType, nullable=True),  # the latest video verdict, who, when
    sa.Column("en_route_at", UTCDateTime, nullable=True),
    sa.Column("units", JSONType, nullable=False),
    sa.Column("signal_count", sa.Integer, nullable=False),
    sa.Column("disposition", sa.String(32), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False, index=True),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("dispatched_at", UTCDateTime, nullable=True),
    sa.Column("on_scene_at", UTCDateTime, nullable=True),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("cancelled_at", UTCDateTime, nullable=True),
    # The queue's filter and first order (status, then priority) in one index: its counts
    # are read from the index alone, and a new incident adds one entry where two indexes
    # (status; priority) took one each.
    sa.Index("ix_incidents_status_priority", "status", "priority"),
)

# A centre's call history imported from its old CAD (docs/analytics.md). Kept apart from
# ``incidents``: the running writer assigns incident ids itself, so another process must not
# insert incidents. One row per call, unique by import source and the export's call id
# (importing the same file twice adds nothing); the phase times are the call's (first unit's,
# last unit's for cleared). ``closed_at`` is the call's last recorded time: retention erases
# a call under the incidents class, counted from it.
history_calls = sa.Table(
    "history_calls",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("call_id", sa.String(200), nullable=False),
    sa.Column("type_code", sa.String(32), nullable=False),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("priority", sa.SmallInteger, nullable=False),
    sa.Column("station_area", sa.String(100), nullable=True),
    sa.Column("lat", sa.Float, nullable=True),
    sa.Column("lon", sa.Float, nullable=True),
    sa.Column("received", UTCDateTime, nullable=False, index=True),
    sa.Column("answered", UTCDateTime, nullable=True),
    sa.Column("entered", UTCDateTime, nullable=True),
    sa.Column("dispatched", UTCDateTime, nullable=True),
    sa.Column("en_route", UTCDateTime, nullable=True),
    sa.Column("on_scene", UTCDateTime, nullable=True),
    sa.Column("transport", UTCDateTime, nullable=True),
    sa.Column("cleared", UTCDateTime, nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=False, index=True),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("source", "call_id"),
)

# The units of an imported call, in the export's order (``position``: ties go to the unit
# listed first), with their own phase times: unit-kind KPIs time each kind by its units.
history_units = sa.Table(
    "history_units",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("history_call_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("unit_id", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(100), nullable=True),
    sa.Column("dispatched", UTCDateTime, nullable=True),
    sa.Column("en_route", UTCDateTime, nullable=True),
    sa.Column("on_scene", UTCDateTime, nullable=True),
    sa.Column("transport", UTCDateTime, nullable=True),
    sa.Column("cleared", UTCDateTime, nullable=True),
)

# A supervisor's saved KPI report: its query as data (service/saved_reports.py), purpose-screened
# when saved; run again over the last ``days`` days whenever it is asked for.
saved_reports = sa.Table(
    "saved_reports",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("spec", JSONType, nullable=False),
    sa.Column("saved_by", sa.String(128), nullable=False),
    sa.Column("saved_at", UTCDateTime, nullable=False),
)

# Leases: a job that must run on one node at a time across a cluster (retention) is run by the
# node holding its lease until ``expires_at``; ``token`` grows at every change of holder (a
# fencing token: a node that lost its lease can tell).
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# Distributed mode: a signal taken from the intake log that failed alone, try after try, on
# what may be its own fault (a defect it meets), is parked here so that its partition goes
# on (docs/operations.md, "A signal that cannot be stored"). ``queued`` is the log's message
# (bus/jetstream.QueuedSignal) as it was; ``retry`` puts it back into the log. Signal data:
# erased with the signals class of the retention policy, counted from ``received_at``.
parked_signals = sa.Table(
    "parked_signals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.String(300), nullable=False, unique=True),
    sa.Column("partition", sa.Integer, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False, index=True),
    sa.Column("queued", JSONType, nullable=False),
    sa.Column("error", sa.String(500), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("parked_at", UTCDateTime, nullable=False),
    sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("retried_at", UTCDateTime, nullable=True),
)

# Which desks an incident is routed to, for filtering the queue by desk with an index.
incident_desks = sa.Table(
    "incident_desks",
    metadata,
    sa.Column("incident_id", sa.BigInteger, primary_key=True),
    sa.Column("desk_id", sa.String(64), primary_key=True, index=True),
)

# One row per thing that happened to an incident: its timeline, and the outbox the live
# stream publishes from (ids are monotonic: ``Last-Event-ID`` replays from here).
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("incident_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("desks", JSONType, nullable=False),
    sa.Column("detail", JSONType, nullable=False),
    sa.Column("snapshot", JSONType, nullable=False),
)


# The highest id ever given to an incident, a signal and an event (one row each, made by the
# schema's migration), raised by retention before it erases rows: the writer numbers from
# the larger of this and the highest id stored, so an id is never given twice, even after
# the newest rows were erased. An audit entry, a webhook delivery, an export or a console's
# Last-Event-ID names one thing for ever.
id_marks = sa.Table(
    "id_marks",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),  # the table's name
    sa.Column("high", sa.BigInteger, nullable=False),
)


# Webhook subscriptions: events POSTed to another system, signed; ``cursor`` is the last event
# id handled (delivered, given up on, or not wanted), so a restart resumes after it.
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("events", JSONType, nullable=False),
    sa.Column("desks", JSONType, nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("secret", sa.String(100), nullable=False),  # write-only: never shown after creation
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("removed_at", UTCDateTime, nullable=True),
    sa.Column("cursor", sa.BigInteger, nullable=False),
    sa.Column("failed_events", sa.Integer, nullable=False, server_default="0"),
)

# Every delivery attempt: the delivery log.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("webhook_id", sa.Integer, nullable=False, index=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    # indexed for retention, which erases an incident's deliveries with it (migration 0019)
    sa.Column("incident_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # delivered | retry | failed
    sa.Column("status", sa.Integer, nullable=True),  # the HTTP status, when there was one
    sa.Column("error", sa.String(200), nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)


def row(table: sa.Table, **values: Any) -> dict[str, Any]:
    """A row dict with only the table's columns (guards against typos in writers)."""
    if not _column_names(table).issuperset(values):  # the writer calls this per signal
        unknown = set(values) - _column_names(table)
        raise KeyError(f"{table.name} has no column(s) {sorted(unknown)}")
    return values


@cache
def _column_names(table: sa.Table) -> frozenset[str]:
    return frozenset(table.c.keys())


# -- accounts ------------------------------------------------------------------------------------

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),  # argon2id
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("desks", JSONType, nullable=False),  # ["north"], or ["*"]
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("disabled_at", UTCDateTime, nullable=True),
)

# API tokens are stored as SHA-256 of the secret: a database leak gives no usable token.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("desks", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

# Sessions too are kept by hash; the cookie holds the only copy of the secret.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# -- the audit log (kept apart from what it audits) ------------------------------------------------

# One row per entry, a leaf of the Merkle tree. Retention may erase ``entry`` (content) but
# never ``leaf_hash``: the tree, and every checkpoint, stay verifiable after a purge.
audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("entry", sa.Text, nullable=True),  # canonical JSON; NULL once erased
)

# Signed checkpoints (C2SP tlog-checkpoint notes) with the tree's frontier at that size, so
# a restart resumes the tree without rereading every leaf.
audit_checkpoints = sa.Table(
    "audit_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("frontier", JSONType, nullable=False),  # hex hashes
)

# Custom incident types wait for two approvals (a rights officer and one other user,
# neither the author) before they take effect.
incident_type_approvals = sa.Table(
    "incident_type_approvals",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("approver", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
)
