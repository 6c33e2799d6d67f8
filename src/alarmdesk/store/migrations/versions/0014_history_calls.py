"""call history imported from a CAD export: calls and their units

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

UTC_DATETIME = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNIT_PHASES = ("dispatched", "en_route", "on_scene", "transport", "cleared")

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "history_calls",
        sa.Column("id", ID, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=200), nullable=False),
        sa.Column("type_code", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.SmallInteger(), nullable=False),
        sa.Column("station_area", sa.String(length=100), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("received", UTC_DATETIME, nullable=False),
        sa.Column("answered", UTC_DATETIME, nullable=True),
        sa.Column("entered", UTC_DATETIME, nullable=True),
        *(sa.Column(name, UTC_DATETIME, nullable=True) for name in UNIT_PHASES),
        sa.Column("closed_at", UTC_DATETIME, nullable=False),
        sa.Column("imported_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_calls")),
        sa.UniqueConstraint("source", "call_id", name=op.f("uq_history_calls_source_call_id")),
    )
    op.create_index(op.f("ix_history_calls_received"), "history_calls", ["received"])
    op.create_index(op.f("ix_history_calls_closed_at"), "history_calls", ["closed_at"])
    op.create_table(
        "history_units",
        sa.Column("id", ID, nullable=False),
        sa.Column("history_call_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=True),
        *(sa.Column(name, UTC_DATETIME, nullable=True) for name in UNIT_PHASES),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_history_units")),
    )
    op.create_index(op.f("ix_history_units_history_call_id"), "history_units", ["history_call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_history_units_history_call_id"), table_name="history_units")
    op.drop_table("history_units")
    op.drop_index(op.f("ix_history_calls_closed_at"), table_name="history_calls")
    op.drop_index(op.f("ix_history_calls_received"), table_name="history_calls")
    op.drop_table("history_calls")
