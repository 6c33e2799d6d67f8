"""CAP 1.2 in the store: the threads of received alerts (read from their signals), and the
public warnings alarmdesk published (``cap_alerts``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.store import tables as t

__all__ = ["alerts_of_incident", "get_alert", "insert_alert", "latest_alerts", "threads"]


def threads(conn: sa.Connection, keys: Iterable[str]) -> dict[str, str]:
    """The CAP thread of each stored alert among ``keys`` (idempotency keys ``cap:…``)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    s = t.signals.c
    found: dict[str, str] = {}
    for key, payload in conn.execute(
        sa.select(s.idempotency_key, s.payload).where(s.idempotency_key.in_(wanted))
    ):
        cap = payload.get("cap") if isinstance(payload, dict) else None
        thread = cap.get("thread") if isinstance(cap, dict) else None
        if isinstance(thread, str):
            found[key] = thread
    return found


def insert_alert(
    conn: sa.Connection,
    *,
    identifier: str,
    incident_id: int,
    msg_type: str,
    status: str,
    sent: datetime,
    refs: str | None,
    headline: str,
    document: bytes,
    published_by: str,
) -> None:
    conn.execute(
        sa.insert(t.cap_alerts).values(
            identifier=identifier,
            incident_id=incident_id,
            msg_type=msg_type,
            status=status,
            sent=sent,
            refs=refs,
            headline=headline,
            document=document.decode("utf-8"),
            published_by=published_by,
        )
    )


_SUMMARY = (
    t.cap_alerts.c.identifier,
    t.cap_alerts.c.incident_id,
    t.cap_alerts.c.msg_type,
    t.cap_alerts.c.status,
    t.cap_alerts.c.sent,
    t.cap_alerts.c.refs,
    t.cap_alerts.c.headline,
)


def get_alert(conn: sa.Connection, identifier: str) -> dict[str, Any] | None:
    """One published alert with its document, or None."""
    c = t.cap_alerts.c
    row = conn.execute(
        sa.select(*_SUMMARY, c.document).where(c.identifier == identifier)
    ).one_or_none()
    return None if row is None else dict(row._mapping)


def latest_alerts(conn: sa.Connection, limit: int) -> list[dict[str, Any]]:
    """The alerts published last, newest first (without their documents)."""
    c = t.cap_alerts.c
    rows = conn.execute(sa.select(*_SUMMARY).order_by(c.id.desc()).limit(limit))
    return [dict(r._mapping) for r in rows]


def alerts_of_incident(conn: sa.Connection, incident_id: int) -> list[dict[str, Any]]:
    """The alerts published from one incident, oldest first."""
    c = t.cap_alerts.c
    rows = conn.execute(sa.select(*_SUMMARY).where(c.incident_id == incident_id).order_by(c.id))
    return [dict(r._mapping) for r in rows]
