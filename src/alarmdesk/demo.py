"""The demo city: desks, jurisdictions, stations, units and devices of San Francisco,
built from a real week of its fire-department calls (scripts/build_demo_city.py).

Its set-up is a folder of set-up files shipped in the package (data/demo_centre/), applied like
any centre's (``alarmdesk config apply``); ``python -m alarmdesk.demo`` re-renders the folder
from data/demo_city.json after a rebuild of the city.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

from alarmdesk.clock import utcnow
from alarmdesk.domain.centre import Centre, CentreFile
from alarmdesk.domain.centre_plan import records
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import centre, centre_files
from alarmdesk.service.actions import perform
from alarmdesk.simulate import load_city
from alarmdesk.store.audit import AuditChain

DEMO_ACTOR = Actor("system:demo", "system")


def centre_of_city(city: dict[str, Any]) -> CentreFile:
    """The demo city's set-up (desks, stations, units, panels, cameras) as one set-up file."""
    stations = {s["id"]: s for s in city["stations"]}
    data = {
        "desks": [
            {
                "id": d["id"],
                "name": d["name"],
                "categories": [c for c in d.get("categories", []) if c != "*"],
                "sources": list(d.get("sources", [])),
                "jurisdiction": d.get("jurisdiction"),
            }
            for d in city["desks"]
        ],
        "stations": city["stations"],
        "units": [
            {
                "id": u["id"],
                "kind": u["kind"],
                "station": u["station"],
                "capabilities": u["capabilities"],
            }
            for u in city["units"]
            if u["station"] in stations
        ],
        "panels": [
            {
                "account": a["account"],
                "site": a["site"],
                "lat": a["lat"],
                "lon": a["lon"],
                "zones": a["zones"],
                "checkin_seconds": a["checkin_seconds"],
            }
            for a in city["accounts"]
        ],
        "cameras": [
            {
                "id": c["id"],
                "site": c["site"],
                "lat": c["lat"],
                "lon": c["lon"],
                "zones": {z: z for z in c["zones"]},
                "alarm_zones": c.get("alarm_zones", []),
            }
            for c in city["cameras"]
        ],
    }
    return msgspec.convert(data, CentreFile)


def demo_centre_texts(city: dict[str, Any] | None = None) -> dict[str, str]:
    """The files of data/demo_centre/, rendered from data/demo_city.json."""
    spec = centre_of_city(city or load_city())
    return centre_files.dump(records(Centre.of([spec])), include_secrets=True)


@contextmanager
def demo_centre() -> Iterator[Path]:
    """The shipped demo set-up folder (data/demo_centre/), as a path."""
    with resources.as_file(resources.files("alarmdesk") / "data" / "demo_centre") as path:
        yield path


def load_demo(engine: sa.Engine, chain: AuditChain) -> dict[str, int]:
    """Applies the shipped demo set-up (``alarmdesk config apply`` of data/demo_centre/);
    returns how many items of each kind it added or changed."""
    with demo_centre() as folder:
        located = centre_files.load(folder)
    plan = perform(engine, chain, centre.apply(DEMO_ACTOR, located, engine), utcnow())
    return {k: c["added"] + c["changed"] for k, c in plan.counts().items()}


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


def load_demo_accounts(
    engine: sa.Engine, chain: AuditChain, actor: Actor
) -> tuple[list[str], str | None]:
    """Creates the demo users that do not exist yet, and an intake token for the simulator
    (returned once; None when the demo users were already there). Each account is created
    as `alarmdesk users add` and `tokens create` create one: with its audit entry."""
    from alarmdesk.service import accounts as account_actions
    from alarmdesk.store import accounts

    names = [name for name, _, _ in DEMO_USERS]
    with engine.connect() as conn:
        existing = {u["name"] for u in accounts.list_users(conn)}
    missing = [(n, role, desks) for n, role, desks in DEMO_USERS if n not in existing]
    if not missing:
        return names, None
    for name, role, desks in missing:
        perform(
            engine,
            chain,
            account_actions.create_user(actor, name, DEMO_PASSWORD, role, list(desks)),
            utcnow(),
        )
    create = account_actions.create_token(actor, "demo-simulator", "intake", [])
    _, token = perform(engine, chain, create, utcnow())
    return names, token


if __name__ == "__main__":
    target = Path(__file__).parent / "data" / "demo_centre"
    target.mkdir(exist_ok=True)
    for name, text in demo_centre_texts().items():
        (target / name).write_text(text, encoding="utf-8")
        print(target / name)
