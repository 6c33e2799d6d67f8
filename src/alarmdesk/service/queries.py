"""Read use cases: what the web and the command line may look up, each in a connection of its
own (call them in a worker thread). Entrypoints read through these, never with SQL."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.geo import haversine_m, wrap_longitude
from alarmdesk.domain.incident import incident_dict
from alarmdesk.domain.units import Desk, Unit
from alarmdesk.store import repository as repo
from alarmdesk.store.repository import IncidentFilter, decode_cursor, unit_dict

__all__ = [
    "IncidentFilter",
    "decode_cursor",
    "desks",
    "events_after",
    "get_incident",
    "list_incidents",
    "unit_dict",
    "units",
]


def list_incidents(
    engine: sa.Engine, flt: IncidentFilter, *, limit: int, before_id: int | None
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first, keyset-paged by id: (items, next cursor or None)."""
    with engine.connect() as conn:
        return repo.list_incidents(conn, flt, limit=limit, before_id=before_id)


def get_incident(engine: sa.Engine, incident_id: int) -> dict[str, Any] | None:
    """The incident with its signals and timeline, or None."""
    with engine.connect() as conn:
        return repo.get_incident(conn, incident_id)


def desks(engine: sa.Engine) -> list[Desk]:
    with engine.connect() as conn:
        return repo.load_desks(conn)


def units(engine: sa.Engine) -> list[Unit]:
    with engine.connect() as conn:
        return repo.load_units(conn)


def events_after(engine: sa.Engine, last_id: int, limit: int) -> list[Mapping[str, Any]]:
    """Events after ``last_id`` in id order, at most ``limit`` (the stream's replay)."""
    with engine.connect() as conn:
        return [dict(r) for r in repo.events_after(conn, last_id, limit)]


def heard_by(engine: sa.Engine, ids: Sequence[int], desks: Iterable[str]) -> set[int]:
    """Which of the incidents ``ids`` one of ``desks`` hears."""
    with engine.connect() as conn:
        return repo.heard_by(conn, ids, desks)


def nearby(
    engine: sa.Engine,
    lat: float,
    lon: float,
    radius_m: float,
    desks: Sequence[str] | None,
    limit: int = 10,
) -> list[dict[str, Any]]:
    """Open incidents within ``radius_m`` of a point, nearest first, each with its
    ``distance_m`` (a call-taker's candidates to join); ``desks`` None: every desk."""
    dlat = radius_m / 111_320
    dlon = radius_m / (111_320 * max(0.01, math.cos(math.radians(lat))))
    # across the 180th meridian: west > east
    west, east = wrap_longitude(lon - dlon), wrap_longitude(lon + dlon)
    if dlon >= 180.0:
        west, east = -180.0, 180.0
    with engine.connect() as conn:
        boxed = repo.open_incidents_in_box(conn, (lat - dlat, lat + dlat), (west, east), desks)
    found = []
    for inc in boxed:
        loc = inc.location
        assert loc is not None and loc.lat is not None and loc.lon is not None
        metres = haversine_m(lat, lon, loc.lat, loc.lon)
        if metres <= radius_m:
            found.append({**incident_dict(inc), "distance_m": round(metres)})
    found.sort(key=lambda x: (x["distance_m"], x["id"]))
    return found[:limit]
