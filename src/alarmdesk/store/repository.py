"""Reading and seeding: rows ↔ domain objects, and the queries the API needs.

Writes of signals, incidents, units and events go through the writer only
(``service/writer.py``, which stores through ``store/unit_of_work.py``); what is here either
reads, or seeds configuration (taxonomy, desks, stations, units, devices) outside the alarm
path.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.correlation import CorrelationKey
from alarmdesk.domain.dispatch import ResponsePlanSpec
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.escalation import EscalationSpec, EscalationState
from alarmdesk.domain.geo import Area, checked_area
from alarmdesk.domain.incident import FINAL, OPEN, Condition, Incident, Status, incident_dict
from alarmdesk.domain.procedure import Procedure
from alarmdesk.domain.purpose import check_category, screen
from alarmdesk.domain.routing import RouteSpec
from alarmdesk.domain.signal import Location, SourceKind
from alarmdesk.domain.silences import Silence, SilenceSpec, compile_silence
from alarmdesk.domain.taxonomy import IncidentType, Taxonomy, check_admissible
from alarmdesk.domain.units import Desk, Unit, UnitStatus
from alarmdesk.store import tables as t

# -- rows ↔ objects ------------------------------------------------------------------------


def location_json(loc: Location | None) -> dict[str, Any] | None:
    return msgspec.to_builtins(loc) if loc is not None else None


def location_from(value: Mapping[str, Any] | None) -> Location | None:
    return msgspec.convert(value, Location) if value else None


def incident_row(inc: Incident) -> dict[str, Any]:
    return t.row(
        t.incidents,
        id=inc.id,
        type_code=inc.type_code,
        category=inc.category.value,
        priority=inc.priority,
        status=inc.status.value,
        condition=inc.condition.value,
        source_kind=inc.source_kind.value,
        source_id=inc.source_id,
        location=location_json(inc.location),
        summary=inc.summary,
        correlation_key=str(inc.correlation_key) if inc.correlation_key is not None else None,
        desks=list(inc.desks),
        routed_by=list(inc.routed_by),
        escalation=inc.escalation.to_json() if inc.escalation is not None else None,
        procedure=inc.procedure.to_json() if inc.procedure is not None else None,
        confirmed=inc.confirmed,
        verification=inc.verification,
        en_route_at=inc.en_route_at,
        units=list(inc.units),
        signal_count=inc.signal_count,
        disposition=inc.disposition,
        version=inc.version,
        first_seen=inc.first_seen,
        last_seen=inc.last_seen,
        opened_at=inc.opened_at,
        acknowledged_at=inc.acknowledged_at,
        dispatched_at=inc.dispatched_at,
        on_scene_at=inc.on_scene_at,
        resolved_at=inc.resolved_at,
        closed_at=inc.closed_at,
        cancelled_at=inc.cancelled_at,
    )


def incident_from(r: Mapping[Any, Any]) -> Incident:
    return Incident(
        id=r["id"],
        type_code=r["type_code"],
        category=HarmCategory(r["category"]),
        priority=r["priority"],
        source_kind=SourceKind(r["source_kind"]),
        source_id=r["source_id"],
        opened_at=r["opened_at"],
        first_seen=r["first_seen"],
        last_seen=r["last_seen"],
        location=location_from(r["location"]),
        summary=r["summary"],
        correlation_key=(
            CorrelationKey.parse(r["correlation_key"]) if r["correlation_key"] else None
        ),
        status=Status(r["status"]),
        condition=Condition(r["condition"]),
        desks=tuple(r["desks"]),
        routed_by=tuple(r["routed_by"] or ()),
        escalation=EscalationState.from_json(r["escalation"]) if r["escalation"] else None,
        procedure=Procedure.from_json(r["procedure"]) if r["procedure"] else None,
        confirmed=bool(r["confirmed"]),
        verification=dict(r["verification"]) if r["verification"] else None,
        en_route_at=r["en_route_at"],
        units=tuple(r["units"]),
        signal_count=r["signal_count"],
        acknowledged_at=r["acknowledged_at"],
        dispatched_at=r["dispatched_at"],
        on_scene_at=r["on_scene_at"],
        resolved_at=r["resolved_at"],
        closed_at=r["closed_at"],
        cancelled_at=r["cancelled_at"],
        disposition=r["disposition"],
        version=r["version"],
    )


def unit_row(u: Unit) -> dict[str, Any]:
    return t.row(
        t.units,
        id=u.id,
        kind=u.kind,
        station_id=u.station,
        capabilities=list(u.capabilities),
        status=u.status.value,
        incident_id=u.incident_id,
        lat=u.lat,
        lon=u.lon,
        status_at=u.status_at,
    )


def unit_dict(u: Unit) -> dict[str, Any]:
    return {
        "id": u.id,
        "kind": u.kind,
        "station": u.station,
        "capabilities": list(u.capabilities),
        "status": u.status.value,
        "incident_id": u.incident_id,
        "lat": u.lat,
        "lon": u.lon,
        "status_at": u.status_at.isoformat() if u.status_at else None,
    }


# -- loading the pipeline's state -------------------------------------------------------------


def load_taxonomy(conn: sa.Connection) -> Taxonomy:
    """The types in force: default ones and approved custom ones (never pending ones), each
    with the centre's own procedure where its set-up gives one."""
    rows = conn.execute(
        sa.select(t.incident_types).where(t.incident_types.c.status == "active")
    ).mappings()
    own = {
        r.id: tuple(r.spec["steps"])
        for r in conn.execute(sa.select(t.procedures.c.id, t.procedures.c.spec))
    }
    return Taxonomy(
        IncidentType(
            code=r["code"],
            name=r["name"],
            category=HarmCategory(r["category"]),
            priority=r["priority"],
            definition=r["definition"],
            sop=own.get(r["code"], tuple(r["sop"])),
            origin=r["origin"],
            purpose=r["purpose"],
            legal_basis=r["legal_basis"],
        )
        for r in rows
    )


