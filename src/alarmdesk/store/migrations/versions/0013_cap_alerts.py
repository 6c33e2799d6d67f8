"""public warnings published as CAP 1.2

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

UTC_DATETIME = sa.DateTime(timezone=True)

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cap_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("incident_id", sa.BigInteger(), nullable=False),
        sa.Column("msg_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sent", UTC_DATETIME, nullable=False),
        sa.Column("refs", sa.Text(), nullable=True),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("published_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cap_alerts")),
        sa.UniqueConstraint("identifier", name=op.f("uq_cap_alerts_identifier")),
    )
    op.create_index(op.f("ix_cap_alerts_incident_id"), "cap_alerts", ["incident_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_cap_alerts_incident_id"), table_name="cap_alerts")
    op.drop_table("cap_alerts")
