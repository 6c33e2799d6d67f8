"""setup revision (a counter a set-up apply moves); unit status times; incidents en route

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
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("en_route_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("en_route_at")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_column("status_at")
    op.drop_table("setup_revision")
