"""The stored set-up (desks, stations, units, devices) as records, and a plan written back.

Records are the canonical dicts of :func:`alarmdesk.domain.centre.records`: the same shape on
both sides of a diff. A unit's status, incident and position belong to the running centre, not
to the set-up: they are neither read into records nor overwritten by an apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.centre import KINDS, RULE_KINDS
from alarmdesk.domain.centre_plan import Plan
from alarmdesk.domain.incident import OPEN
from alarmdesk.domain.units import UnitStatus
from alarmdesk.store import tables as t

__all__ = ["busy", "item_states", "read_records", "revision", "write_plan"]

_DEVICE_KINDS = {"panels": "panel", "cameras": "camera", "sensors": "sensor"}
_OPEN = [s.value for s in OPEN]


def read_records(conn: sa.Connection) -> dict[str, dict[str, dict[str, Any]]]:
    """Every stored item of the set-up, by kind and id."""
    out: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in KINDS}
    d = t.desks.c
    for r in conn.execute(
        sa.select(d.id, d.name, d.categories, d.source_kinds, d.jurisdiction, d.position)
    ).mappings():
        out["desks"][r["id"]] = {
            **r,
            "categories": list(r["categories"] or []),
            "source_kinds": list(r["source_kinds"] or []),
        }
    s = t.stations.c
    for r in conn.execute(sa.select(s.id, s.name, s.lat, s.lon)).mappings():
        out["stations"][r["id"]] = dict(r)
    u = t.units.c
    for r in conn.execute(sa.select(u.id, u.kind, u.station_id, u.capabilities)).mappings():
        out["units"][r["id"]] = {**r, "capabilities": list(r["capabilities"] or [])}
    v = t.devices.c
    kind_of = {dk: k for k, dk in _DEVICE_KINDS.items()}
    for r in conn.execute(
        sa.select(v.id, v.kind, v.site, v.lat, v.lon, v.zones, v.checkin_seconds, v.settings)
    ).mappings():
        kind = kind_of.get(r["kind"])
        if kind is not None:
            out[kind][r["id"]] = {
                **r,
                "zones": dict(r["zones"] or {}),
                "settings": dict(r["settings"] or {}),
            }
    for kind in RULE_KINDS:
        rc = _table(kind).c
        for r in conn.execute(sa.select(rc.id, rc.position, rc.spec)).mappings():
            out[kind][r["id"]] = dict(r)
    return out


def busy(conn: sa.Connection, plan: Plan) -> list[tuple[str, str, str]]:
    """The removals the running centre forbids: ``(kind, id, why)`` for a unit committed to
    an incident, a device or desk with open incidents."""
    removed: dict[str, list[str]] = {}
    for c in plan.removed:
        removed.setdefault(c.kind, []).append(c.id)
    out: list[tuple[str, str, str]] = []
    if removed.get("units"):
        u = t.units.c
        for r in conn.execute(
            sa.select(u.id, u.status, u.incident_id).where(
                u.id.in_(removed["units"]),
                sa.or_(
                    u.incident_id.is_not(None),
                    u.status.not_in([UnitStatus.AVAILABLE.value, UnitStatus.OUT_OF_SERVICE.value]),
                ),
            )
        ):
            out.append(("units", r.id, f"committed to incident {r.incident_id} ({r.status})"))
    device_ids = [i for k in _DEVICE_KINDS for i in removed.get(k, [])]
    if device_ids:
        i = t.incidents.c
        kinds = {i: k for k in _DEVICE_KINDS for i in removed.get(k, [])}
        for r in conn.execute(
            sa.select(i.source_id, sa.func.count())
            .where(i.source_id.in_(device_ids), i.status.in_(_OPEN))
            .group_by(i.source_id)
        ):
            out.append((kinds[r[0]], r[0], f"{r[1]} open incident(s)"))
    if removed.get("desks"):
        i, idk = t.incidents.c, t.incident_desks.c
        for r in conn.execute(
            sa.select(idk.desk_id, sa.func.count())
            .join_from(t.incident_desks, t.incidents, idk.incident_id == i.id)
            .where(idk.desk_id.in_(removed["desks"]), i.status.in_(_OPEN))
            .group_by(idk.desk_id)
        ):
            out.append(("desks", r[0], f"{r[1]} open incident(s)"))
    return out


def _table(kind: str) -> sa.Table:
    tables = {"desks": t.desks, "stations": t.stations, "units": t.units}
    rules = {
        "routing": t.routing_rules,
        "escalation": t.escalation_policies,
        "response_plans": t.response_plans,
        "procedures": t.procedures,
    }
    return {**tables, **rules}.get(kind, t.devices)


def _ids(changes: Iterable[Any], kind: str) -> list[str]:
    return [c.id for c in changes if c.kind == kind]


def revision(conn: sa.Connection) -> int:
    """The set-up's revision: moved by every apply that changes something."""
    found = conn.execute(sa.select(t.setup_revision.c.revision)).scalar()
    return int(found or 0)


