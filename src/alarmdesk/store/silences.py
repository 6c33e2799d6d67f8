"""The stored silences: written by the silences service's actions, read by the console and the
API (the writer reads the ones in force through ``repository.load_silences``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.errors import Conflict, NotFound
from alarmdesk.store import tables as t

__all__ = ["end", "insert", "list_silences", "silenced_signals"]


def insert(
    conn: sa.Connection,
    spec: dict[str, Any],
    author: str,
    now: datetime,
    starts_at: datetime,
    ends_at: datetime | None,
) -> int:
    """Stores a silence; its id."""
    found = conn.execute(
        sa.insert(t.silences)
        .values(
            spec=spec,
            author=author,
            created_at=now,
            starts_at=starts_at,
            ends_at=ends_at,
        )
        .returning(t.silences.c.id)
    ).scalar_one()
    return int(found)


def end(conn: sa.Connection, silence_id: int, by: str, now: datetime) -> None:
    """Ends a silence now.

    Raises:
        NotFound: no such silence.
        Conflict: it has ended already.
    """
    c = t.silences.c
    row = conn.execute(sa.select(c.ended_at).where(c.id == silence_id)).one_or_none()
    if row is None:
        raise NotFound(f"no silence {silence_id}", field="silence_id")
    if row.ended_at is not None:
        raise Conflict(f"silence {silence_id} has ended already", field="silence_id")
    conn.execute(sa.update(t.silences).where(c.id == silence_id).values(ended_at=now, ended_by=by))


def list_silences(
    conn: sa.Connection, now: datetime, *, ended: bool = False, silence_id: int | None = None
) -> list[dict[str, Any]]:
    """Silences in force or to come (or every one, with ``ended``), newest first, each row
    with ``signals``: how many signals it held back."""
    c, s = t.silences.c, t.signals.c
    held = (
        sa.select(s.silenced_by, sa.func.count().label("n"))
        .where(s.silenced_by.is_not(None) if silence_id is None else s.silenced_by == silence_id)
        .group_by(s.silenced_by)
        .subquery()
    )
    q = (
        sa.select(t.silences, sa.func.coalesce(held.c.n, 0).label("signals"))
        .join_from(t.silences, held, held.c.silenced_by == c.id, isouter=True)
        .order_by(c.id.desc())
    )
    if silence_id is not None:
        q = q.where(c.id == silence_id)
    elif not ended:
        q = q.where(c.ended_at.is_(None), sa.or_(c.ends_at.is_(None), c.ends_at > now))
    return [dict(r) for r in conn.execute(q).mappings()]


def silenced_signals(conn: sa.Connection, silence_id: int, *, limit: int) -> list[dict[str, Any]]:
    """The signals a silence held back, newest first.

    Raises:
        NotFound: no such silence.
    """
    if (
        conn.execute(sa.select(t.silences.c.id).where(t.silences.c.id == silence_id)).first()
        is None
    ):
        raise NotFound(f"no silence {silence_id}", field="silence_id")
    s = t.signals.c
    q = (
        sa.select(s.id, s.source_kind, s.source_id, s.type_code, s.occurred_at, s.received_at)
        .add_columns(s.location, s.summary)
        .where(s.silenced_by == silence_id)
        .order_by(s.id.desc())
        .limit(limit)
    )
    return [dict(r) for r in conn.execute(q).mappings()]
