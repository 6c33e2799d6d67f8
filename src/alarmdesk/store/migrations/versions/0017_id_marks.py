"""id_marks: the highest id ever given to incidents, signals and events

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

NAMES = ("incidents", "signals", "events")


def upgrade() -> None:
    marks = op.create_table(
        "id_marks",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_id_marks")),
    )
    conn = op.get_bind()
    rows = []
    for name in NAMES:  # what is stored now is the highest known
        high = conn.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {name}")).scalar_one()
        rows.append({"name": name, "high": int(high)})
    op.bulk_insert(marks, rows)


def downgrade() -> None:
    op.drop_table("id_marks")
