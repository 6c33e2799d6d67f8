"""The dispatch recommendation for one incident: its needs (response plan or procedure) and
the nearest fitting available units, with ETAs and what is short."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.dispatch import needs_for, recommend, short
from alarmdesk.domain.errors import NotFound
from alarmdesk.store import repository as repo

__all__ = ["recommendation"]


def recommendation(engine: sa.Engine, incident_id: int) -> dict[str, Any]:
    """``{"incident_id", "needs", "units": [{unit_id, kind, need, distance_m, eta_s}],
    "short": [{need, missing}]}`` from the units as last committed.

    Raises:
        NotFound: no such incident.
    """
    with engine.connect() as conn:
        found = repo.get_incident(conn, incident_id)
        if found is None:
            raise NotFound(f"no incident {incident_id}", field="incident_id")
        units = repo.load_units(conn)
        plans = repo.load_response_plans(conn)
        itype = repo.load_taxonomy(conn).get(found["type_code"])
    category = HarmCategory(found["category"])
    location = repo.location_from(found.get("location"))
    needs = needs_for(found["type_code"], category, itype.sop if itype else (), plans)
    picks = recommend(needs, units, location)
    return {
        "incident_id": incident_id,
        "needs": [
            {"kind": n.kind, "capability": n.capability, "count": n.count, "label": n.label}
            for n in needs
        ],
        "units": [
            {
                "unit_id": p.unit_id,
                "kind": p.kind,
                "need": p.need,
                "distance_m": round(p.distance_m) if p.distance_m is not None else None,
                "eta_s": round(p.eta_s) if p.eta_s is not None else None,
            }
            for p in picks
        ],
        "short": short(needs, picks),
    }
