"""custom incident types: purpose, legal basis, author, status; two approvals

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

UTC_DATETIME = sa.DateTime(timezone=True)

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("incident_types", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="active")
        )
        batch_op.add_column(sa.Column("purpose", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("legal_basis", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("author", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("created_at", UTC_DATETIME, nullable=True))
    op.create_table(
        "incident_type_approvals",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("approver", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("code", "approver", name=op.f("pk_incident_type_approvals")),
    )


def downgrade() -> None:
    op.drop_table("incident_type_approvals")
    with op.batch_alter_table("incident_types", schema=None) as batch_op:
        for column in ("created_at", "author", "legal_basis", "purpose", "status"):
            batch_op.drop_column(column)
