"""Parked signals: queued signals that failed alone, try after try (distributed mode;
docs/operations.md, "A signal that cannot be stored"). What is written here is decided by
``service/parked.py``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.store import tables as t

__all__ = ["Parking", "mark_retried", "park", "parked_rows", "waiting_count"]

_p = t.parked_signals
_c = _p.c
ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Parking:
    """One signal to park: the log's message as it was, and why it is parked."""

    message_id: str
    partition: int
    received_at: datetime
    queued: dict[str, Any]
    error: str
    attempts: int


def park(conn: sa.Connection, items: Sequence[Parking], now: datetime) -> list[int]:
    """Parks each item; one parked before (retried, and failed again) is parked anew in its
    row, its retries kept. Returns the rows' ids, in the items' order."""
    ids: list[int] = []
    for item in items:
        values = {
            "partition": item.partition,
            "received_at": item.received_at,
            "queued": item.queued,
            "error": item.error[:ERROR_CHARS],
            "attempts": item.attempts,
            "parked_at": now,
            "retried_at": None,
        }
        row = conn.execute(
            sa.update(_p).where(_c.message_id == item.message_id).values(values).returning(_c.id)
        ).first()
        if row is None:
            row = conn.execute(
                sa.insert(_p).values(message_id=item.message_id, **values).returning(_c.id)
            ).one()
        ids.append(int(row.id))
    return ids


def parked_rows(
    conn: sa.Connection, *, retried: bool = False, ids: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """The parked signals, oldest first: those waiting (with ``retried``, those put back into
    the log too), of ``ids`` when given."""
    q = sa.select(_p).order_by(_c.id)
    if not retried:
        q = q.where(_c.retried_at.is_(None))
    if ids is not None:
        q = q.where(_c.id.in_(list(ids)))
    return [dict(r) for r in conn.execute(q).mappings()]


def waiting_count(conn: sa.Connection) -> tuple[int, datetime | None]:
    """How many parked signals wait, and when the oldest of them was parked (no content)."""
    row = conn.execute(
        sa.select(sa.func.count(), sa.func.min(_c.parked_at)).where(_c.retried_at.is_(None))
    ).one()
    return int(row[0]), row[1]


def mark_retried(conn: sa.Connection, parked: Sequence[tuple[int, datetime]], now: datetime) -> int:
    """Marks parked signals as put back into the log, each only if it is still parked as it
    was read (its ``parked_at``): one that failed again and was parked anew meanwhile stays
    waiting. Returns how many were marked."""
    marked = 0
    for row_id, parked_at in parked:
        marked += conn.execute(
            sa.update(_p)
            .where(_c.id == row_id, _c.parked_at == parked_at, _c.retried_at.is_(None))
            .values(retried_at=now, retries=_c.retries + 1)
        ).rowcount
    return marked
