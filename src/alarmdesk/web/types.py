"""Incident types over the API: the taxonomy in force, and custom types with approvals.

A proposal or an approval is a service action (``service/custom_types.py``) run by the writer:
the change and its audit entry commit together or not at all, and an approval that puts a
type in force reloads the taxonomy in the same transaction."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.purpose import check_category
from alarmdesk.domain.signal import check_text, decode
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.safeguards.access import Permission
from alarmdesk.service import custom_types
from alarmdesk.web.api.common import actor_of, needs, read_body, services
from alarmdesk.web.api.schemas import AUTH, IncidentTypeOut, body, errors
from alarmdesk.web.auth import principal_of


class TypeIn(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    category: str
    priority: Annotated[int, msgspec.Meta(ge=1, le=5)]
    purpose: Annotated[str, msgspec.Meta(max_length=2000)]
    legal_basis: Annotated[str, msgspec.Meta(max_length=2000)]
    definition: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    sop: list[Annotated[str, msgspec.Meta(max_length=500)]] = msgspec.field(default_factory=list)


_decoder = msgspec.json.Decoder(TypeIn)


def to_type(body: TypeIn) -> IncidentType:
    """The proposed type (its texts are checked by ``store.custom_types.propose``, for the
    API and the command line alike)."""
    check_text(body.category, "category")  # before it is named in check_category's refusal
    category: HarmCategory = check_category(body.category)
    return IncidentType(
        code=body.code.strip().upper(),
        name=body.name,
        category=category,
        priority=body.priority,
        definition=body.definition,
        sop=tuple(body.sop),
        origin="custom",
        purpose=body.purpose,
        legal_basis=body.legal_basis,
    )


@get(
    "/api/v1/incident-types",
    opt=needs(Permission.REFERENCE_READ),
    responses=errors(*AUTH, 422),
    summary="The incident types in force (with custom=true: custom types and approvals)",
)
async def list_types(
    request: Request[Any, Any, Any],
    custom: Annotated[bool, QueryParameter()] = False,
) -> list[IncidentTypeOut]:
    engine = services(request).engine
    found = await anyio.to_thread.run_sync(lambda: custom_types.list_types(engine, custom=custom))
    return msgspec.convert(found, list[IncidentTypeOut])


@post(
    "/api/v1/incident-types",
    status_code=201,
    opt=needs(Permission.TYPES_PROPOSE),
    dependencies=body(TypeIn),
    responses=errors(400, *AUTH, 408, 409, 413, 422, 503),
    summary="Propose a custom incident type",
    description="Screened for protected purposes (422 protected_purpose); takes effect after "
    "two approvals, one by a rights officer, neither by the author.",
)
async def propose_type(request: Request[Any, Any, Any]) -> IncidentTypeOut:
    body: TypeIn = decode(_decoder, await read_body(request, 16 * 1024))
    proposed = to_type(body)
    action = custom_types.propose(proposed, principal_of(request).name, actor_of(request))
    return msgspec.convert(await services(request).writer.run(action), IncidentTypeOut)


@post(
    "/api/v1/incident-types/{code:str}/approve",
    status_code=200,
    opt=needs(Permission.TYPES_APPROVE),
    responses=errors(*AUTH, 404, 409, 422, 503),
    summary="Approve a custom incident type",
)
async def approve_type(request: Request[Any, Any, Any], code: FromPath[str]) -> IncidentTypeOut:
    check_text(code, "code")  # before the writer: PostgreSQL refuses a NUL in its look-up
    action = custom_types.approve(code, principal_of(request), actor_of(request))
    return msgspec.convert(await services(request).writer.run(action), IncidentTypeOut)


ROUTES = [list_types, propose_type, approve_type]
