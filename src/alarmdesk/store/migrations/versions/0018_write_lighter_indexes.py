"""indexes lighter to write: the queue's status and priority in one, only silenced signals

Revision ID: 0018
Revises: 0017

Each index is a B-tree that a new row writes a page of at every commit (bench/README.md,
"What a commit writes"). ``incidents`` had one index on ``status`` and one on ``priority``;
the queue filters on the first and orders by the second, so one index on both serves it
(its counts are read from the index alone) for one entry a new incident. ``signals.silenced_by``
is empty for nearly every signal: its index now holds only the signals a silence held back.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

SILENCED = sa.text("silenced_by IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_incidents_status_priority", "incidents", ["status", "priority"])
    op.drop_index("ix_incidents_status", table_name="incidents")
    op.drop_index("ix_incidents_priority", table_name="incidents")
    op.create_index(
        "ix_signals_silenced_by_id",
        "signals",
        ["silenced_by", "id"],
        sqlite_where=SILENCED,
        postgresql_where=SILENCED,
    )
    op.drop_index("ix_signals_silenced_by", table_name="signals")


def downgrade() -> None:
    op.create_index("ix_signals_silenced_by", "signals", ["silenced_by"])
    op.drop_index("ix_signals_silenced_by_id", table_name="signals")
    op.create_index("ix_incidents_priority", "incidents", ["priority"])
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.drop_index("ix_incidents_status_priority", table_name="incidents")