def check_known_desks(conn: sa.Connection, desks: Iterable[str], field: str = "desks") -> None:
    """Refuses a desk id the centre does not have ('*', every desk, is not an id: callers
    that allow it leave it out). One rule for webhooks, users and tokens.

    Raises:
        InvalidField: ``unknown_reference``, naming the unknown desks.
    """
    wanted = set(desks)
    if not wanted:
        return
    known = set(conn.execute(sa.select(t.desks.c.id).where(t.desks.c.id.in_(wanted))).scalars())
    unknown = sorted(wanted - known)
    if unknown:
        raise InvalidField(
            f"{field}: no desk {', '.join(unknown)}", field=field, code="unknown_reference"
        )


def load_desks(conn: sa.Connection) -> list[Desk]:
    rows = conn.execute(sa.select(t.desks).order_by(t.desks.c.position, t.desks.c.id))
    return [
        Desk(
            id=r.id,
            name=r.name,
            categories=frozenset(HarmCategory(c) for c in r.categories),
            source_kinds=frozenset(SourceKind(s) for s in r.source_kinds),
            area=Area(r.jurisdiction) if r.jurisdiction else None,
        )
        for r in rows
    ]


def load_routes(conn: sa.Connection) -> list[RouteSpec]:
    """The routing tree of the centre's set-up, top-level rules in order."""
    rows = conn.execute(sa.select(t.routing_rules.c.spec).order_by(t.routing_rules.c.position))
    return [msgspec.convert(r.spec, RouteSpec) for r in rows]


def load_silences(conn: sa.Connection, now: datetime) -> list[Silence]:
    """The silences not ended and not past their end: in force now or to come."""
    c = t.silences.c
    rows = conn.execute(
        sa.select(c.id, c.spec, c.starts_at)
        .where(c.ended_at.is_(None), sa.or_(c.ends_at.is_(None), c.ends_at > now))
        .order_by(c.id)
    )
    categories = [h.value for h in HarmCategory]
    out = []
    for r in rows:
        spec = msgspec.json.decode(msgspec.json.encode(r.spec), type=SilenceSpec)
        out.append(compile_silence(r.id, spec, r.starts_at, categories))
    return out


