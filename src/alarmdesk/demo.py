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
            "settings": {"alarm_zones": c.get("alarm_zones", [])},
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


DEMO_PASSWORD = "alarmdesk-demo"  # noqa: S105 - the published demo login, never for production
DEMO_USERS = [  # (name, role, desks)
    ("operator", "operator", ["north", "south", "alarms"]),
    ("north", "operator", ["north"]),
    ("south", "operator", ["south"]),
    ("calltaker", "call_taker", ["north", "south"]),
    ("supervisor", "supervisor", ["*"]),
    ("auditor", "auditor", ["*"]),
    ("rights", "rights_officer", ["*"]),
    ("admin", "admin", ["*"]),
]


def load_demo_accounts(engine: sa.Engine) -> tuple[list[str], str | None]:
    """Creates the demo users that do not exist yet, and an intake token for the simulator
    (returned once; None when the demo users were already there)."""
    from alarmdesk.clock import utcnow
    from alarmdesk.store import accounts

    names = [name for name, _, _ in DEMO_USERS]
    with engine.begin() as conn:
        existing = {u["name"] for u in accounts.list_users(conn)}
        created = False
        for name, role, desks in DEMO_USERS:
            if name not in existing:
                accounts.create_user(conn, name, DEMO_PASSWORD, role, desks, utcnow())
                created = True
        if not created:
            return names, None
        _, token = accounts.create_token(conn, "demo-simulator", "intake", [], utcnow())
    return names, token
