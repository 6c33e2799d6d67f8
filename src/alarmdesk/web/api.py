"""The JSON API, version 1.

The ingest routes are deliberately thin: read the bytes, decode and validate with msgspec
in one pass, hand off to the writer, answer with the receipt once committed. No framework
validation runs on that hot path; everything else uses Litestar normally.

Every route names the permission it needs (``opt``); ``web/auth.permission_guard`` checks it
against ``safeguards/access.MATRIX``, and incident data is scoped to the caller's desks here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream

from alarmdesk.bootstrap import Services
from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import (
    Forbidden,
    InvalidField,
    JustificationRequired,
    NotFound,
    PayloadTooLarge,
)
from alarmdesk.domain.incident import OPEN, Status
from alarmdesk.domain.signal import Receipt, SignalIn, decode, decode_batch, decode_one
from alarmdesk.safeguards.access import Permission, Principal, shares_desk, visible_desks
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.store import repository as repo
from alarmdesk.web.auth import principal_of
from alarmdesk.web.stream import event_stream

_encode = msgspec.json.Encoder().encode


def services(request: Request[Any, Any, Any]) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def needs(permission: Permission) -> dict[str, Any]:
    return {"permission": permission}


async def read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def receipt_json(r: Receipt) -> dict[str, Any]:
    return {
        "signal_id": r.signal_id,
        "incident_id": r.incident_id,
        "idempotency_key": r.idempotency_key,
        "received_at": r.received_at.isoformat(),
    }


def actor_of(request: Request[Any, Any, Any]) -> Actor:
    address = request.client.host if request.client else ""
    return Actor.of(principal_of(request), address)


async def audit(request: Request[Any, Any, Any], event: AuditEvent) -> None:
    """Appends an audit entry and waits until it is committed (before data is disclosed)."""
    await services(request).writer.submit_audit([event])


def _desk_filter(principal: Principal, asked: list[str] | None) -> tuple[str, ...] | None:
    try:
        return visible_desks(principal, asked)
    except PermissionError as exc:
        raise Forbidden(str(exc), field="desk") from None


@post(
    "/api/v1/signals",
    status_code=202,
    opt=needs(Permission.SIGNAL_SUBMIT),
    summary="Submit one signal",
    description="Stored durably before the 202 is sent. A repeat with the same idempotency "
    "key (body field or Idempotency-Key header) returns the original receipt.",
)
async def post_signal(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    body = await read_body(request, svc.config.limits.max_signal_bytes)
    signal = decode_one(body, svc.clock())
    header_key = request.headers.get("idempotency-key")
    if header_key:
        if signal.idempotency_key and signal.idempotency_key != header_key:
            raise InvalidField(
                "Idempotency-Key header and body idempotency_key differ",
                field="idempotency_key",
                code="invalid_value",
            )
        if len(header_key) > 200:
            raise InvalidField(
                "Idempotency-Key is longer than 200 characters",
                field="idempotency_key",
                code="invalid_value",
            )
        signal.idempotency_key = header_key
    (receipt,) = await svc.writer.submit_signals([signal], actor=actor_of(request))
    return Response(_encode(receipt_json(receipt)), status_code=202, media_type="application/json")


@post(
    "/api/v1/signals/batch",
    status_code=202,
    opt=needs(Permission.SIGNAL_SUBMIT),
    summary="Submit up to 1,000 signals",
    description='Body {"signals": [...]}. All are validated first: one bad signal '
    "rejects the request and nothing is stored.",
)
async def post_signal_batch(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    body = await read_body(request, svc.config.limits.max_batch_bytes)
    signals: list[SignalIn] = decode_batch(body, svc.clock())
    receipts = await svc.writer.submit_signals(signals, actor=actor_of(request))
    return Response(
        _encode({"receipts": [receipt_json(r) for r in receipts]}),
        status_code=202,
        media_type="application/json",
    )


LIVE_QUEUE = frozenset(s.value for s in OPEN)


@get(
    "/api/v1/incidents",
    opt=needs(Permission.INCIDENT_READ),
    summary="List incidents of your desks, newest first",
    description="The live queue (only open statuses, no time range) needs no justification; "
    "any other search does (`justification`, logged in the audit log): 400 "
    "justification_required.",
)
async def list_incidents(
    request: Request[Any, Any, Any],
    status: Annotated[list[str] | None, QueryParameter()] = None,
    desk: Annotated[list[str] | None, QueryParameter()] = None,
    priority: Annotated[list[int] | None, QueryParameter()] = None,
    type_code: Annotated[list[str] | None, QueryParameter(name="type")] = None,
    opened_from: Annotated[datetime | None, QueryParameter(name="from")] = None,
    opened_to: Annotated[datetime | None, QueryParameter(name="to")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, QueryParameter()] = None,
    justification: Annotated[str | None, QueryParameter(max_length=500)] = None,
) -> dict[str, Any]:
    for s in status or ():
        if s not in Status.__members__.values():
            raise InvalidField(f"unknown status {s!r}", field="status", code="invalid_value")
    for p in priority or ():
        if not 1 <= p <= 5:
            raise InvalidField(f"priority is 1–5, not {p}", field="priority", code="invalid_value")
    for when, name in ((opened_from, "from"), (opened_to, "to")):
        if when is not None and when.tzinfo is None:
            raise InvalidField(f"{name} needs a UTC offset", field=name, code="invalid_value")
    live_queue = (
        bool(status)
        and set(status or ()) <= LIVE_QUEUE
        and opened_from is None
        and opened_to is None
    )
    reason = (justification or "").strip()
    if not live_queue and len(reason) < 5:
        raise JustificationRequired(
            "searching beyond the live queue (closed incidents, time ranges) needs a "
            "justification, which is kept in the audit log",
            field="justification",
        )
    desks = _desk_filter(principal_of(request), desk)
    flt = repo.IncidentFilter(
        statuses=tuple(status or ()),
        desks=desks or (),
        priorities=tuple(priority or ()),
        type_codes=tuple(x.upper() for x in type_code or ()),
        opened_from=opened_from,
        opened_to=opened_to,
    )
    before = repo.decode_cursor(cursor) if cursor else None
    engine = services(request).engine

    def query() -> tuple[list[dict[str, Any]], str | None]:
        with engine.connect() as conn:
            return repo.list_incidents(conn, flt, limit=limit, before_id=before)

    items, next_cursor = await anyio.to_thread.run_sync(query)
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONSULT,
            "incidents",
            "",
            justification=reason,
            detail={
                "results": len(items),
                "live_queue": live_queue,
                "filter": {
                    "status": sorted(status or ()),
                    "desk": list(desks or ()),
                    "priority": sorted(priority or ()),
                    "type": sorted(type_code or ()),
                    "from": opened_from.isoformat() if opened_from else None,
                    "to": opened_to.isoformat() if opened_to else None,
                },
            },
        ),
    )
    return {"items": items, "next_cursor": next_cursor}


MAX_ID = 2**63 - 1  # ids are 64-bit in every store


def check_incident_id(incident_id: int) -> int:
    if not 1 <= incident_id <= MAX_ID:
        raise NotFound(f"incident {incident_id} does not exist", field="incident_id")
    return incident_id


def load_incident(request: Request[Any, Any, Any], incident_id: int) -> dict[str, Any]:
    """The incident with signals and timeline, if the caller shares a desk with it."""
    check_incident_id(incident_id)
    with services(request).engine.connect() as conn:
        found = repo.get_incident(conn, incident_id)
    if found is None:
        raise NotFound(f"incident {incident_id} does not exist", field="incident_id")
    if not shares_desk(principal_of(request), found["desks"]):
        raise Forbidden(f"incident {incident_id} is not routed to your desks", field="incident_id")
    return found


@get(
    "/api/v1/incidents/{incident_id:int}",
    opt=needs(Permission.INCIDENT_READ),
    summary="One incident with its signals and timeline",
)
async def get_incident(
    request: Request[Any, Any, Any], incident_id: FromPath[int]
) -> dict[str, Any]:
    found = await anyio.to_thread.run_sync(load_incident, request, incident_id)
    await audit(
        request, AuditEvent(actor_of(request), Operation.CONSULT, "incident", str(incident_id))
    )
    return found


class CommandIn(msgspec.Struct, forbid_unknown_fields=True):
    expected_version: int | None = None
    units: list[Annotated[str, msgspec.Meta(max_length=64)]] = msgspec.field(default_factory=list)
    text: Annotated[str, msgspec.Meta(max_length=4000)] = ""
    type_code: Annotated[str, msgspec.Meta(max_length=32)] = ""
    disposition: str = ""
    reason: str = ""
    note: Annotated[str, msgspec.Meta(max_length=4000)] = ""


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
)


def make_command(action: str, incident_id: int, body: CommandIn, principal: Principal) -> c.Command:
    """The command for an action; the actor and desks always come from the caller."""
    desks = None if principal.all_desks else principal.desks
    common = (incident_id, principal.name, body.expected_version, desks)
    match action:
        case "acknowledge":
            return c.Acknowledge(*common)
        case "dispatch":
            return c.Dispatch(*common, units=tuple(body.units))
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
            return c.Resolve(*common, disposition=body.disposition, note=body.note)
        case "close":
            return c.Close(*common)
        case "cancel":
            if not body.reason:
                raise InvalidField("cancel needs a reason", field="reason", code="missing_field")
            return c.Cancel(*common, reason=body.reason, note=body.note)
    raise NotFound(f"no action {action!r}; one of: {', '.join(ACTIONS)}", field="action")


def decode_command(body: bytes) -> CommandIn:
    return decode(_command_decoder, body) if body.strip() else CommandIn()


@post(
    "/api/v1/incidents/{incident_id:int}/{action:str}",
    status_code=200,
    opt=needs(Permission.INCIDENT_ACT),
    summary="Act on an incident",
    description="action: " + ", ".join(ACTIONS) + ". Invalid in the current status: 409 "
    "invalid_transition. With expected_version, a stale view gets 409 version_conflict.",
)
async def act(
    request: Request[Any, Any, Any], incident_id: FromPath[int], action: FromPath[str]
) -> dict[str, Any]:
    if action not in ACTIONS:
        raise NotFound(f"no action {action!r}; one of: {', '.join(ACTIONS)}", field="action")
    body = decode_command(await read_body(request, 64 * 1024))
    command = make_command(action, check_incident_id(incident_id), body, principal_of(request))
    return await services(request).writer.submit_command(command, actor=actor_of(request))


@get(
    "/api/v1/desks",
    sync_to_thread=True,
    opt=needs(Permission.REFERENCE_READ),
    summary="Desks and what they see",
)
def list_desks(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    with services(request).engine.connect() as conn:
        desks = repo.load_desks(conn)
    return [
        {
            "id": d.id,
            "name": d.name,
            "categories": sorted(d.categories),
            "source_kinds": sorted(d.source_kinds),
            "has_jurisdiction": d.area is not None,
        }
        for d in desks
    ]


@get(
    "/api/v1/units",
    sync_to_thread=True,
    opt=needs(Permission.REFERENCE_READ),
    summary="Response units and their status",
)
def list_units(request: Request[Any, Any, Any]) -> list[dict[str, Any]]:
    with services(request).engine.connect() as conn:
        return [repo.unit_dict(u) for u in repo.load_units(conn)]


@get("/api/v1/health", opt={"public": True}, summary="Liveness and readiness")
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    svc = services(request)
    ok = svc.writer.alive
    return Response(
        {"status": "ok" if ok else "degraded", "writer": ok},
        status_code=200 if ok else 503,
    )


@get(
    "/api/v1/stream",
    opt=needs(Permission.INCIDENT_READ),
    summary="Live events of your desks (Server-Sent Events)",
    description="Events incident.opened, incident.updated, incident.transitioned, "
    "incident.units_assigned, incident.noted, incident.reclassified, with monotonic ids. "
    "Reconnect with the Last-Event-ID header (or last_event_id) to receive what was missed.",
)
async def stream(
    request: Request[Any, Any, Any],
    desk: Annotated[list[str] | None, QueryParameter()] = None,
    last_event_id: Annotated[int | None, QueryParameter(ge=0, le=MAX_ID)] = None,
) -> Stream:
    svc = services(request)
    desks = _desk_filter(principal_of(request), desk)
    header = request.headers.get("last-event-id")
    if header is not None:
        if not header.strip().isdigit() or int(header) > MAX_ID:
            raise InvalidField(
                "Last-Event-ID must be a whole number",
                field="Last-Event-ID",
                code="invalid_value",
            )
        last_event_id = int(header)
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONSULT,
            "stream",
            "",
            detail={"desks": list(desks or ()), "replay_from": last_event_id},
        ),
    )
    return Stream(
        event_stream(svc, desks, last_event_id),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


ROUTES = [
    post_signal,
    post_signal_batch,
    list_incidents,
    get_incident,
    act,
    list_desks,
    list_units,
    health,
    stream,
]