def load_policies(conn: sa.Connection) -> list[EscalationSpec]:
    """The escalation policies of the centre's set-up, in order."""
    c = t.escalation_policies.c
    rows = conn.execute(sa.select(c.spec).order_by(c.position))
    return [msgspec.convert(r.spec, EscalationSpec) for r in rows]


def load_response_plans(conn: sa.Connection) -> list[ResponsePlanSpec]:
    """The response plans of the centre's set-up, in order."""
    c = t.response_plans.c
    rows = conn.execute(sa.select(c.spec).order_by(c.position))
    return [msgspec.convert(r.spec, ResponsePlanSpec) for r in rows]


def load_units(conn: sa.Connection) -> list[Unit]:
    return [
        Unit(
            id=r.id,
            kind=r.kind,
            station=r.station_id,
            capabilities=tuple(r.capabilities),
            status=UnitStatus(r.status),
            incident_id=r.incident_id,
            lat=r.lat,
            lon=r.lon,
            status_at=r.status_at,
        )
        for r in conn.execute(sa.select(t.units).order_by(t.units.c.id))
    ]


def on_desks(desks: Iterable[str]) -> sa.ColumnElement[bool]:
    """The incident is heard by one of ``desks``: a look-up of each candidate incident in
    ``incident_desks``' key (incident, desk). Written as ``id IN (SELECT incident_id ... WHERE
    desk_id IN ...)``, SQLite first listed every incident ever routed to the desks, closed ones
    too, and a two-desk queue's counts took 2.5 times as long over 200,000 incidents
    (bench/README.md, "The desk-filtered queue"); PostgreSQL plans both alike."""
    d = t.incident_desks.c
    return sa.exists().where(d.incident_id == t.incidents.c.id, d.desk_id.in_(list(desks)))


def heard_by(conn: sa.Connection, ids: Sequence[int], desks: Iterable[str]) -> set[int]:
    """Which of the incidents ``ids`` one of ``desks`` hears."""
    i = t.incidents.c
    q = sa.select(i.id).where(i.id.in_(list(ids)), on_desks(desks))
    return set(conn.execute(q).scalars())


def open_incidents_in_box(
    conn: sa.Connection,
    lats: tuple[float, float],
    lons: tuple[float, float],
    desks: Sequence[str] | None,
    limit: int = 500,
) -> list[Incident]:
    """Open incidents whose point lies in a lat/lon box (of the desks given; None: all).

    ``lons`` is (west, east); a west greater than the east is a box across the 180th
    meridian, as in a GeoJSON bbox."""
    i = t.incidents.c
    at_lat, at_lon = i.location["lat"].as_float(), i.location["lon"].as_float()
    west, east = lons
    q = sa.select(t.incidents).where(
        i.status.in_([s.value for s in OPEN]),
        at_lat.between(*lats),
        at_lon.between(west, east) if west <= east else sa.or_(at_lon >= west, at_lon <= east),
    )
    if desks is not None:
        q = q.where(on_desks(desks))
    return [incident_from(r) for r in conn.execute(q.limit(limit)).mappings()]


def load_unfinished_incidents(conn: sa.Connection) -> list[Incident]:
    q = sa.select(t.incidents).where(t.incidents.c.status.not_in([s.value for s in FINAL]))
    return [incident_from(r) for r in conn.execute(q).mappings()]


def correlation_keys(conn: sa.Connection, incident_ids: Iterable[int]) -> dict[int, str | None]:
    """The stored correlation key of each incident that exists (None: folded by place)."""
    ids = sorted(set(incident_ids))
    if not ids:
        return {}
    q = sa.select(t.incidents.c.id, t.incidents.c.correlation_key).where(t.incidents.c.id.in_(ids))
    return {r.id: r.correlation_key for r in conn.execute(q)}


def max_id(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one())


MARKED = (t.incidents, t.signals, t.events)  # the tables whose ids the writer gives


