"""The queue and the incident page.

Every page names the permission it needs in ``opt`` like every API route, and the same
global guard (``web/auth.permission_guard``) checks it; incident data is scoped to the
caller's desks with the same functions as the API (``shares_desk``, ``visible_desks``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Final

import anyio
from litestar import Request, Response, get
from litestar.params import FromPath, QueryParameter

from alarmdesk.bootstrap import Services
from alarmdesk.domain.errors import Forbidden
from alarmdesk.domain.incident import OPEN, RULES, Action, CancelReason, Disposition, Status
from alarmdesk.safeguards.access import (
    Permission,
    Principal,
    allowed,
    shares_desk,
    visible_desks,
)
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.service import cap, console_queries, parked
from alarmdesk.service.queries import IncidentFilter
from alarmdesk.web.api import actor_of, audit, load_incident, needs, services
from alarmdesk.web.api.common import audit_search
from alarmdesk.web.api.media import media_for, media_view
from alarmdesk.web.console.render import render
from alarmdesk.web.console.settings import map_config, my_desks, principal, reference

QUEUE_PAGE: Final = 200  # rows a queue page starts with; "Show more" loads the next ones
# The queue is the live queue: open incidents only (a search of closed ones needs a stated
# justification, through the API).
QUEUE_STATUSES: Final = [s.value for s in Status if s in OPEN]
ACTION_LABELS: Final = {
    Action.ACKNOWLEDGE: ("Acknowledge", "a"),
    Action.DISPATCH: ("Dispatch", "d"),
    Action.ARRIVE: ("Arrived", "o"),
    Action.NOTE: ("Note", "n"),
    Action.RECLASSIFY: ("Reclassify", "t"),
    Action.RESOLVE: ("Resolve", "r"),
    Action.CLOSE: ("Close", "c"),
    Action.CANCEL: ("Cancel", "x"),
}
# The API's path for each action (the domain says "note", the route "notes").
ACTION_PATHS: Final = {a: ("notes" if a is Action.NOTE else a.value) for a in Action}


# -- the queue -------------------------------------------------------------------------------


def _queue_filters(request: Request[Any, Any, Any], who: Principal) -> dict[str, Any]:
    q = request.query_params
    statuses = [s for s in q.getall("status", []) if s in QUEUE_STATUSES]
    priorities = sorted(
        {int(p) for p in q.getall("priority", []) if p in ("1", "2", "3", "4", "5")}
    )
    # "FSTRU" or, picked from the list, "FSTRU — FIRE STRUCTURE"
    type_code = re.split(r"\s+[—–-]\s+", (q.get("type") or "").strip())[0].upper()[:32]
    desk = (q.get("desk") or "").strip()
    if desk and not shares_desk(who, [desk]):
        raise Forbidden(f"desk {desk} is not yours", field="desk")
    return {
        "status": statuses,
        "priority": priorities,
        "type": type_code,
        "desk": desk,
    }


@dataclass(frozen=True)
class LiveQueue:
    """What a page of the live queue starts from."""

    items: list[dict[str, object]]
    next_cursor: str | None  # the next page, None when every match is here
    counts: dict[str, int]  # counted in the database: total, waiting, p1, p1_waiting
    last_event_id: int  # the page's stream continues after it


async def live_queue(
    request: Request[Any, Any, Any],
    flt: IncidentFilter,
    *,
    limit: int = QUEUE_PAGE,
    after: str | None = None,
) -> LiveQueue:
    """One page of open incidents in the queue's order, with the counts of all of them.

    Read like the API's live queue, and audited the same way (a consultation of incidents).
    """
    svc = services(request)
    last_event = svc.hub.last_id  # before the query: the stream replays anything after it

    def read() -> tuple[console_queries.QueuePage, console_queries.QueueCounts]:
        page = console_queries.queue_page(svc.engine, flt, limit=limit, after=after)
        return page, console_queries.queue_counts(svc.engine, flt)

    page, counts = await anyio.to_thread.run_sync(read)
    await audit_queue(request, flt, len(page.items))
    return LiveQueue(page.items, page.next_cursor, asdict(counts), last_event)


async def audit_queue(request: Request[Any, Any, Any], flt: IncidentFilter, results: int) -> None:
    await audit_search(request, results, flt, live_queue=True, page=request.url.path)


@get("/", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def queue_page(request: Request[Any, Any, Any]) -> Response[str]:
    svc = services(request)
    who = principal(request)
    filters = _queue_filters(request, who)
    statuses = filters["status"] or QUEUE_STATUSES
    desks = visible_desks(who, [filters["desk"]] if filters["desk"] else None)
    flt = IncidentFilter(
        statuses=tuple(statuses),
        desks=desks or (),
        priorities=tuple(filters["priority"]),
        type_codes=(filters["type"],) if filters["type"] else (),
    )
    queue = await live_queue(request, flt)
    ref = await anyio.to_thread.run_sync(reference, svc)
    waiting = await anyio.to_thread.run_sync(_parked_for, svc, who)
    return render(
        request,
        "queue.html",
        title="Queue",
        parked_banner=waiting is not None,
        filters=filters,
        statuses=QUEUE_STATUSES,
        my_desks=my_desks(svc, who),
        types=ref.types,
        boot={
            "items": queue.items,
            "next": queue.next_cursor,
            "counts": _with_parked(queue.counts, waiting),
            "last_event_id": queue.last_event_id,
            "server_now": svc.clock().isoformat(),
            "filters": {**filters, "status": statuses},
            "types": ref.type_names(),
            "desks": sorted(who.desks),
            "can_act": allowed(who, Permission.INCIDENT_ACT),
            "rules": rules_json(),
        },
    )


def _filter_of(request: Request[Any, Any, Any]) -> IncidentFilter:
    """The queue's filter from the page's query (the same parameters as ``/``)."""
    who = principal(request)
    filters = _queue_filters(request, who)
    desks = visible_desks(who, [filters["desk"]] if filters["desk"] else None)
    return IncidentFilter(
        statuses=tuple(filters["status"] or QUEUE_STATUSES),
        desks=desks or (),
        priorities=tuple(filters["priority"]),
        type_codes=(filters["type"],) if filters["type"] else (),
    )


@get("/queue/items", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def queue_items(
    request: Request[Any, Any, Any],
    after: Annotated[str, QueryParameter(min_length=1, max_length=400)],
) -> Response[Any]:
    """The next page of the queue after a cursor the server gave (JSON for queue.js)."""
    queue = await live_queue(request, _filter_of(request), after=after)
    return Response(
        {"items": queue.items, "next": queue.next_cursor, "counts": queue.counts},
        headers={"Cache-Control": "no-store"},
    )


@get("/queue/counts", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def queue_counts(request: Request[Any, Any, Any]) -> Response[Any]:
    """How many incidents match the queue's filter (the header and the P1 banner)."""
    svc = services(request)
    flt = _filter_of(request)
    counts = await anyio.to_thread.run_sync(console_queries.queue_counts, svc.engine, flt)
    waiting = await anyio.to_thread.run_sync(_parked_for, svc, principal(request))
    return Response(_with_parked(asdict(counts), waiting), headers={"Cache-Control": "no-store"})