def write_plan(conn: sa.Connection, plan: Plan) -> None:
    """Writes the plan's additions, changes and removals (the caller holds the transaction),
    and moves the set-up's revision so a running writer takes them up."""
    if not plan.empty:
        conn.execute(sa.update(t.setup_revision).values(revision=t.setup_revision.c.revision + 1))
    records: Mapping[str, Mapping[str, Mapping[str, Any]]] = plan.records
    for kind in reversed(KINDS):  # devices and units before the stations they name
        ids = _ids(plan.removed, kind)
        if ids:
            table = _table(kind)
            conn.execute(sa.delete(table).where(table.c.id.in_(ids)))
    for kind in KINDS:
        table = _table(kind)
        added = [dict(records[kind][i]) for i in _ids(plan.added, kind)]
        if added:
            if kind == "units":
                where = _station_positions(conn)
                for row in added:
                    lat, lon = where.get(row["station_id"], (None, None))
                    row.update(status=UnitStatus.AVAILABLE.value, lat=lat, lon=lon)
            conn.execute(sa.insert(table), added)
        changed = _ids(plan.changed, kind)
        if kind == "units" and changed:
            _place_moved_units(conn, {i: records[kind][i] for i in changed})
        for i in changed:
            values = {k: v for k, v in records[kind][i].items() if k != "id"}
            conn.execute(sa.update(table).where(table.c.id == i).values(**values))
    for kind in _ORDERED:
        if _ids(plan.removed, kind):
            _close_gaps(conn, _table(kind))


# Kinds whose order is stored as ``position``: the items' places in the files, 0, 1, 2…
_ORDERED = ("desks", *RULE_KINDS)


def _close_gaps(conn: sa.Connection, table: sa.Table) -> None:
    """Numbers the items 0, 1, 2… in their order, as
    :func:`alarmdesk.domain.centre_plan.records` numbers a set-up's. Removing one item (over
    the API, in the console) leaves a gap otherwise, and the stored set-up, exported and
    planned back, would change the position of every item after it."""
    c = table.c
    ids = conn.execute(sa.select(c.id, c.position).order_by(c.position, c.id)).all()
    for pos, (item_id, was) in enumerate(ids):
        if was != pos:
            conn.execute(sa.update(table).where(c.id == item_id).values(position=pos))


def _place_moved_units(conn: sa.Connection, wanted: Mapping[str, Mapping[str, Any]]) -> None:
    """A unit given another station waits at it when it is available at home, and any unit
    without a position gets its station's; a unit on a job keeps the position it reported."""
    where = _station_positions(conn)
    u = t.units.c
    rows = conn.execute(
        sa.select(u.id, u.station_id, u.status, u.lat).where(u.id.in_(list(wanted)))
    )
    for r in rows:
        station = wanted[r.id].get("station_id")
        moved = station != r.station_id and r.status == UnitStatus.AVAILABLE.value
        if station in where and (moved or r.lat is None):
            lat, lon = where[station]
            conn.execute(sa.update(t.units).where(u.id == r.id).values(lat=lat, lon=lon))


def _station_positions(conn: sa.Connection) -> dict[str, tuple[float | None, float | None]]:
    s = t.stations.c
    return {r.id: (r.lat, r.lon) for r in conn.execute(sa.select(s.id, s.lat, s.lon))}


def item_states(conn: sa.Connection, kind: str) -> dict[str, dict[str, Any]]:
    """What the running centre holds of the items of ``kind``, by id: a unit's status and
    incident, the open incidents of a device or a desk (``open_incidents``). Items without
    any are left out. One grouped query over the open incidents, whatever the set-up's size."""
    out: dict[str, dict[str, Any]] = {}
    i = t.incidents.c
    if kind == "units":
        u = t.units.c
        for r in conn.execute(sa.select(u.id, u.status, u.incident_id)):
            out[r.id] = {
                "status": r.status,
                "incident_id": r.incident_id,
                "open_incidents": int(r.incident_id is not None),
            }
    elif kind in _DEVICE_KINDS:
        v = t.devices.c
        for r in conn.execute(
            sa.select(i.source_id, sa.func.count())
            .join_from(t.incidents, t.devices, v.id == i.source_id)
            .where(i.status.in_(_OPEN), v.kind == _DEVICE_KINDS[kind])
            .group_by(i.source_id)
        ):
            out[r[0]] = {"open_incidents": int(r[1])}
    elif kind == "desks":
        idk = t.incident_desks.c
        for r in conn.execute(
            sa.select(idk.desk_id, sa.func.count())
            .join_from(t.incident_desks, t.incidents, idk.incident_id == i.id)
            .where(i.status.in_(_OPEN))
            .group_by(idk.desk_id)
        ):
            out[r[0]] = {"open_incidents": int(r[1])}
    return out