def highest_id(conn: sa.Connection, table: sa.Table) -> int:
    """The highest id ever given in ``table`` (one of :data:`MARKED`): stored, or erased
    by retention since (``tables.id_marks``). The writer gives the next one."""
    mark = conn.execute(sa.select(t.id_marks.c.high).where(t.id_marks.c.name == table.name))
    return max(max_id(conn, table), int(mark.scalar() or 0))


def keep_highest_ids(conn: sa.Connection) -> None:
    """Before erasing rows of :data:`MARKED`: each table's highest id so far is kept, so
    that it is never given again. In the caller's transaction; a mark only rises."""
    m = t.id_marks
    for table in MARKED:
        high = max_id(conn, table)
        raised = conn.execute(
            m.update().where(m.c.name == table.name, m.c.high < high).values(high=high)
        ).rowcount
        if (
            not raised
            and conn.execute(sa.select(m.c.name).where(m.c.name == table.name)).first() is None
        ):
            conn.execute(m.insert().values(name=table.name, high=high))  # a schema made by hand


# -- queries for the API ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    statuses: tuple[str, ...] = ()
    desks: tuple[str, ...] = ()
    priorities: tuple[int, ...] = ()
    type_codes: tuple[str, ...] = ()
    opened_from: datetime | None = None
    opened_to: datetime | None = None


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"i:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, value = raw.split(":", 1)
        if kind != "i" or not 0 < int(value) < 2**63:
            raise ValueError(kind)
        return int(value)
    except (ValueError, UnicodeDecodeError):
        raise InvalidField(
            "cursor is not one this API gave out", field="cursor", code="invalid_cursor"
        ) from None


