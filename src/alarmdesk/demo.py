"""The demo city: desks, jurisdictions, stations, units and devices of San Francisco,
built from a real week of its fire-department calls (scripts/build_demo_city.py)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.units import Unit
from alarmdesk.simulate import load_city
from alarmdesk.store import repository as repo


def load_demo(engine: sa.Engine, city: dict[str, Any] | None = None) -> dict[str, int]:
    """Loads (or reloads) the demo city's configuration; returns counts by kind."""
    city = city or load_city()
    stations = {s["id"]: s for s in city["stations"]}
    units = [
        Unit(
            id=u["id"],
            kind=u["kind"],
            station=u["station"],
            capabilities=tuple(u["capabilities"]),
            lat=stations.get(u["station"], {}).get("lat"),
            lon=stations.get(u["station"], {}).get("lon"),
        )
        for u in city["units"]
    ]
    devices = [
        {
            "id": f"panel-{a['account']}",
            "kind": "panel",
            "site": a["site"],
            "lat": a["lat"],
            "lon": a["lon"],
            "zones": a["zones"],
            "checkin_seconds": a["checkin_seconds"],
            "settings": {"account": a["account"]},
        }
        for a in city["accounts"]
    ] + [
        {
            "id": c["id"],
            "kind": "camera",
            "site": c["site"],
            "lat": c["lat"],
            "lon": c["lon"],
            "zones": {z: z for z in c["zones"]},
            "checkin_seconds": None,
            "settings": {},
        }
        for c in city["cameras"]
    ]
    with engine.begin() as conn:
        return {
            "desks": repo.upsert_desks(conn, city["desks"]),
            "stations": repo.upsert_stations(conn, city["stations"]),
            "units": repo.upsert_units(conn, units),
            "devices": repo.upsert_devices(conn, devices),
        }