def _parked_for(svc: Services, who: Principal) -> dict[str, Any] | None:
    """For those who oversee intake (``parked.read``: supervisors): how many queued signals are
    parked and since when (distributed mode: answered "queued" to their senders, they could
    not be stored and wait in `alarmdesk parked list`, not in the queue). A count, never
    their content; None for others."""
    if not allowed(who, Permission.PARKED_READ):
        return None
    count, since = parked.waiting(svc.engine)
    return {"count": count, "since": since.isoformat() if since else None}


def _with_parked(counts: dict[str, Any], waiting: dict[str, Any] | None) -> dict[str, Any]:
    return counts if waiting is None else {**counts, "parked": waiting}


def rules_json() -> dict[str, list[str]]:
    """Which statuses each action is allowed from (the client offers only those)."""
    return {ACTION_PATHS[a]: sorted(s.value for s in RULES[a][0]) for a in Action}


# -- the incident page -----------------------------------------------------------------------


def valid_actions(incident: Mapping[str, Any], who: Principal) -> list[dict[str, str]]:
    if not allowed(who, Permission.INCIDENT_ACT):
        return []
    status = Status(incident["status"])
    out = []
    for action, (label, key) in ACTION_LABELS.items():
        if status not in RULES[action][0]:
            continue
        if action is Action.ARRIVE and not incident["units"]:
            continue
        out.append({"action": ACTION_PATHS[action], "label": label, "key": key})
    return out


def _people(signals: list[dict[str, Any]]) -> list[dict[str, str]]:
    people = []
    for s in signals:
        for person in (s.get("payload") or {}).get("people") or []:
            if isinstance(person, dict):
                people.append(
                    {
                        "role": str(person.get("role", "")),
                        "name": str(person.get("name", "")),
                        "callback": str(person.get("callback", "")),
                        "signal_id": s["id"],
                    }
                )
    return people


async def _panel_context(request: Request[Any, Any, Any], incident_id: int) -> dict[str, Any]:
    svc = services(request)
    who = principal(request)
    last_event = svc.hub.last_id
    # 404 / 403 outside the caller's desks, like the API
    incident = await anyio.to_thread.run_sync(load_incident, request, incident_id)
    await audit(
        request, AuditEvent(actor_of(request), Operation.CONSULT, "incident", str(incident_id))
    )
    ref = await anyio.to_thread.run_sync(reference, svc)
    itype = ref.type_of(incident["type_code"])
    video, media = await anyio.to_thread.run_sync(media_for, request, incident)
    now = svc.clock()
    notes = [e for e in incident["timeline"] if e["type"] == "incident.noted"]
    return {
        "incident": incident,
        "itype": itype,
        "actions": valid_actions(incident, who),
        "people": _people(incident["signals"]),
        "notes": notes,
        "last_event_id": last_event,
        "is_open": incident["status"] in {s.value for s in OPEN},
        "video": video,
        "media": [media_view(incident_id, m, now) for m in media],
        "can_verify": allowed(who, Permission.INCIDENT_ACT)
        and Status(incident["status"]) in RULES[Action.VERIFY][0],
    }


@get("/incidents/{incident_id:int}", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def incident_page(
    request: Request[Any, Any, Any], incident_id: FromPath[int]
) -> Response[str]:
    ctx = await _panel_context(request, incident_id)
    published = await anyio.to_thread.run_sync(
        cap.alerts_of_incident, services(request).engine, incident_id
    )
    return render(
        request,
        "incident.html",
        cap_alerts=published,
        title=f"#{incident_id} {ctx['incident']['type_code']}",
        types=reference(services(request)).types,
        dispositions=[d.value for d in Disposition],
        cancel_reasons=[r.value for r in CancelReason],
        boot={
            "incident": {k: v for k, v in ctx["incident"].items() if k not in ("signals",)},
            "rules": rules_json(),
            "map": map_config(request),
        },
        **ctx,
    )


@get(
    "/incidents/{incident_id:int}/panel",
    opt=needs(Permission.INCIDENT_READ),
    include_in_schema=False,
)
async def incident_panel(
    request: Request[Any, Any, Any], incident_id: FromPath[int]
) -> Response[str]:
    return render(request, "_panel.html", **(await _panel_context(request, incident_id)))


ROUTES: Final = [queue_page, queue_items, queue_counts, incident_page, incident_panel]
