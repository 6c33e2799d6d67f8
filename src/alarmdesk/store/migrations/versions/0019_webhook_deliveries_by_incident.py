"""the webhook delivery log indexed by incident, for retention's erasing

Revision ID: 0019
Revises: 0018

Retention erases an incident's webhook deliveries with it (docs/webhooks.md), a chunk of
incidents at a time. Without an index on ``incident_id`` each chunk read the whole delivery
log, inside the transaction that holds SQLite's write lock: 400,000 deliveries made erasing
100,000 incidents hold it 10.7 s instead of 2.2 (bench/README.md, "Retention's reads").
The log is written by the webhook sender, not on an alarm's path.
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_webhook_deliveries_incident_id"), "webhook_deliveries", ["incident_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_incident_id"), table_name="webhook_deliveries")
