"""Webhook subscriptions, their cursors and their delivery log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.errors import Conflict, NotFound
from alarmdesk.store import tables as t
from alarmdesk.store.repository import last_event_id

__all__ = [
    "active",
    "advance",
    "deliveries",
    "insert",
    "listing",
    "log_attempts",
    "remove",
]

# What is shown of a subscription: never its secret.
_SHOWN = [c for c in t.webhooks.c if c.name != "secret"]


def insert(conn: sa.Connection, values: dict[str, Any], now: datetime) -> int:
    """Stores a subscription that starts after the newest event (it gets what happens next,
    not the history); its id."""
    found = conn.execute(
        sa.insert(t.webhooks)
        .values(**values, created_at=now, cursor=last_event_id(conn), failed_events=0)
        .returning(t.webhooks.c.id)
    ).scalar_one()
    return int(found)


def remove(conn: sa.Connection, webhook_id: int, now: datetime) -> None:
    """Stops a subscription (its delivery log stays).

    Raises:
        NotFound: no such subscription. Conflict: removed already.
    """
    c = t.webhooks.c
    row = conn.execute(sa.select(c.removed_at).where(c.id == webhook_id)).one_or_none()
    if row is None:
        raise NotFound(f"no webhook {webhook_id}", field="webhook_id")
    if row.removed_at is not None:
        raise Conflict(f"webhook {webhook_id} was removed already", field="webhook_id")
    conn.execute(sa.update(t.webhooks).where(c.id == webhook_id).values(removed_at=now))


def listing(conn: sa.Connection, *, removed: bool = False) -> list[dict[str, Any]]:
    """Subscriptions without their secrets, in id order."""
    q = sa.select(*_SHOWN).order_by(t.webhooks.c.id)
    if not removed:
        q = q.where(t.webhooks.c.removed_at.is_(None))
    return [_plain(r) for r in conn.execute(q).mappings()]


def _plain(r: sa.RowMapping) -> dict[str, Any]:
    return {str(k): v for k, v in r.items()}  # the keys are str subclasses (quoted_name)


def active(conn: sa.Connection) -> list[dict[str, Any]]:
    """The subscriptions in force, with their secrets (for the deliverer only)."""
    c = t.webhooks.c
    q = sa.select(t.webhooks).where(c.removed_at.is_(None)).order_by(c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def advance(conn: sa.Connection, webhook_id: int, cursor: int, failed: int = 0) -> None:
    """Moves a subscription's cursor forward (never back), counting events given up on."""
    c = t.webhooks.c
    conn.execute(
        sa.update(t.webhooks)
        .where(c.id == webhook_id, c.cursor < cursor)
        .values(cursor=cursor, failed_events=c.failed_events + failed)
    )


def log_attempts(conn: sa.Connection, attempts: Sequence[dict[str, Any]]) -> None:
    if attempts:
        conn.execute(sa.insert(t.webhook_deliveries), list(attempts))


def deliveries(conn: sa.Connection, webhook_id: int, limit: int) -> list[dict[str, Any]]:
    """A subscription's delivery log, newest first."""
    d = t.webhook_deliveries.c
    q = sa.select(t.webhook_deliveries).where(d.webhook_id == webhook_id)
    return [_plain(r) for r in conn.execute(q.order_by(d.id.desc()).limit(limit)).mappings()]
