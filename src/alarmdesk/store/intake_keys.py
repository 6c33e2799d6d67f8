"""Idempotency keys of the signals stored lately: how an intake adapter knows a resend again
after a restart.

A transmitter that got no acknowledgement resends. When the message was committed but the
acknowledgement was lost (the process stopped in between), the resend reaches a receiver
with an empty memory. Reading the keys stored within the transmitter's resend window gives
that memory back (see ``Dc09Receiver.remember``).

Signal ids grow with every insert (the writer assigns them), and so does ``received_at``:
the newest rows are read by primary key, newest first, until one is older than ``since``.
No index on ``received_at`` or on key prefixes is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from alarmdesk.store import tables as t

__all__ = ["StoredKey", "recent_keys"]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One stored signal's idempotency key and its times."""

    idempotency_key: str
    occurred_at: datetime
    received_at: datetime


def recent_keys(
    conn: sa.Connection, prefix: str, since: datetime, *, batch: int = 2000
) -> list[StoredKey]:
    """The keys starting with ``prefix`` of the signals received at or after ``since``.

    Args:
        conn: a connection (read only).
        prefix: e.g. ``"dc09:"``; matched in Python, so no pattern syntax applies.
        since: the oldest ``received_at`` wanted (aware).
        batch: rows read per query.

    Returns:
        Oldest first.
    """
    s = t.signals.c
    found: list[StoredKey] = []
    before: int | None = None
    while True:
        query = sa.select(s.id, s.idempotency_key, s.occurred_at, s.received_at)
        if before is not None:
            query = query.where(s.id < before)
        chunk = conn.execute(query.order_by(s.id.desc()).limit(batch)).all()
        for row in chunk:
            if row.received_at < since:
                return found[::-1]
            if row.idempotency_key.startswith(prefix):
                found.append(StoredKey(row.idempotency_key, row.occurred_at, row.received_at))
        if len(chunk) < batch:
            return found[::-1]
        before = chunk[-1].id
