"""A centre's imported call history (``history_calls``, ``history_units``): storing the calls
an import reads, and reading them back as call records for KPIs (docs/analytics.md).

Kept apart from ``incidents``: the running writer assigns incident ids itself, so an import
running beside it must not insert incidents. A call is unique by its import source and the
export's call id; a call already stored is left as it is (the import counts it as already
imported).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.history import UNIT_PHASES, CallRecord, UnitResponse
from alarmdesk.domain.history.own import TIMELINE_EVENTS, unit_responses
from alarmdesk.store import tables as t

__all__ = [
    "CALL_TIMES",
    "HistoryFilter",
    "Stored",
    "changed_after",
    "imported_upto",
    "read_calls",
    "read_calls_after",
    "read_own_calls",
    "roster",
    "store_calls",
    "stored_keys",
]

_IN_CHUNK: Final = 500  # values in one IN (…) list
# PostgreSQL numbers a call when it is inserted, not when it commits: two imports running at
# once can commit out of order. Each import chunk holds this advisory lock shared; the
# analytics export takes it alone for an instant to learn up to which number every call has
# committed (:func:`imported_upto`). SQLite writes one transaction at a time: nothing to fence.
_IMPORT_LOCK: Final = 0x616C6D64
# The call's phase times, as columns of history_calls.
CALL_TIMES: Final = (
    "received",
    "answered",
    "entered",
    *(p.value for p in UNIT_PHASES),
)


@dataclass(frozen=True, slots=True)
class Stored:
    """What storing one chunk of calls did."""

    imported: int
    already: int  # stored before (by this source and call id), or twice in the chunk


def store_calls(
    conn: sa.Connection, source: str, calls: Sequence[CallRecord], now: datetime
) -> Stored:
    """Inserts the calls not stored yet for ``source``, with their units, in the caller's
    transaction. A call id already stored (or repeated in ``calls``) is skipped."""
    _import_fence(conn, shared=True)
    c = t.history_calls
    ids = list(dict.fromkeys(r.call_id for r in calls))
    existing: set[str] = set()
    for i in range(0, len(ids), _IN_CHUNK):
        part = ids[i : i + _IN_CHUNK]
        existing |= set(
            conn.execute(
                sa.select(c.c.call_id).where(c.c.source == source, c.c.call_id.in_(part))
            ).scalars()
        )
    new: dict[str, CallRecord] = {}
    for record in calls:
        if record.call_id not in existing and record.call_id not in new:
            new[record.call_id] = record
    if new:
        conn.execute(sa.insert(c), [_call_row(source, r, now) for r in new.values()])
        units: list[dict[str, Any]] = []
        names = list(new)
        for i in range(0, len(names), _IN_CHUNK):
            stored = conn.execute(
                sa.select(c.c.id, c.c.call_id).where(
                    c.c.source == source, c.c.call_id.in_(names[i : i + _IN_CHUNK])
                )
            ).all()
            for row in stored:
                record = new[row.call_id]
                units += [_unit_row(int(row.id), n, u) for n, u in enumerate(record.units)]
        if units:
            conn.execute(sa.insert(t.history_units), units)
    return Stored(imported=len(new), already=len(calls) - len(new))


def _call_row(source: str, r: CallRecord, now: datetime) -> dict[str, Any]:
    return t.row(
        t.history_calls,
        source=source,
        call_id=r.call_id,
        type_code=r.type_code,
        category=r.category.value,
        priority=r.priority,
        station_area=r.station_area,
        lat=r.lat,
        lon=r.lon,
        closed_at=r.last_time(),
        imported_at=now,
        **{name: getattr(r, name) for name in CALL_TIMES},
    )


def _unit_row(call: int, position: int, u: UnitResponse) -> dict[str, Any]:
    return t.row(
        t.history_units,
        history_call_id=call,
        position=position,
        unit_id=u.unit_id,
        kind=u.kind,
        **{p.value: u.time(p) for p in UNIT_PHASES},
    )


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """Calls received in [start, end), of one import source or of all."""

    start: datetime
    end: datetime
    source: str | None = None


def read_calls(
    conn: sa.Connection, which: HistoryFilter, *, chunk: int = 2000
) -> Iterator[CallRecord]:
    """The stored calls ``which`` selects, with their units, in import order, read a chunk
    at a time (memory stays bounded whatever the history's size)."""
    c = t.history_calls
    where = [c.c.received >= which.start, c.c.received < which.end]
    if which.source is not None:
        where.append(c.c.source == which.source)
    for _, _, record in _read_calls(conn, where, chunk):
        yield record


def _import_fence(conn: sa.Connection, *, shared: bool) -> None:
    if conn.dialect.name == "postgresql":
        take = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(sa.text(f"SELECT {take}(:key)"), {"key": _IMPORT_LOCK})


def imported_upto(engine: sa.Engine) -> int:
    """The number up to which every imported call has committed: no call numbered at or
    below it can still appear. Waits for the import chunks in flight (on PostgreSQL)."""
    with engine.begin() as conn:
        _import_fence(conn, shared=False)
        found = conn.execute(sa.select(sa.func.max(t.history_calls.c.id))).scalar_one()
    return int(found or 0)


def read_calls_after(
    conn: sa.Connection, last_id: int, *, upto: int | None = None, chunk: int = 2000
) -> Iterator[tuple[int, str, CallRecord]]:
    """Every stored call imported after the one numbered ``last_id`` (``history_calls.id``)
    and, with ``upto``, up to that number (:func:`imported_upto`), in import order, as (its
    number, its source, its record): what the analytics export has not read yet."""
    where = [t.history_calls.c.id > last_id]
    if upto is not None:
        where.append(t.history_calls.c.id <= upto)
    yield from _read_calls(conn, where, chunk)


def _read_calls(
    conn: sa.Connection, where: list[sa.ColumnElement[bool]], chunk: int
) -> Iterator[tuple[int, str, CallRecord]]:
    c, u = t.history_calls, t.history_units
    last: int | None = None
    while True:
        q = sa.select(c).where(*where)
        if last is not None:
            q = q.where(c.c.id > last)
        rows = conn.execute(q.order_by(c.c.id).limit(chunk)).mappings().all()
        if not rows:
            return
        last = int(rows[-1]["id"])
        ids = [int(r["id"]) for r in rows]
        units: dict[int, list[UnitResponse]] = {}
        for ur in conn.execute(
            sa.select(u)
            .where(u.c.history_call_id.in_(ids))
            .order_by(u.c.history_call_id, u.c.position)
        ).mappings():
            units.setdefault(int(ur["history_call_id"]), []).append(
                UnitResponse(
                    unit_id=ur["unit_id"],
                    kind=ur["kind"],
                    **{p.value: ur[p.value] for p in UNIT_PHASES},
                )
            )
        for r in rows:
            yield (
                int(r["id"]),
                str(r["source"]),
                CallRecord(
                    call_id=r["call_id"],
                    type_code=r["type_code"],
                    category=HarmCategory(r["category"]),
                    priority=int(r["priority"]),
                    station_area=r["station_area"],
                    lat=r["lat"],
                    lon=r["lon"],
                    units=tuple(units.get(int(r["id"]), ())),
                    **{name: r[name] for name in CALL_TIMES},
                ),
            )
        if len(rows) < chunk:
            return


_FINISHED: Final = ("resolved", "closed")  # handled to the end (cancelled ones are not timed)


def read_own_calls(
    conn: sa.Connection,
    start: datetime | None,
    end: datetime | None,
    *,
    chunk: int = 2000,
    ids: Collection[int] | None = None,
) -> Iterator[CallRecord]:
    """alarmdesk's own finished incidents opened in [start, end), as call records, a chunk at
    a time: received when opened, answered when acknowledged, then the first dispatch, the
    first unit en route and on scene, cleared when resolved (or closed).

    Every unit sent has its own times, read off the incident's timeline
    (``domain/history/own.py``); the station area is the home station of the first unit
    dispatched, and the desks are those the incident was routed to (docs/analytics.md).
    ``start`` and ``end`` None: opened at any time; ``ids``: only those incidents."""
    i, e, un, d = t.incidents.c, t.events.c, t.units.c, t.incident_desks.c
    kinds: dict[str, str | None] = {}
    homes: dict[str, str | None] = {}
    for u in conn.execute(sa.select(un.id, un.kind, un.station_id)):
        kinds[u.id], homes[u.id] = u.kind, u.station_id
    where_opened: list[sa.ColumnElement[bool]] = []
    if start is not None:
        where_opened.append(i.opened_at >= start)
    if end is not None:
        where_opened.append(i.opened_at < end)
    if ids is not None:
        where_opened.append(i.id.in_(list(ids)))
    last: int | None = None
    while True:
        q = sa.select(t.incidents).where(i.status.in_(_FINISHED), *where_opened)
        if last is not None:
            q = q.where(i.id > last)
        rows = conn.execute(q.order_by(i.id).limit(chunk)).mappings().all()
        if not rows:
            return
        last = int(rows[-1]["id"])
        ids = [int(r["id"]) for r in rows]
        timelines: dict[int, list[tuple[str, datetime, Any]]] = defaultdict(list)
        desks: dict[int, list[str]] = defaultdict(list)
        for at in range(0, len(ids), _IN_CHUNK):
            part = ids[at : at + _IN_CHUNK]
            for ev in conn.execute(
                sa.select(e.incident_id, e.type, e.at, e.detail)
                .where(e.incident_id.in_(part), e.type.in_(TIMELINE_EVENTS))
                .order_by(e.id)
            ):
                timelines[int(ev.incident_id)].append((ev.type, ev.at, ev.detail))
            for row in conn.execute(
                sa.select(d.incident_id, d.desk_id)
                .where(d.incident_id.in_(part))
                .order_by(d.incident_id, d.desk_id)
            ):
                desks[int(row.incident_id)].append(row.desk_id)
        for r in rows:
            cleared = r["resolved_at"] or r["closed_at"]
            units = unit_responses(timelines[int(r["id"])], ended=cleared, kinds=kinds)
            where = r["location"] or {}
            yield CallRecord(
                call_id=str(r["id"]),
                type_code=r["type_code"],
                category=HarmCategory(r["category"]),
                priority=int(r["priority"]),
                station_area=homes.get(units[0].unit_id) if units else None,
                desks=tuple(desks[int(r["id"])]),
                lat=where.get("lat"),
                lon=where.get("lon"),
                received=r["opened_at"],
                answered=r["acknowledged_at"],
                dispatched=r["dispatched_at"],
                en_route=r["en_route_at"],
                on_scene=r["on_scene_at"],
                cleared=cleared,
                units=units,
            )
        if len(rows) < chunk:
            return


def changed_after(
    conn: sa.Connection, last_event: int, *, chunk: int = 2000
) -> tuple[set[int], int]:
    """The incidents whose timeline (the events that time them and their units) has an event
    after ``last_event``, at most ``chunk`` events read, and the last event read
    (``last_event`` when none): what the analytics export reads again, keeping those now
    finished (:func:`read_own_calls`).

    Event ids are given by the single writer in commit order, so an event id is a watermark
    that nothing committed later can fall behind."""
    e = t.events.c
    rows = conn.execute(
        sa.select(e.id, e.incident_id)
        .where(e.id > last_event, e.type.in_(TIMELINE_EVENTS))
        .order_by(e.id)
        .limit(chunk)
    ).all()
    if not rows:
        return set(), last_event
    return {int(r.incident_id) for r in rows}, int(rows[-1].id)


def stored_keys(
    conn: sa.Connection, own: Collection[int], imported: Collection[tuple[str, str]]
) -> tuple[set[int], set[tuple[str, str]]]:
    """Of the incident ids ``own`` and the (source, call id) pairs ``imported``, those still
    stored (the analytics store drops the others after a retention run)."""
    i, c = t.incidents.c, t.history_calls.c
    kept_own: set[int] = set()
    ids = list(own)
    for at in range(0, len(ids), _IN_CHUNK):
        kept_own |= {
            int(x)
            for x in conn.execute(sa.select(i.id).where(i.id.in_(ids[at : at + _IN_CHUNK])))
            .scalars()
            .all()
        }
    kept: set[tuple[str, str]] = set()
    by_source: dict[str, list[str]] = {}
    for source, call_id in imported:
        by_source.setdefault(source, []).append(call_id)
    for source, calls in by_source.items():
        for at in range(0, len(calls), _IN_CHUNK):
            part = calls[at : at + _IN_CHUNK]
            kept |= {
                (source, str(x))
                for x in conn.execute(
                    sa.select(c.call_id).where(c.source == source, c.call_id.in_(part))
                ).scalars()
            }
    return kept_own, kept


def roster(conn: sa.Connection) -> dict[str, int]:
    """Units on the roster per station area: the units of the centre's set-up by home station
    (a unit out of service today still counts: it is on the roster for the period)."""
    un = t.units.c
    q = (
        sa.select(un.station_id, sa.func.count())
        .where(un.station_id.is_not(None))
        .group_by(un.station_id)
    )
    return {str(station): int(n) for station, n in conn.execute(q)}
