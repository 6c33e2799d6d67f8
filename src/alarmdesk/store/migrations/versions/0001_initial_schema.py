"""initial schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Storage types, spelled out here so this migration never changes when the code does.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UTC_DATETIME = sa.DateTime(timezone=True)

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desks",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "categories",
            JSON,
            nullable=False,
        ),
        sa.Column(
            "source_kinds",
            JSON,
            nullable=False,
        ),
        sa.Column(
            "jurisdiction",
            JSON,
            nullable=True,
        ),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_desks")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column(
            "zones",
            JSON,
            nullable=False,
        ),
        sa.Column("checkin_seconds", sa.Integer(), nullable=True),
        sa.Column(
            "settings",
            JSON,
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column(
            "desks",
            JSON,
            nullable=False,
        ),
        sa.Column(
            "detail",
            JSON,
            nullable=False,
        ),
        sa.Column(
            "snapshot",
            JSON,
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_events_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "incident_desks",
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("desk_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "desk_id", name=op.f("pk_incident_desks")),
    )
    with op.batch_alter_table("incident_desks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_desks_desk_id"), ["desk_id"], unique=False)

    op.create_table(
        "incident_types",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("definition", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "sop",
            JSON,
            nullable=False,
        ),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_incident_types")),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type_code", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column(
            "location",
            JSON,
            nullable=True,
        ),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("correlation_key", sa.String(length=400), nullable=True),
        sa.Column(
            "desks",
            JSON,
            nullable=False,
        ),
        sa.Column(
            "units",
            JSON,
            nullable=False,
        ),
        sa.Column("signal_count", sa.Integer(), nullable=False),
        sa.Column("disposition", sa.String(length=32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("first_seen", UTC_DATETIME, nullable=False),
        sa.Column("last_seen", UTC_DATETIME, nullable=False),
        sa.Column("opened_at", UTC_DATETIME, nullable=False),
        sa.Column("acknowledged_at", UTC_DATETIME, nullable=True),
        sa.Column("dispatched_at", UTC_DATETIME, nullable=True),
        sa.Column("on_scene_at", UTC_DATETIME, nullable=True),
        sa.Column("resolved_at", UTC_DATETIME, nullable=True),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.Column("cancelled_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incidents_opened_at"), ["opened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_priority"), ["priority"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_type_code"), ["type_code"], unique=False)

    op.create_table(
        "signals",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("idempotency_key", sa.String(length=220), nullable=False),
        sa.Column("content_digest", sa.String(length=32), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("type_code", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", UTC_DATETIME, nullable=False),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.Column(
            "location",
            JSON,
            nullable=True,
        ),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            JSON,
            nullable=False,
        ),
        sa.Column("condition", sa.String(length=16), nullable=False),
        sa.Column("record_only", sa.Boolean(), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_signals_idempotency_key")),
    )
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signals_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "stations",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )
    op.create_table(
        "units",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=True),
        sa.Column(
            "capabilities",
            JSON,
            nullable=False,
        ),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_units_station_id_stations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
    )


def downgrade() -> None:
    op.drop_table("units")
    op.drop_table("stations")
    with op.batch_alter_table("signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signals_incident_id"))

    op.drop_table("signals")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incidents_type_code"))
        batch_op.drop_index(batch_op.f("ix_incidents_status"))
        batch_op.drop_index(batch_op.f("ix_incidents_priority"))
        batch_op.drop_index(batch_op.f("ix_incidents_opened_at"))

    op.drop_table("incidents")
    op.drop_table("incident_types")
    with op.batch_alter_table("incident_desks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_desks_desk_id"))

    op.drop_table("incident_desks")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_incident_id"))

    op.drop_table("events")
    op.drop_table("devices")
    op.drop_table("desks")
