"""setup revision: a counter a set-up apply moves, so a running writer takes the change up

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "setup_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_setup_revision")),
    )
    op.execute("INSERT INTO setup_revision (id, revision) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("setup_revision")
