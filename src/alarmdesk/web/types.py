"""Incident types over the API: the taxonomy in force, and custom types with approvals."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.purpose import check_category
from alarmdesk.domain.signal import decode
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.store import custom_types
from alarmdesk.store import repository as repo
from alarmdesk.web.api.common import actor_of, audit, needs, read_body, services
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
    summary="The incident types in force (with custom=true: custom types and approvals)",
)
async def list_types(
    request: Request[Any, Any, Any],
    custom: Annotated[bool, QueryParameter()] = False,
) -> list[dict[str, Any]]:
    engine = services(request).engine

    def load() -> list[dict[str, Any]]:
        with engine.connect() as conn:
            if custom:
                return custom_types.list_custom(conn)
            return [msgspec.to_builtins(x) for x in repo.load_taxonomy(conn)]

    return await anyio.to_thread.run_sync(load)


@post(
    "/api/v1/incident-types",
    status_code=201,
    opt=needs(Permission.TYPES_PROPOSE),
    summary="Propose a custom incident type",
    description="Screened for protected purposes (422 protected_purpose); takes effect after "
    "two approvals, one by a rights officer, neither by the author.",
)
async def propose_type(request: Request[Any, Any, Any]) -> dict[str, Any]:
    body: TypeIn = decode(_decoder, await read_body(request, 16 * 1024))
    proposed = to_type(body)
    principal = principal_of(request)
    svc = services(request)

    def store() -> dict[str, Any]:
        with svc.engine.begin() as conn:
            custom_types.propose(conn, proposed, principal.name, svc.clock())
            return custom_types.describe(conn, proposed.code)

    described = await anyio.to_thread.run_sync(store)
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONFIGURE,
            "incident_type",
            proposed.code,
            rule="types.propose",
        ),
    )
    return described


@post(
    "/api/v1/incident-types/{code:str}/approve",
    status_code=200,
    opt=needs(Permission.TYPES_APPROVE),
    summary="Approve a custom incident type",
)
async def approve_type(request: Request[Any, Any, Any], code: FromPath[str]) -> dict[str, Any]:
    principal = principal_of(request)
    svc = services(request)

    def store() -> dict[str, Any]:
        with svc.engine.begin() as conn:
            return custom_types.approve(conn, code, principal.name, principal.role, svc.clock())

    described = await anyio.to_thread.run_sync(store)
    event = AuditEvent(
        actor_of(request),
        Operation.CONFIGURE,
        "incident_type",
        described["code"],
        rule="types.approve",
        detail={"status": described["status"]},
    )
    if described["status"] == "active":
        await svc.writer.reload_taxonomy([event])
    else:
        await audit(request, event)
    return described


ROUTES = [list_types, propose_type, approve_type]
