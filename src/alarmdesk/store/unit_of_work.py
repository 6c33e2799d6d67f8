"""The unit of work: what one writer transaction changes, and how it is written.

The service layer's handlers fill a :class:`Changes` (new signals, incidents opened or
touched, routes, units, events, audit entries) while they apply signals and commands to the
pure pipeline; :func:`write` then turns it into as few statements as possible inside the
caller's transaction. Nothing here decides anything: it only stores what was decided.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.events import EventType, IncidentEvent
from alarmdesk.domain.incident import Incident
from alarmdesk.domain.signal import Receipt
from alarmdesk.domain.units import Unit
from alarmdesk.safeguards.audit import AuditEvent
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.store.audit import AuditChain
from alarmdesk.store.bulk import BulkInsert, BulkUpdate, read_planned, select_in, stored_time

__all__ = ["Changes", "UnitOfWork", "known_receipts"]

_KEY_CHUNK = 500


@dataclass(slots=True)
class Changes:
    """What one transaction writes."""

    signals: list[dict[str, Any]] = field(default_factory=list)
    opened: dict[int, Incident] = field(default_factory=dict)
    touched: dict[int, Incident] = field(default_factory=dict)
    rerouted: set[int] = field(default_factory=set)
    commanded: set[int] = field(default_factory=set)  # incidents an operator command changed
    units: dict[str, Unit] = field(default_factory=dict)
    events: list[IncidentEvent] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)

    def collect(
        self,
        incidents: dict[int, Incident],
        units: dict[str, Unit],
        events: Iterable[IncidentEvent],
    ) -> None:
        """Takes up what the pipeline changed (events already carry their ids)."""
        for ev in events:
            self.events.append(ev)
            if ev.type is EventType.OPENED:
                self.opened[ev.incident_id] = incidents[ev.incident_id]
            elif ev.type in (EventType.RECLASSIFIED, EventType.ESCALATED):
                self.rerouted.add(ev.incident_id)
        self.touched.update(incidents)
        self.units.update(units)


_RECEIPT_COLUMNS = ("idempotency_key", "id", "incident_id", "received_at", "content_digest")


def known_receipts(conn: sa.Connection, keys: list[str]) -> dict[str, tuple[Receipt, str]]:
    """Earlier receipts and content digests of the keys already stored (one query per 500).

    Straight to the driver, the statement rendered once per number of keys: through
    SQLAlchemy Core (an expanding IN compiled per call, the result's type processing) it
    cost more than the query (py-spy of the writer, one transaction per signal). Planned
    with its keys every time on PostgreSQL (:func:`read_planned`)."""
    known: dict[str, tuple[Receipt, str]] = {}
    dialect = conn.dialect.name
    for i in range(0, len(keys), _KEY_CHUNK):
        chunk = keys[i : i + _KEY_CHUNK]
        sql = select_in(t.signals, _RECEIPT_COLUMNS, "idempotency_key", len(chunk), dialect)
        for key, signal_id, incident_id, received_at, digest in read_planned(
            conn, sql, tuple(chunk)
        ):
            at = stored_time(received_at)
            assert at is not None  # NOT NULL
            known[key] = (
                Receipt(
                    signal_id=signal_id,
                    incident_id=incident_id,
                    idempotency_key=key,
                    received_at=at,
                ),
                digest,
            )
    return known


class UnitOfWork:
    """Writes :class:`Changes` in the caller's transaction, with the audit chain's entries.

    Holds the per-dialect bulk inserts (built once) and the audit chain, so the writer owns
    one of these for its lifetime.
    """

    def __init__(self, audit: AuditChain | None) -> None:
        self.audit = audit
        self._bulk: dict[str, BulkInsert] | None = None
        self._repeat: BulkUpdate | None = None

    def _inserts(self, conn: sa.Connection) -> dict[str, BulkInsert]:
        if self._bulk is None:
            name = conn.dialect.name
            self._bulk = {
                tb.name: BulkInsert(tb, name)
                for tb in (t.incidents, t.signals, t.incident_desks, t.events)
            }
            self._repeat = BulkUpdate(t.incidents, _REPEAT_COLUMNS, "id", name)
        return self._bulk

    def append_audit(self, conn: sa.Connection, events: list[AuditEvent], now: datetime) -> None:
        """Appends audit entries (and a checkpoint when one is due) in this transaction."""
        if self.audit is not None:
            self.audit.append(conn, events, now)

    def write(self, conn: sa.Connection, changes: Changes, now: datetime) -> None:
        bulk = self._inserts(conn)
        if changes.opened:
            bulk[t.incidents.name].execute(
                conn, [repo.incident_row(i) for i in changes.opened.values()]
            )
        if changes.signals:
            bulk[t.signals.name].execute(conn, changes.signals)
        # A repeat signal changes a few counters; a command may change anything.
        repeats = [
            i
            for k, i in changes.touched.items()
            if k not in changes.opened and k not in changes.commanded
        ]
        if repeats:
            assert self._repeat is not None
            self._repeat.execute(
                conn,
                [
                    {
                        "id": i.id,
                        "signal_count": i.signal_count,
                        "last_seen": i.last_seen,
                        "priority": i.priority,
                        "condition": i.condition.value,
                        "version": i.version,
                    }
                    for i in repeats
                ],
            )
        updated = [
            repo.incident_row(i)
            for k, i in changes.touched.items()
            if k not in changes.opened and k in changes.commanded
        ]
        if updated:
            conn.execute(
                t.incidents.update().where(t.incidents.c.id == sa.bindparam("b_id")),
                [{**{k: v for k, v in r.items() if k != "id"}, "b_id": r["id"]} for r in updated],
            )
        routes = [
            {"incident_id": i.id, "desk_id": d} for i in changes.opened.values() for d in i.desks
        ]
        if changes.rerouted:
            conn.execute(
                t.incident_desks.delete().where(
                    t.incident_desks.c.incident_id.in_(changes.rerouted)
                )
            )
            routes += [
                {"incident_id": i, "desk_id": d}
                for i in changes.rerouted
                if i not in changes.opened
                for d in changes.touched[i].desks
            ]
        if routes:
            bulk[t.incident_desks.name].execute(conn, routes)
        if changes.units:
            conn.execute(
                t.units.update().where(t.units.c.id == sa.bindparam("b_id")),
                [
                    {
                        "b_id": u.id,
                        "status": u.status.value,
                        "incident_id": u.incident_id,
                        "lat": u.lat,
                        "lon": u.lon,
                        "status_at": u.status_at,
                    }
                    for u in changes.units.values()
                ],
            )
        if changes.audit:
            self.append_audit(conn, changes.audit, now)
        if changes.events:
            bulk[t.events.name].execute(
                conn,
                [
                    t.row(
                        t.events,
                        id=e.id,
                        incident_id=e.incident_id,
                        type=e.type.value,
                        at=e.at,
                        actor=e.actor,
                        desks=list(e.desks),
                        detail=e.detail,
                        snapshot=e.snapshot_json(),  # encoded once, for the stream too
                    )
                    for e in changes.events
                ],
            )


# What a repeat signal changes on its incident (pipeline/engine.py, ``Pipeline.ingest``).
_REPEAT_COLUMNS = ("signal_count", "last_seen", "priority", "condition", "version")
