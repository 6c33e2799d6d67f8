"""What the operator console reads: reference data, the live queue (ordered, paged and
counted here, never in the browser), one incident, the receipt of a form sent twice. Each
function takes a connection of its own; call it in a worker thread."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.incident import Status, incident_dict
from alarmdesk.domain.signal import Receipt
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.store.repository import IncidentFilter

__all__ = [
    "QueueCounts",
    "QueuePage",
    "Reference",
    "first_receipt",
    "get_incident",
    "queue_counts",
    "queue_page",
    "reference",
]

WAITING: Final = Status.NEW.value  # an incident nobody has taken yet


@dataclass(frozen=True)
class Reference:
    """The types in force and the desks (id, name, jurisdiction), in the desks' order."""

    types: list[IncidentType]
    desks: list[dict[str, Any]]
    _by_code: dict[str, IncidentType] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        self._by_code.update((x.code, x) for x in self.types)  # the dict, not the field

    def type_of(self, code: str) -> IncidentType | None:
        return self._by_code.get(code.upper())

    def type_names(self) -> dict[str, str]:
        return {x.code: x.name for x in self.types}


def reference(engine: sa.Engine) -> Reference:
    with engine.connect() as conn:
        types = sorted(repo.load_taxonomy(conn), key=lambda x: x.code)
        d = t.desks.c
        desks = [
            {"id": r.id, "name": r.name, "jurisdiction": r.jurisdiction}
            for r in conn.execute(
                sa.select(d.id, d.name, d.jurisdiction).order_by(d.position, d.id)
            )
        ]
    return Reference(types, desks)


def get_incident(engine: sa.Engine, incident_id: int) -> dict[str, Any] | None:
    """The incident with its signals and timeline, or None."""
    with engine.connect() as conn:
        return repo.get_incident(conn, incident_id)


def first_receipt(engine: sa.Engine, key: str | None) -> Receipt | None:
    """The receipt of the signal stored under an idempotency key (a form sent twice)."""
    if key is None:
        return None
    s = t.signals.c
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(s.id, s.incident_id, s.received_at).where(s.idempotency_key == key)
        ).first()
    return None if row is None else Receipt(row.id, row.incident_id, key, row.received_at)


# -- the live queue ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue in its order, and the cursor of the next page (None: no more)."""

    items: list[dict[str, object]]
    next_cursor: str | None


@dataclass(frozen=True)
class QueueCounts:
    """What the queue's header and P1 banner show, counted in the database."""

    total: int  # incidents that match
    waiting: int  # of them not yet taken (status new)
    p1: int  # of them priority 1
    p1_waiting: int  # of them priority 1 and not yet taken


def _conditions(f: IncidentFilter) -> list[sa.ColumnElement[bool]]:
    c = t.incidents.c
    where: list[sa.ColumnElement[bool]] = []
    if f.statuses:
        where.append(c.status.in_(f.statuses))
    if f.priorities:
        where.append(c.priority.in_(f.priorities))
    if f.type_codes:
        where.append(c.type_code.in_(f.type_codes))
    if f.desks:
        where.append(repo.on_desks(f.desks))
    return where


def _waiting() -> sa.ColumnElement[int]:
    return sa.case((t.incidents.c.status == WAITING, 0), else_=1)


def _cursor(item: dict[str, object]) -> str:
    opened = item["opened_at"]
    at = opened.isoformat() if isinstance(opened, datetime) else str(opened)
    key = [item["priority"], 0 if item["status"] == WAITING else 1, at, item["id"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, int, datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        priority, waiting, opened_at, last_id = json.loads(raw)
        key = (int(priority), int(waiting), datetime.fromisoformat(opened_at), int(last_id))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidField(
            "the cursor is not one this server gave", field="after", code="invalid_cursor"
        ) from None
    if key[2].tzinfo is None:
        raise InvalidField(
            "the cursor is not one this server gave", field="after", code="invalid_cursor"
        )
    return key


def queue_page(
    engine: sa.Engine, f: IncidentFilter, *, limit: int, after: str | None = None
) -> QueuePage:
    """The queue in its order — priority, then waiting (new) before taken, then the oldest
    first, then by id — from after ``after`` (a cursor of an earlier page) on.

    Keyset-paged on that order, so a page never repeats or skips an incident that kept its
    place; the live stream moves the ones that change.
    """
    c = t.incidents.c
    waiting = _waiting()
    q = sa.select(t.incidents).where(*_conditions(f))
    if after is not None:
        p, w, at, last = _decode_cursor(after)
        q = q.where(
            sa.or_(
                c.priority > p,
                sa.and_(c.priority == p, waiting > w),
                sa.and_(c.priority == p, waiting == w, c.opened_at > at),
                sa.and_(c.priority == p, waiting == w, c.opened_at == at, c.id > last),
            )
        )
    q = q.order_by(c.priority, waiting, c.opened_at, c.id).limit(limit + 1)
    with engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
    items = [incident_dict(repo.incident_from(r)) for r in rows[:limit]]
    more = len(rows) > limit
    return QueuePage(items, _cursor(items[-1]) if more and items else None)


def queue_counts(engine: sa.Engine, f: IncidentFilter) -> QueueCounts:
    c = t.incidents.c
    is_waiting = c.status == WAITING
    is_p1 = c.priority == 1
    q = sa.select(
        sa.func.count(),
        sa.func.count().filter(is_waiting),
        sa.func.count().filter(is_p1),
        sa.func.count().filter(sa.and_(is_p1, is_waiting)),
    ).where(*_conditions(f))
    with engine.connect() as conn:
        total, waiting, p1, p1_waiting = conn.execute(q).one()
    return QueueCounts(int(total), int(waiting), int(p1), int(p1_waiting))
