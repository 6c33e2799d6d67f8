"""Reference data: desks and response units."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.params import FromPath

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.signal import check_text, decode
from alarmdesk.safeguards.access import Permission, acting_desks
from alarmdesk.service import queries
from alarmdesk.web.api.common import actor_of, needs, read_body, services
from alarmdesk.web.api.schemas import AUTH, DeskOut, UnitOut, UnitReportIn, body, errors
from alarmdesk.web.auth import principal_of


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


_report_decoder = msgspec.json.Decoder(UnitReportIn)


@post(
    "/api/v1/units/{unit_id:str}/report",
    status_code=200,
    opt=needs(Permission.UNIT_REPORT),
    dependencies=body(UnitReportIn),
    responses=errors(*AUTH, 404, 408, 409, 413, 422, 503),
    summary="A unit's status and/or position (crew status buttons, AVL)",
    description="en_route stamps the incident's first en-route time; on_scene is an arrival "
    "at its incident; returning or available clears it from the incident. Dispatched is "
    "only ever the operator's dispatch. A status the unit cannot go to from its own: 409 "
    "invalid_transition. The position is stored, never written to the audit log.",
)
async def report_unit(request: Request[Any, Any, Any], unit_id: FromPath[str]) -> UnitOut:
    raw = await read_body(request, 4096)
    report = decode(_report_decoder, raw) if raw.strip() else UnitReportIn()
    if (report.lat is None) != (report.lon is None):
        raise InvalidField("lat and lon go together", field="lat", code="invalid_value")
    check_text(unit_id, "unit_id")
    principal = principal_of(request)
    desks = acting_desks(principal)
    view = await services(request).writer.submit_unit_report(
        c.UnitReport(
            unit_id[:64], principal.name, report.status, report.lat, report.lon, desks=desks
        ),
        actor=actor_of(request),
    )
    return msgspec.convert(view, UnitOut)


ROUTES = [list_desks, list_units, report_unit]