def list_incidents(
    conn: sa.Connection, f: IncidentFilter, *, limit: int, before_id: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, keyset-paged by id; returns (items, next cursor or None)."""
    c = t.incidents.c
    q = sa.select(t.incidents)
    if f.statuses:
        q = q.where(c.status.in_(f.statuses))
    if f.priorities:
        q = q.where(c.priority.in_(f.priorities))
    if f.type_codes:
        q = q.where(c.type_code.in_(f.type_codes))
    if f.opened_from is not None:
        q = q.where(c.opened_at >= f.opened_from)
    if f.opened_to is not None:
        q = q.where(c.opened_at < f.opened_to)
    if f.desks:
        q = q.where(on_desks(f.desks))
    if before_id is not None:
        q = q.where(c.id < before_id)
    rows = conn.execute(q.order_by(c.id.desc()).limit(limit + 1)).mappings().all()
    items = [incident_dict(incident_from(r)) for r in rows[:limit]]
    cursor = encode_cursor(rows[limit - 1]["id"]) if len(rows) > limit else None
    return items, cursor


def get_incident(conn: sa.Connection, incident_id: int) -> dict[str, Any] | None:
    r = conn.execute(sa.select(t.incidents).where(t.incidents.c.id == incident_id)).mappings()
    found = r.first()
    if found is None:
        return None
    view = incident_dict(incident_from(found))
    sigs = conn.execute(
        sa.select(t.signals).where(t.signals.c.incident_id == incident_id).order_by(t.signals.c.id)
    ).mappings()
    view["signals"] = [
        {
            "id": s["id"],
            "idempotency_key": s["idempotency_key"],
            "source_kind": s["source_kind"],
            "source_id": s["source_id"],
            "type_code": s["type_code"],
            "occurred_at": s["occurred_at"].isoformat(),
            "received_at": s["received_at"].isoformat(),
            "location": s["location"],
            "summary": s["summary"],
            "payload": s["payload"],
            "condition": s["condition"],
            "record_only": s["record_only"],
        }
        for s in sigs
    ]
    evs = conn.execute(
        sa.select(t.events).where(t.events.c.incident_id == incident_id).order_by(t.events.c.id)
    ).mappings()
    view["timeline"] = [
        {
            "id": e["id"],
            "type": e["type"],
            "at": e["at"].isoformat(),
            "actor": e["actor"],
            "detail": e["detail"],
        }
        for e in evs
    ]
    return view


def device_rows(conn: sa.Connection, ids: Iterable[str]) -> list[dict[str, Any]]:
    """The ``devices`` rows of these ids (those that exist)."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    q = sa.select(t.devices).where(t.devices.c.id.in_(wanted))
    return [dict(r) for r in conn.execute(q).mappings()]


def events_after(conn: sa.Connection, last_id: int, limit: int) -> list[sa.RowMapping]:
    q = sa.select(t.events).where(t.events.c.id > last_id).order_by(t.events.c.id).limit(limit)
    return list(conn.execute(q).mappings())


def last_event_id(conn: sa.Connection) -> int:
    return highest_id(conn, t.events)


def count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# -- seeding configuration ------------------------------------------------------------------------


def _upsert(conn: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """Insert or update rows by primary key (portable; configuration-sized data only).

    Updating in place, never delete-and-insert: other rows refer to these (units to their
    station), so loading the same configuration twice must not break a reference.
    """
    if not rows:
        return 0
    pk = table.primary_key.columns.values()[0]
    existing = set()
    ids = [r[pk.name] for r in rows]
    for i in range(0, len(ids), 500):
        existing |= set(conn.execute(sa.select(pk).where(pk.in_(ids[i : i + 500]))).scalars())
    new = [r for r in rows if r[pk.name] not in existing]
    old = [r for r in rows if r[pk.name] in existing]
    if new:
        conn.execute(table.insert(), list(new))
    if old:
        conn.execute(
            table.update().where(pk == sa.bindparam("b_key")),
            [{**{k: v for k, v in r.items() if k != pk.name}, "b_key": r[pk.name]} for r in old],
        )
    return len(rows)


def upsert_types(conn: sa.Connection, types: Iterable[IncidentType]) -> int:
    rows = [
        t.row(
            t.incident_types,
            code=x.code,
            name=x.name,
            category=x.category.value,
            priority=x.priority,
            definition=x.definition,
            sop=list(x.sop),
            origin=x.origin,
        )
        for x in map(check_admissible, types)
    ]
    return _upsert(conn, t.incident_types, rows)


def upsert_desks(conn: sa.Connection, desks: Sequence[Mapping[str, Any]]) -> int:
    rows = []
    for pos, d in enumerate(desks):
        cats = [c for c in d.get("categories", []) if c != "*"]
        # A desk is a routing rule: its name states a purpose, screened like a type's.
        screen({"desk id": d["id"], "desk name": d["name"]})
        for c in cats:
            check_category(c)  # refuses unknown categories
        for s in d.get("sources", []):
            SourceKind(s)
        if d.get("jurisdiction"):
            checked_area(d["jurisdiction"], "jurisdiction")  # refuses what would route wrongly
        rows.append(
            t.row(
                t.desks,
                id=d["id"],
                name=d["name"],
                categories=cats,
                source_kinds=list(d.get("sources", [])),
                jurisdiction=d.get("jurisdiction"),
                position=pos,
            )
        )
    return _upsert(conn, t.desks, rows)


def upsert_stations(conn: sa.Connection, stations: Sequence[Mapping[str, Any]]) -> int:
    rows = [
        t.row(t.stations, id=s["id"], name=s["name"], lat=s.get("lat"), lon=s.get("lon"))
        for s in stations
    ]
    return _upsert(conn, t.stations, rows)


def upsert_units(conn: sa.Connection, units: Sequence[Unit]) -> int:
    return _upsert(conn, t.units, [unit_row(u) for u in units])


def upsert_devices(conn: sa.Connection, devices: Sequence[Mapping[str, Any]]) -> int:
    rows = [
        t.row(
            t.devices,
            id=d["id"],
            kind=d["kind"],
            site=d["site"],
            lat=d.get("lat"),
            lon=d.get("lon"),
            zones=d.get("zones", {}),
            checkin_seconds=d.get("checkin_seconds"),
            settings=d.get("settings", {}),
        )
        for d in devices
    ]
    return _upsert(conn, t.devices, rows)
