"""Incidents: the desk-scoped list and search, one incident, and the operators' actions."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, get, post
from litestar.params import FromPath, QueryParameter

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import Forbidden, InvalidField, NotFound
from alarmdesk.domain.incident import OPEN, Status
from alarmdesk.domain.signal import check_text, decode, duplicate_key
from alarmdesk.safeguards.access import Permission, Principal, Role, shares_desk
from alarmdesk.safeguards.audit import AuditEvent, Operation, check_justification
from alarmdesk.service import dispatch, queries, sharing
from alarmdesk.web.api.common import (
    MAX_ID,
    actor_of,
    audit,
    audit_search,
    desk_filter,
    needs,
    read_body,
    services,
)
from alarmdesk.web.api.schemas import (
    AUTH,
    IncidentDetail,
    IncidentOut,
    IncidentPage,
    NearbyOut,
    RecommendationOut,
    body,
    errors,
)
from alarmdesk.web.auth import principal_of
from alarmdesk.web.params import query_time

LIVE_QUEUE = frozenset(s.value for s in OPEN)


@get(
    "/api/v1/incidents",
    opt=needs(Permission.INCIDENT_READ),
    responses=errors(400, *AUTH, 422),
    summary="List incidents of your desks, newest first",
    description="The live queue (only open statuses, no time range) needs no justification; "
    "any other search does (`justification`, logged in the audit log): 400 "
    "justification_required. `from` and `to` (opened at) are ISO 8601 times with a UTC "
    "offset, or YYYY-MM-DD (whole UTC days, both included), between 1970-01-01 and "
    "9999-01-01; anything else is 422 invalid_value.",
)
async def list_incidents(
    request: Request[Any, Any, Any],
    status: Annotated[list[str] | None, QueryParameter()] = None,
    desk: Annotated[list[str] | None, QueryParameter()] = None,
    priority: Annotated[list[int] | None, QueryParameter()] = None,
    type_code: Annotated[list[str] | None, QueryParameter(name="type")] = None,
    start: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
    end: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, QueryParameter()] = None,
    justification: Annotated[str | None, QueryParameter(max_length=500)] = None,
) -> IncidentPage:
    for s in status or ():
        if s not in Status.__members__.values():
            raise InvalidField(f"unknown status {s!r}", field="status", code="invalid_value")
    for p in priority or ():
        if not 1 <= p <= 5:
            raise InvalidField(f"priority is 1–5, not {p}", field="priority", code="invalid_value")
    opened_from = query_time(start, "from") if start is not None else None
    opened_to = query_time(end, "to", end=True) if end is not None else None
    live_queue = (
        bool(status)
        and set(status or ()) <= LIVE_QUEUE
        and opened_from is None
        and opened_to is None
    )
    reason = check_justification(
        justification,
        required=not live_queue,
        why="searching beyond the live queue (closed incidents, time ranges) needs a "
        "justification, which is kept in the audit log",
    )
    desks = desk_filter(principal_of(request), desk)
    flt = queries.IncidentFilter(
        statuses=tuple(status or ()),
        desks=desks or (),
        priorities=tuple(priority or ()),
        type_codes=tuple(x.upper() for x in type_code or ()),
        opened_from=opened_from,
        opened_to=opened_to,
    )
    before = queries.decode_cursor(cursor) if cursor else None
    items, next_cursor = await anyio.to_thread.run_sync(
        lambda: queries.list_incidents(services(request).engine, flt, limit=limit, before_id=before)
    )
    await audit_search(request, len(items), flt, justification=reason, live_queue=live_queue)
    return msgspec.convert({"items": items, "next_cursor": next_cursor}, IncidentPage)


def check_incident_id(incident_id: int) -> int:
    if not 1 <= incident_id <= MAX_ID:
        raise NotFound(f"incident {incident_id} does not exist", field="incident_id")
    return incident_id


def load_incident(request: Request[Any, Any, Any], incident_id: int) -> dict[str, Any]:
    """The incident with signals and timeline, if the caller shares a desk with it."""
    check_incident_id(incident_id)
    found = queries.get_incident(services(request).engine, incident_id)
    if found is None:
        raise NotFound(f"incident {incident_id} does not exist", field="incident_id")
    if not shares_desk(principal_of(request), found["desks"]):
        raise Forbidden(f"incident {incident_id} is not routed to your desks", field="incident_id")
    return found


@get(
    "/api/v1/incidents/{incident_id:int}",
    opt=needs(Permission.INCIDENT_READ),
    responses=errors(*AUTH, 404, 422),
    summary="One incident with its signals and timeline",
)
async def get_incident(
    request: Request[Any, Any, Any], incident_id: FromPath[int]
) -> IncidentDetail:
    found = await anyio.to_thread.run_sync(load_incident, request, incident_id)
    await audit(
        request, AuditEvent(actor_of(request), Operation.CONSULT, "incident", str(incident_id))
    )
    return msgspec.convert(found, IncidentDetail)


class CommandIn(msgspec.Struct, forbid_unknown_fields=True):
    expected_version: int | None = None
    units: list[Annotated[str, msgspec.Meta(max_length=64)]] = msgspec.field(default_factory=list)
    text: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    type_code: Annotated[str, msgspec.Meta(max_length=32)] = ""
    disposition: str = ""
    reason: str = ""
    note: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    step: Annotated[int, msgspec.Meta(ge=0, le=99)] | None = None  # step: which (0-based)
    override_reason: Annotated[str, msgspec.Meta(max_length=500)] = ""  # resolve, supervisors
    recommended: list[Annotated[str, msgspec.Meta(max_length=64)]] | None = None  # dispatch
    verdict: Annotated[str, msgspec.Meta(max_length=32)] = ""  # verify: verified | false


_command_decoder = msgspec.json.Decoder(CommandIn)

ACTIONS = (
    "acknowledge",
    "dispatch",
    "arrive",
    "notes",
    "reclassify",
    "resolve",
    "close",
    "cancel",
    "step",
    "verify",
)


def make_command(action: str, incident_id: int, body: CommandIn, principal: Principal) -> c.Command:
    """The command for an action; the actor and desks always come from the caller."""
    desks = None if principal.all_desks else principal.desks
    common = (incident_id, principal.name, body.expected_version, desks)
    match action:
        case "acknowledge":
            return c.Acknowledge(*common)
        case "dispatch":
            recommended = tuple(body.recommended) if body.recommended is not None else None
            return c.Dispatch(*common, units=tuple(body.units), recommended=recommended)
        case "arrive":
            return c.Arrive(*common, units=tuple(body.units))
        case "notes":
            return c.AddNote(*common, text=body.text)
        case "reclassify":
            if not body.type_code:
                raise InvalidField(
                    "reclassify needs type_code", field="type_code", code="missing_field"
                )
            return c.Reclassify(*common, type_code=body.type_code)
        case "resolve":
            if not body.disposition:
                raise InvalidField(
                    "resolve needs a disposition", field="disposition", code="missing_field"
                )
            if body.override_reason.strip() and principal.role is not Role.SUPERVISOR:
                raise Forbidden(
                    "only a supervisor may resolve with a mandatory procedure step open",
                    field="override_reason",
                )
            return c.Resolve(
                *common,
                disposition=body.disposition,
                note=body.note,
                override_reason=body.override_reason,
            )
        case "step":
            if body.step is None:
                raise InvalidField("step needs step", field="step", code="missing_field")
            return c.CompleteStep(*common, step=body.step)
        case "close":
            return c.Close(*common)
        case "cancel":
            if not body.reason:
                raise InvalidField("cancel needs a reason", field="reason", code="missing_field")
            return c.Cancel(*common, reason=body.reason, note=body.note)
        case "verify":
            if not body.verdict:
                raise InvalidField("verify needs a verdict", field="verdict", code="missing_field")
            return c.Verify(*common, verdict=body.verdict, note=body.note)
    raise NotFound(f"no action {action!r}; one of: {', '.join(ACTIONS)}", field="action")


def decode_command(body: bytes) -> CommandIn:
    """The command body, its texts checked like every other edge's (no control characters;
    notes may span lines)."""
    command: CommandIn = decode(_command_decoder, body) if body.strip() else CommandIn()
    twice = duplicate_key(body)
    if twice is not None:  # {"step": 1, "step": 2} ticked step 2
        raise InvalidField(f"{twice} is given twice", field=twice, code="invalid_value")
    for i, unit in enumerate(command.units):
        check_text(unit, f"units[{i}]")
    for i, unit in enumerate(command.recommended or ()):
        check_text(unit, f"recommended[{i}]")
    for field in ("type_code", "disposition", "reason", "override_reason", "verdict"):
        check_text(getattr(command, field), field)
    for field in ("text", "note"):
        check_text(getattr(command, field), field, multiline=True)
    return command


@post(
    "/api/v1/incidents/{incident_id:int}/{action:str}",
    status_code=200,
    opt=needs(Permission.INCIDENT_ACT),
    dependencies=body(CommandIn),
    responses=errors(400, *AUTH, 404, 408, 409, 413, 422, 503),
    summary="Act on an incident",
    description="action: " + ", ".join(ACTIONS) + ". Invalid in the current status: 409 "
    "invalid_transition. With expected_version, a stale view gets 409 version_conflict. "
    "verify takes a verdict (verified: the camera images confirm the alarm; false) and a note; "
    "allowed until the incident is closed or cancelled.",
)
async def act(
    request: Request[Any, Any, Any], incident_id: FromPath[int], action: FromPath[str]
) -> IncidentOut:
    if action not in ACTIONS:
        raise NotFound(f"no action {action!r}; one of: {', '.join(ACTIONS)}", field="action")
    body = decode_command(await read_body(request, 64 * 1024))
    command = make_command(action, check_incident_id(incident_id), body, principal_of(request))
    view = await services(request).writer.submit_command(command, actor=actor_of(request))
    return msgspec.convert(view, IncidentOut)


@get(
    "/api/v1/incidents/nearby",
    opt=needs(Permission.INCIDENT_READ),
    responses=errors(*AUTH, 422),
    summary="Open incidents near a point, nearest first (a call-taker's candidates)",
    description="Before a call is submitted: the open incidents of your desks within "
    "`radius_m` (default 500) of `lat`,`lon`, each with its `distance_m`. Submit the call "
    "with `join` (one of them) or `separate: true` (a new incident); without either, "
    "alarmdesk folds it by its correlation rules.",
)
async def nearby(
    request: Request[Any, Any, Any],
    lat: Annotated[float, QueryParameter(ge=-90, le=90)],
    lon: Annotated[float, QueryParameter(ge=-180, le=180)],
    radius_m: Annotated[float, QueryParameter(gt=0, le=5000)] = 500.0,
) -> list[NearbyOut]:
    who = principal_of(request)
    desks = None if who.all_desks else sorted(who.desks)
    found = await anyio.to_thread.run_sync(
        queries.nearby, services(request).engine, lat, lon, radius_m, desks
    )
    await audit_search(request, len(found), nearby=True)
    return msgspec.convert(found, list[NearbyOut])


@get(
    "/api/v1/incidents/{incident_id:int}/recommendation",
    opt=needs(Permission.INCIDENT_READ),
    responses=errors(*AUTH, 404, 422),
    summary="Units to send: the response plan filled with the nearest fitting available units",
    description="Needs come from the type's response plan, else from its procedure's dispatch "
    "steps; each is filled with the available unit with the shortest estimated travel time "
    "(docs/dispatch.md). Pass the unit ids back as `recommended` when dispatching, so the "
    "timeline says whether the recommendation was followed.",
)
async def recommendation(
    request: Request[Any, Any, Any], incident_id: FromPath[int]
) -> RecommendationOut:
    await anyio.to_thread.run_sync(load_incident, request, incident_id)  # desk check
    found = await anyio.to_thread.run_sync(
        dispatch.recommendation, services(request).engine, incident_id
    )
    await audit(
        request,
        AuditEvent(actor_of(request), Operation.CONSULT, "incident", str(incident_id)),
    )
    return msgspec.convert(found, RecommendationOut)


@get(
    "/api/v1/incidents/{incident_id:int}/eido",
    opt=needs(Permission.INCIDENT_SHARE),
    responses=errors(*AUTH, 404, 422),
    summary="The incident as a NENA EIDO (NENA-STA-021.1 JSON) for another agency",
    description="A disclosure: `recipient` (the agency it is for; required, one line, at most "
    "200 characters, screened for purpose) is kept in the audit log's `disclose` entry, "
    "committed before the document is sent, and the transparency report counts disclosures "
    "by recipient. Without it: 422 missing_field. What is exported, field by field, and what "
    "is not: docs/sharing.md.",
)
async def eido(
    request: Request[Any, Any, Any],
    incident_id: FromPath[int],
    recipient: Annotated[str | None, QueryParameter()] = None,
) -> dict[str, Any]:
    name = sharing.check_recipient(recipient)
    svc = services(request)
    found = await anyio.to_thread.run_sync(load_incident, request, incident_id)  # desk check
    agency = sharing.agency_of(svc.config.sharing)
    document = await anyio.to_thread.run_sync(sharing.eido_document, svc.engine, found, agency)
    await audit(request, sharing.disclosure(actor_of(request), incident_id, name))
    return document


ROUTES = [list_incidents, nearby, get_incident, recommendation, eido, act]
