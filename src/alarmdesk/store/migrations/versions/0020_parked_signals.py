"""parked_signals: queued signals that failed alone, try after try (distributed mode)

Revision ID: 0020
Revises: 0019

A signal from the intake log that meets a defect failed every retry, and its partition waited
behind it for ever. After a few tries it is parked in this table and its partition goes on
(docs/operations.md, "A signal that cannot be stored").
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parked_signals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=300), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("received_at", UTC_DATETIME, nullable=False),
        sa.Column("queued", JSON, nullable=False),
        sa.Column("error", sa.String(length=500), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("parked_at", UTC_DATETIME, nullable=False),
        sa.Column("retries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("retried_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_signals")),
        sa.UniqueConstraint("message_id", name=op.f("uq_parked_signals_message_id")),
    )
    op.create_index(op.f("ix_parked_signals_received_at"), "parked_signals", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_parked_signals_received_at"), table_name="parked_signals")
    op.drop_table("parked_signals")
