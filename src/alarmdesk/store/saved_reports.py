"""The stored saved reports (``saved_reports``): written by the saved-reports service's
actions, read by the command line, the API and the console."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.errors import NotFound
from alarmdesk.store import tables as t

__all__ = ["delete", "get", "list_saved", "upsert"]

_c = t.saved_reports.c


def upsert(conn: sa.Connection, name: str, spec: dict[str, Any], by: str, now: datetime) -> bool:
    """Stores a saved report under its name, replacing one of that name; True if it is new."""
    found = conn.execute(sa.select(_c.name).where(_c.name == name)).first()
    values = {"spec": spec, "saved_by": by, "saved_at": now}
    if found is None:
        conn.execute(sa.insert(t.saved_reports).values(name=name, **values))
        return True
    conn.execute(sa.update(t.saved_reports).where(_c.name == name).values(**values))
    return False


def delete(conn: sa.Connection, name: str) -> None:
    """Removes a saved report.

    Raises:
        NotFound: there is none of that name.
    """
    if conn.execute(sa.delete(t.saved_reports).where(_c.name == name)).rowcount == 0:
        raise NotFound(f"no saved report {name!r}", field="name")


def get(conn: sa.Connection, name: str) -> dict[str, Any]:
    """One saved report's row (name, spec, saved_by, saved_at).

    Raises:
        NotFound: there is none of that name.
    """
    row = conn.execute(sa.select(t.saved_reports).where(_c.name == name)).mappings().first()
    if row is None:
        raise NotFound(f"no saved report {name!r}", field="name")
    return dict(row)


def list_saved(conn: sa.Connection) -> list[dict[str, Any]]:
    """Every saved report's row, by name."""
    rows = conn.execute(sa.select(t.saved_reports).order_by(_c.name)).mappings()
    return [dict(r) for r in rows]
