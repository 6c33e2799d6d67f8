"""Reference data: desks and response units."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from alarmdesk.safeguards.access import Permission
from alarmdesk.service import queries
from alarmdesk.web.api.common import needs, services
from alarmdesk.web.api.schemas import AUTH, DeskOut, UnitOut, errors


@get(
    "/api/v1/desks",
    sync_to_thread=True,
    opt=needs(Permission.REFERENCE_READ),
    responses=errors(*AUTH),
    summary="Desks and what they see",
)
def list_desks(request: Request[Any, Any, Any]) -> list[DeskOut]:
    return [
        DeskOut(
            id=d.id,
            name=d.name,
            categories=sorted(d.categories),
            source_kinds=sorted(d.source_kinds),
            has_jurisdiction=d.area is not None,
        )
        for d in queries.desks(services(request).engine)
    ]


@get(
    "/api/v1/units",
    sync_to_thread=True,
    opt=needs(Permission.REFERENCE_READ),
    responses=errors(*AUTH),
    summary="Response units and their status",
)
def list_units(request: Request[Any, Any, Any]) -> list[UnitOut]:
    units = [queries.unit_dict(u) for u in queries.units(services(request).engine)]
    return msgspec.convert(units, list[UnitOut])


ROUTES = [list_desks, list_units]
