"""Reference data: desks and response units."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from alarmdesk.safeguards.access import Permission
from alarmdesk.service import queries
from alarmdesk.web.api.common import needs, services


@get(
    "/api/v1/desks",
    sync_to_thread=True,
    opt=needs(Permission.REFERENCE_READ),
    summary="Desks and what they see",
)
def list_desks(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": d.id,
            "name": d.name,
            "categories": sorted(d.categories),
            "source_kinds": sorted(d.source_kinds),
            "has_jurisdiction": d.area is not None,
        }
        for d in queries.desks(services(request).engine)
    ]


@get(
    "/api/v1/units",
    sync_to_thread=True,
    opt=needs(Permission.REFERENCE_READ),
    summary="Response units and their status",
)
def list_units(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    return [queries.unit_dict(u) for u in queries.units(services(request).engine)]


ROUTES = [list_desks, list_units]
