"""The centre's set-up over HTTP, for administrators: the same files, rules and audit as
``alarmdesk config`` (docs/centre.md). Keys are write-only: reading the set-up redacts them,
and a file that says ``<redacted>`` keeps the stored key."""

from __future__ import annotations

from typing import Any

import anyio
import msgspec
from litestar import Request, get, post

from alarmdesk.domain.centre_plan import Plan
from alarmdesk.domain.errors import InvalidField
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.service import centre, centre_files
from alarmdesk.web.api.common import actor_of, audit, needs, read_body, services
from alarmdesk.web.api.schemas import AUTH, SetupPlanOut, errors

MAX_SETUP = 16 * 1024 * 1024  # bytes of one set-up text (100,000 panels fit)


def _located(raw: bytes) -> centre_files.Located:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidField("the set-up is not UTF-8", code="invalid_value") from None
    return centre_files.loads(text)


def _plan_out(plan: Plan) -> SetupPlanOut:
    return msgspec.convert({"counts": plan.counts(), **plan.summary()}, SetupPlanOut)


@get(
    "/api/v1/setup",
    opt=needs(Permission.SETUP_MANAGE),
    responses=errors(*AUTH, 422),
    summary="The stored set-up (AES keys redacted)",
)
async def read_setup(request: Request[Any, Any, Any]) -> dict[str, Any]:
    found = await anyio.to_thread.run_sync(centre.export, services(request).engine)
    await audit(request, AuditEvent(actor_of(request), Operation.CONSULT, "centre", ""))
    return found


@post(
    "/api/v1/setup/plan",
    status_code=200,
    opt=needs(Permission.SETUP_MANAGE),
    responses=errors(*AUTH, 408, 413, 422),
    summary="What applying a set-up (YAML or JSON body) would change; nothing is written",
)
async def plan_setup(request: Request[Any, Any, Any]) -> SetupPlanOut:
    raw = await read_body(request, MAX_SETUP)
    engine = services(request).engine
    planned = await anyio.to_thread.run_sync(lambda: centre.plan(engine, _located(raw)))
    return _plan_out(planned)


@post(
    "/api/v1/setup/apply",
    status_code=200,
    opt=needs(Permission.SETUP_MANAGE),
    responses=errors(*AUTH, 408, 413, 422, 503),
    summary="Applies a set-up (YAML or JSON body) in one audited transaction",
    description="All or nothing. A refused text (purpose screening) is 422 protected_purpose "
    "naming the line and the rule; removing a unit or device with open incidents is 422 "
    "in_use. New incidents follow the new set-up at once; open ones keep theirs.",
)
async def apply_setup(request: Request[Any, Any, Any]) -> SetupPlanOut:
    raw = await read_body(request, MAX_SETUP)
    # Parsing and the files' own rules take seconds for a large set-up: off the event loop.
    engine = services(request).engine
    action = await anyio.to_thread.run_sync(
        lambda: centre.apply(actor_of(request), _located(raw), engine)
    )
    applied = await services(request).writer.run(action)
    return _plan_out(applied)


ROUTES = [read_setup, plan_setup, apply_setup]
