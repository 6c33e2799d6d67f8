"""The operator console: server-rendered pages (Jinja2) with htmx, and small JS modules for
the live queue and the map. docs/console.md describes the pages, shortcuts and settings.

Every page names the permission it needs in ``opt`` like every API route, and the same
global guard (``web/auth.permission_guard``) checks it; incident data is scoped to the
caller's desks with the same functions as the API (``shares_desk``, ``visible_desks``).
A page refused to a signed-in user renders a 403 page; without a session, a page redirects
to ``/login``. Changes go through the API (``/api/v1/incidents/{id}/{action}``) or the two
intake forms here, always with the session's CSRF token in ``X-CSRF-Token``.

The sign-in form itself is protected by a signed double-submit token: ``GET /login`` sets a
random nonce in an HttpOnly, SameSite=Strict cookie and puts HMAC(secret, nonce) in the form;
``POST /login`` accepts only a form whose token matches the cookie it came with.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import jinja2
import msgspec
import sqlalchemy as sa
from litestar import Request, Response, Router, get, post
from litestar.datastructures import CacheControlHeader, Cookie
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from litestar.response import File, Redirect, Stream
from litestar.static_files import create_static_files_router
from markupsafe import Markup

from alarmdesk.bootstrap import Services
from alarmdesk.bus.sse import only_incident
from alarmdesk.domain.errors import (
    AlarmdeskError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidField,
    NotFound,
    TooManyAttempts,
    Unauthenticated,
)
from alarmdesk.domain.incident import OPEN, RULES, Action, CancelReason, Disposition, Status
from alarmdesk.domain.signal import Receipt, SignalIn, check
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.safeguards.access import (
    Permission,
    Principal,
    allowed,
    shares_desk,
    visible_desks,
)
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.web import session as web_session
from alarmdesk.web.api import actor_of, audit, load_incident, needs, read_body, services
from alarmdesk.web.errors import audit_denial, error_response
from alarmdesk.web.stream import event_stream

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LOGIN_COOKIE = "alarmdesk_login"
FORM_LIMIT = 16 * 1024
REFERENCE_TTL = 30.0  # seconds a page may show a cached taxonomy / desk list
QUEUE_LIMIT = 500
# The queue is the live queue: open incidents only (a search of closed ones needs a stated
# justification, through the API).
QUEUE_STATUSES = [s.value for s in Status if s in OPEN]
EVENT_LABELS = {
    "incident.opened": "Opened",
    "incident.updated": "Updated",
    "incident.transitioned": "Status changed",
    "incident.units_assigned": "Units assigned",
    "incident.noted": "Note",
    "incident.reclassified": "Reclassified",
}
ACTION_LABELS = {
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
ACTION_PATHS = {a: ("notes" if a is Action.NOTE else a.value) for a in Action}


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapSettings:
    """Where the map's background comes from; see docs/console.md ("Map background").

    Read from the configuration's ``[console]`` table when it has one, else from the
    environment: ALARMDESK_TILE_URL, ALARMDESK_TILE_ATTRIBUTION, ALARMDESK_TILE_MAX_ZOOM,
    ALARMDESK_PMTILES, ALARMDESK_BASEMAP_GEOJSON.
    """

    tile_url: str | None = None  # an XYZ template, e.g. https://tiles.example/{z}/{x}/{y}.png
    tile_attribution: str = ""
    tile_max_zoom: int = 19
    pmtiles: str | None = None  # a URL or a local file path of a .pmtiles archive
    basemap_geojson: str | None = None  # a local GeoJSON file to draw instead of the demo city


def map_settings(svc: Services, env: Mapping[str, str] | None = None) -> MapSettings:
    env = os.environ if env is None else env
    section = svc.config.console

    def pick(name: str, var: str) -> str | None:
        value = getattr(section, name)
        return str(value) if value not in (None, "") else (env.get(var) or None)

    max_zoom = pick("tile_max_zoom", "ALARMDESK_TILE_MAX_ZOOM")
    return MapSettings(
        tile_url=pick("tile_url", "ALARMDESK_TILE_URL"),
        tile_attribution=pick("tile_attribution", "ALARMDESK_TILE_ATTRIBUTION") or "",
        tile_max_zoom=int(max_zoom) if max_zoom and max_zoom.isdigit() else 19,
        pmtiles=pick("pmtiles", "ALARMDESK_PMTILES"),
        basemap_geojson=pick("basemap_geojson", "ALARMDESK_BASEMAP_GEOJSON"),
    )


def _is_url(value: str) -> bool:
    """http(s) URLs are fetched by the browser; anything else is a file alarmdesk serves."""
    return value.startswith(("http://", "https://"))


def map_config(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """What map.js needs: background layers and the caller's desks' jurisdictions."""
    svc = services(request)
    s = map_settings(svc)
    pmtiles = None
    if s.pmtiles:
        pmtiles = s.pmtiles if _is_url(s.pmtiles) else "/console/tiles.pmtiles"
    principal = _principal(request)
    desks = [
        d
        for d in _reference(svc).desks
        if d["jurisdiction"] and (principal.all_desks or d["id"] in principal.desks)
    ]
    return {
        "tile_url": s.tile_url,
        "tile_attribution": s.tile_attribution,
        "tile_max_zoom": s.tile_max_zoom,
        "pmtiles": pmtiles,
        "world": static_url("vendor/world-atlas/countries-50m.json"),
        "basemap": "/console/basemap.geojson"
        if s.basemap_geojson
        else static_url("basemap/demo-city.geojson"),
        "desks": desks,
    }


# -- templates and static files --------------------------------------------------------------


def _asset_version() -> str:
    h = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file() and "vendor" not in path.parts:
            h.update(path.relative_to(STATIC).as_posix().encode())
            h.update(path.read_bytes())
    manifest = STATIC / "vendor" / "MANIFEST.json"
    if manifest.is_file():
        h.update(manifest.read_bytes())
    return h.hexdigest()[:12]


ASSET_VERSION = _asset_version()


def static_url(path: str) -> str:
    return f"/static/{path}?v={ASSET_VERSION}"


environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals["static_url"] = static_url
environment.globals["EVENT_LABELS"] = EVENT_LABELS


def _when(value: str | datetime | None) -> Markup:
    """A <time> element; the browser shows it in local time (js/lib.js), UTC without JS."""
    if not value:
        return Markup("")
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    dt = dt.astimezone(UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        dt.isoformat(), dt.strftime("%H:%M:%S UTC")
    )


environment.filters["when"] = _when
environment.filters["status_label"] = lambda s: str(s).replace("_", " ")


def _origin(url: str | None) -> str | None:
    """The origin a CSP source list needs for a configured URL (``{s}`` subdomains: ``*``)."""
    if not url or not _is_url(url):
        return None
    parts = urlsplit(url.replace("{s}", "*"))
    if not parts.netloc or not re.fullmatch(r"[A-Za-z0-9.*:\-\[\]]+", parts.netloc):
        return None
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(settings: MapSettings) -> str:
    """The policy of every console page: scripts and styles are our files only (no inline
    script, no eval, no style attributes); images, tiles and archives also from the map
    background a deployment configured (docs/console.md, "Map background")."""
    tiles = _origin(settings.tile_url)
    archive = _origin(settings.pmtiles)
    img = " ".join(x for x in ("'self'", "data:", tiles) if x)
    connect = " ".join(x for x in ("'self'", archive, tiles) if x)
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {img}",
            f"connect-src {connect}",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


def render(
    request: Request[Any, Any, Any] | None,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Response[str]:
    context.setdefault("title", "alarmdesk")
    if request is not None:
        context.setdefault("page", _page_context(request))
    html = environment.get_template(template).render(**context)
    settings = map_settings(services(request)) if request is not None else MapSettings()
    return Response(
        html,
        status_code=status_code,
        media_type="text/html; charset=utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": content_security_policy(settings),
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
        cookies=cookies,
    )


def _principal(request: Request[Any, Any, Any]) -> Principal:
    p = request.scope.get("principal")
    if not isinstance(p, Principal):
        raise Unauthenticated("sign in first")
    return p


def _page_context(request: Request[Any, Any, Any]) -> dict[str, Any]:
    p = request.scope.get("principal")
    if not isinstance(p, Principal):
        return {"user": None, "csrf": "", "nav": [], "path": request.url.path, "server_now": ""}
    nav = [
        (href, label, key)
        for href, label, key, perm in (
            ("/", "Queue", "g q", Permission.INCIDENT_READ),
            ("/map", "Map", "g m", Permission.INCIDENT_READ),
            ("/calls/new", "New call", "g c", Permission.CALL_CREATE),
            ("/reports/new", "Duty report", "g r", Permission.DUTY_REPORT),
        )
        if allowed(p, perm)
    ]
    return {
        "user": {
            "name": p.name,
            "role": p.role.value,
            "desks": sorted(p.desks),
            "all_desks": p.all_desks,
            "can_act": allowed(p, Permission.INCIDENT_ACT),
        },
        "csrf": str(request.scope.get("csrf") or ""),
        "server_now": services(request).clock().isoformat(),
        "nav": nav,
        "path": request.url.path,
    }


# -- reference data, cached briefly ----------------------------------------------------------


@dataclass
class Reference:
    types: list[IncidentType]
    desks: list[dict[str, Any]]
    loaded: float
    owner: weakref.ref[Services]

    def type_of(self, code: str) -> IncidentType | None:
        code = code.upper()
        return next((x for x in self.types if x.code == code), None)

    def type_names(self) -> dict[str, str]:
        return {x.code: x.name for x in self.types}


_reference_cache: dict[int, Reference] = {}


def _reference(svc: Services) -> Reference:
    hit = _reference_cache.get(id(svc))
    if hit is not None and hit.owner() is svc and time.monotonic() - hit.loaded < REFERENCE_TTL:
        return hit
    with svc.engine.connect() as conn:
        types = sorted(repo.load_taxonomy(conn), key=lambda x: x.code)
        desks = [
            {"id": r.id, "name": r.name, "jurisdiction": r.jurisdiction}
            for r in conn.execute(
                sa.select(t.desks.c.id, t.desks.c.name, t.desks.c.jurisdiction).order_by(
                    t.desks.c.position, t.desks.c.id
                )
            )
        ]
    ref = Reference(types, desks, time.monotonic(), weakref.ref(svc))
    _reference_cache[id(svc)] = ref
    return ref


def _my_desks(svc: Services, principal: Principal) -> list[dict[str, Any]]:
    return [
        {"id": d["id"], "name": d["name"]}
        for d in _reference(svc).desks
        if principal.all_desks or d["id"] in principal.desks
    ]


# -- sign in and out -------------------------------------------------------------------------


def _login_secret(request: Request[Any, Any, Any]) -> bytes:
    state = request.app.state
    secret = state.get("console_login_secret")
    if not isinstance(secret, bytes):
        secret = secrets.token_bytes(32)
        state["console_login_secret"] = secret
    return secret


def _login_token(request: Request[Any, Any, Any], nonce: str) -> str:
    return hmac.new(_login_secret(request), nonce.encode(), hashlib.sha256).hexdigest()


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never //host or a scheme): no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    return value


def _cookie(request: Request[Any, Any, Any], key: str, value: str, max_age: int) -> Cookie:
    secure = request.app.state.cookie_secure
    if secure is None:
        secure = request.url.scheme == "https"
    return Cookie(
        key=key,
        value=value,
        httponly=True,
        samesite="strict",
        secure=bool(secure),
        path="/login",
        max_age=max_age,
    )


def _login_page(
    request: Request[Any, Any, Any],
    *,
    next_path: str,
    name: str = "",
    error: str = "",
    status_code: int = 200,
) -> Response[str]:
    nonce = secrets.token_urlsafe(24)
    return render(
        request,
        "login.html",
        status_code=status_code,
        cookies=[_cookie(request, LOGIN_COOKIE, nonce, 3600)],
        form_token=_login_token(request, nonce),
        next_path=next_path,
        name=name,
        error=error,
    )


@get("/login", opt={"public": True}, include_in_schema=False)
async def login_page(request: Request[Any, Any, Any]) -> Response[Any]:
    next_path = _safe_next(request.query_params.get("next"))
    if isinstance(request.scope.get("principal"), Principal):
        return Redirect(next_path)
    return _login_page(request, next_path=next_path)


async def _form(request: Request[Any, Any, Any]) -> dict[str, str]:
    body = await read_body(request, FORM_LIMIT)
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise InvalidField("the form could not be read", code="malformed_form") from None
    return {k: v[0] for k, v in parsed.items()}


@post("/login", opt={"public": True}, include_in_schema=False, status_code=303)
async def login_submit(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await _form(request)
    next_path = _safe_next(form.get("next"))
    name = form.get("name", "").strip()[:64]
    nonce = request.cookies.get(LOGIN_COOKIE) or ""
    sent = form.get("form_token", "")
    if not nonce or not hmac.compare_digest(sent.encode(), _login_token(request, nonce).encode()):
        return _login_page(
            request,
            next_path=next_path,
            name=name,
            error="The sign-in form expired or did not come from this page. Please try again.",
            status_code=403,
        )
    password = form.get("password", "")
    if not name or not password or len(password) > 1024:
        return _login_page(
            request,
            next_path=next_path,
            name=name,
            error="Enter your name and password.",
            status_code=422,
        )
    await web_session.sign_out(request)  # a session the browser came with is ended
    try:
        secret, sess = await web_session.sign_in(request, name, password)
    except TooManyAttempts as exc:
        await audit_denial(exc, request.scope)
        return _login_page(
            request, next_path=next_path, name=name, error=exc.message, status_code=429
        )
    except Unauthenticated as exc:
        await audit_denial(exc, request.scope)
        return _login_page(
            request,
            next_path=next_path,
            name=name,
            error="Wrong name or password.",
            status_code=401,
        )
    await web_session.record_sign_in(request, sess.principal)
    lifetime = int((sess.expires_at - services(request).clock()).total_seconds())
    return Redirect(
        next_path,
        status_code=303,
        cookies=[
            web_session.session_cookie(request, secret, lifetime),
            _cookie(request, LOGIN_COOKIE, "", 0),
        ],
    )


@post("/logout", opt=needs(Permission.SELF), include_in_schema=False, status_code=200)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    await web_session.sign_out(request)
    return Response(
        "",
        headers={"HX-Redirect": "/login"},
        cookies=[web_session.session_cookie(request, "", 0)],
    )


# -- the queue -------------------------------------------------------------------------------


def _queue_filters(request: Request[Any, Any, Any], principal: Principal) -> dict[str, Any]:
    q = request.query_params
    statuses = [s for s in q.getall("status", []) if s in QUEUE_STATUSES]
    priorities = sorted(
        {int(p) for p in q.getall("priority", []) if p in ("1", "2", "3", "4", "5")}
    )
    # "FSTRU" or, picked from the list, "FSTRU — FIRE STRUCTURE"
    type_code = re.split(r"\s+[—–-]\s+", (q.get("type") or "").strip())[0].upper()[:32]
    desk = (q.get("desk") or "").strip()
    if desk and not shares_desk(principal, [desk]):
        raise Forbidden(f"desk {desk} is not yours", field="desk")
    return {
        "status": statuses,
        "priority": priorities,
        "type": type_code,
        "desk": desk,
    }


async def live_queue(
    request: Request[Any, Any, Any], flt: repo.IncidentFilter
) -> tuple[list[dict[str, Any]], int]:
    """The open incidents a page shows, and the event id the page's stream continues from.

    Read like the API's live queue, and audited the same way (a consultation of incidents).
    """
    svc = services(request)
    last_event = svc.hub.last_id  # before the query: the stream replays anything after it

    def query() -> list[dict[str, Any]]:
        with svc.engine.connect() as conn:
            return repo.list_incidents(conn, flt, limit=QUEUE_LIMIT, before_id=None)[0]

    items = await anyio.to_thread.run_sync(query)
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONSULT,
            "incidents",
            "",
            detail={
                "results": len(items),
                "live_queue": True,
                "filter": {
                    "status": sorted(flt.statuses),
                    "desk": list(flt.desks),
                    "priority": sorted(flt.priorities),
                    "type": sorted(flt.type_codes),
                    "from": None,
                    "to": None,
                },
                "page": request.url.path,
            },
        ),
    )
    return items, last_event


@get("/", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def queue_page(request: Request[Any, Any, Any]) -> Response[str]:
    svc = services(request)
    principal = _principal(request)
    filters = _queue_filters(request, principal)
    statuses = filters["status"] or QUEUE_STATUSES
    desks = visible_desks(principal, [filters["desk"]] if filters["desk"] else None)
    flt = repo.IncidentFilter(
        statuses=tuple(statuses),
        desks=desks or (),
        priorities=tuple(filters["priority"]),
        type_codes=(filters["type"],) if filters["type"] else (),
    )
    items, last_event = await live_queue(request, flt)
    ref = await anyio.to_thread.run_sync(_reference, svc)
    return render(
        request,
        "queue.html",
        title="Queue",
        filters=filters,
        statuses=QUEUE_STATUSES,
        my_desks=_my_desks(svc, principal),
        types=ref.types,
        boot={
            "items": items,
            "last_event_id": last_event,
            "server_now": svc.clock().isoformat(),
            "filters": {**filters, "status": statuses},
            "types": ref.type_names(),
            "desks": sorted(principal.desks),
            "can_act": allowed(principal, Permission.INCIDENT_ACT),
            "rules": _rules_json(),
            "truncated": len(items) >= QUEUE_LIMIT,
        },
    )


def _rules_json() -> dict[str, list[str]]:
    """Which statuses each action is allowed from (the client offers only those)."""
    return {ACTION_PATHS[a]: sorted(s.value for s in RULES[a][0]) for a in Action}


# -- the incident page -----------------------------------------------------------------------


def valid_actions(incident: Mapping[str, Any], principal: Principal) -> list[dict[str, str]]:
    if not allowed(principal, Permission.INCIDENT_ACT):
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
    principal = _principal(request)
    last_event = svc.hub.last_id
    # 404 / 403 outside the caller's desks, like the API
    incident = await anyio.to_thread.run_sync(load_incident, request, incident_id)
    await audit(
        request, AuditEvent(actor_of(request), Operation.CONSULT, "incident", str(incident_id))
    )
    ref = await anyio.to_thread.run_sync(_reference, svc)
    itype = ref.type_of(incident["type_code"])
    notes = [e for e in incident["timeline"] if e["type"] == "incident.noted"]
    return {
        "incident": incident,
        "itype": itype,
        "actions": valid_actions(incident, principal),
        "people": _people(incident["signals"]),
        "notes": notes,
        "last_event_id": last_event,
        "is_open": incident["status"] in {s.value for s in OPEN},
    }


@get("/incidents/{incident_id:int}", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def incident_page(
    request: Request[Any, Any, Any], incident_id: FromPath[int]
) -> Response[str]:
    ctx = await _panel_context(request, incident_id)
    return render(
        request,
        "incident.html",
        title=f"#{incident_id} {ctx['incident']['type_code']}",
        types=_reference(services(request)).types,
        dispositions=[d.value for d in Disposition],
        cancel_reasons=[r.value for r in CancelReason],
        boot={
            "incident": {k: v for k, v in ctx["incident"].items() if k not in ("signals",)},
            "rules": _rules_json(),
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


@get(
    "/incidents/{incident_id:int}/events",
    opt=needs(Permission.INCIDENT_READ),
    include_in_schema=False,
)
async def incident_events(request: Request[Any, Any, Any], incident_id: FromPath[int]) -> Stream:
    """The live stream of one incident for htmx's SSE extension: an ``changed`` event (its
    data the event type) each time the incident changes; the page then reloads its panel."""
    svc = services(request)
    principal = _principal(request)
    # 404 / 403 outside the caller's desks, like the incident page
    await anyio.to_thread.run_sync(load_incident, request, incident_id)
    desks = visible_desks(principal, None)
    header = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    last_id = int(header) if header and header.isdigit() else None
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.CONSULT,
            "stream",
            "",
            detail={"desks": list(desks or ()), "replay_from": last_id, "incident": incident_id},
        ),
    )

    async def frames() -> AsyncIterator[bytes]:
        async for chunk in event_stream(svc, desks, last_id):
            if out := only_incident(chunk, incident_id):
                yield out

    return Stream(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# -- call-taker and duty-report forms --------------------------------------------------------

_COORDS = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*[,; ]\s*(-?\d{1,3}(?:\.\d+)?)\s*$")
_CALLBACK = re.compile(r"^[0-9+()\-.\s/]{3,40}$")
_FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
FORM_KINDS = {
    "call": {
        "title": "New call",
        "action": "/calls",
        "permission": Permission.CALL_CREATE,
        "source_kind": "call",
        "person_role": "caller",
    },
    "duty": {
        "title": "Duty report",
        "action": "/reports",
        "permission": Permission.DUTY_REPORT,
        "source_kind": "duty",
        "person_role": "reporter",
    },
}


def _form_page(request: Request[Any, Any, Any], kind: str) -> Response[str]:
    svc = services(request)
    return render(
        request,
        "intake.html",
        title=FORM_KINDS[kind]["title"],
        kind=kind,
        form=FORM_KINDS[kind],
        types=_reference(svc).types,
        form_key=secrets.token_urlsafe(16),
        boot={"map": map_config(request)},
    )


@get("/calls/new", opt=needs(Permission.CALL_CREATE), include_in_schema=False, sync_to_thread=True)
def call_form(request: Request[Any, Any, Any]) -> Response[str]:
    return _form_page(request, "call")


@get(
    "/reports/new", opt=needs(Permission.DUTY_REPORT), include_in_schema=False, sync_to_thread=True
)
def report_form(request: Request[Any, Any, Any]) -> Response[str]:
    return _form_page(request, "duty")


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def parse_type(text: str, ref: Reference) -> IncidentType | None:
    """The type a picker's text names: "FSTRU", "FSTRU — Structure fire" or the name."""
    head = re.split(r"\s+[—–-]\s+", text.strip(), maxsplit=1)[0].strip()
    found = ref.type_of(head) if head else None
    if found is None:
        wanted = text.strip().casefold()
        found = next((x for x in ref.types if x.name.casefold() == wanted), None)
    return found


def intake_signal(
    fields: Mapping[str, str], kind: str, principal: Principal, ref: Reference, now: datetime
) -> SignalIn:
    """The signal a console form describes; raises FormErrors naming each bad field."""
    spec = FORM_KINDS[kind]
    errors: dict[str, str] = {}
    itype = parse_type(fields.get("type", ""), ref)
    if itype is None:
        errors["type"] = "Choose an incident type from the list (type a code or a name)."
    location: dict[str, Any] = {}
    coords = fields.get("coords", "").strip()
    if coords:
        m = _COORDS.match(coords)
        lat, lon = (float(m.group(1)), float(m.group(2))) if m else (999.0, 999.0)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            errors["coords"] = "Coordinates are 'latitude, longitude', e.g. 37.7749, -122.4194."
        else:
            location.update(lat=lat, lon=lon)
    address = " ".join(fields.get("address", "").split())
    if len(address) > 200:
        errors["address"] = "An address is at most 200 characters."
    elif address:
        location["address"] = address
    if not location and "coords" not in errors:
        errors["coords"] = "Give a location: click the map, type coordinates, or an address."
    name = " ".join(fields.get("name", "").split())
    if len(name) > 100:
        errors["name"] = "A name is at most 100 characters."
    callback = fields.get("callback", "").strip()
    if callback and not _CALLBACK.match(callback):
        errors["callback"] = "A callback number has digits, spaces and + ( ) - . / only."
    summary = fields.get("summary", "").strip()
    if len(summary) > 1000:
        errors["summary"] = "The summary is at most 1,000 characters."
    form_key = fields.get("form_key", "")
    if not _FORM_KEY.match(form_key):
        errors["form"] = "This form is stale; reload the page."
    if errors:
        raise FormErrors(errors)
    assert itype is not None
    person: dict[str, str] = {"role": spec["person_role"]}
    if kind == "duty":
        person["name"] = principal.name
    elif name:
        person["name"] = name
    if callback:
        person["callback"] = callback
    payload = {"people": [person]} if len(person) > 1 else {}
    raw = {
        "source_kind": spec["source_kind"],
        "source_id": principal.id,
        "type_code": itype.code,
        "occurred_at": now.isoformat(),
        "location": location,
        "summary": summary,
        "idempotency_key": f"console-{kind}:{principal.id}:{form_key}",
        "payload": payload,
    }
    try:
        signal = msgspec.convert(raw, SignalIn)
    except msgspec.ValidationError as exc:
        raise FormErrors({"form": str(exc)}) from None
    try:
        return check(signal, now)
    except AlarmdeskError as exc:
        raise FormErrors({"form": exc.message}) from None


def _first_receipt(svc: Services, key: str | None) -> Receipt | None:
    with svc.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.signals.c.id, t.signals.c.incident_id, t.signals.c.received_at).where(
                t.signals.c.idempotency_key == key
            )
        ).first()
    if row is None or key is None:
        return None
    return Receipt(row.id, row.incident_id, key, row.received_at)


async def _submit_form(request: Request[Any, Any, Any], kind: str) -> Response[str]:
    svc = services(request)
    principal = _principal(request)
    fields = await _form(request)
    ref = await anyio.to_thread.run_sync(_reference, svc)
    try:
        signal = intake_signal(fields, kind, principal, ref, svc.clock())
    except FormErrors as exc:
        return render(
            request,
            "_intake_result.html",
            status_code=422,
            errors=exc.errors,
            receipt=None,
            incident=None,
            visible=False,
            opened=False,
            new_key=None,
        )
    try:
        (receipt,) = await svc.writer.submit_signals([signal], actor=actor_of(request))
    except IdempotencyKeyReused:
        # The same form sent again after a change: it was stored the first time.
        first = await anyio.to_thread.run_sync(_first_receipt, svc, signal.idempotency_key)
        if first is None:
            raise
        receipt = first
    incident = None
    if receipt.incident_id is not None:

        def fetch() -> dict[str, Any] | None:
            with svc.engine.connect() as conn:
                return repo.get_incident(conn, receipt.incident_id)  # type: ignore[arg-type]

        incident = await anyio.to_thread.run_sync(fetch)
        await audit(
            request,
            AuditEvent(actor_of(request), Operation.CONSULT, "incident", str(receipt.incident_id)),
        )
    visible = incident is not None and shares_desk(principal, incident["desks"])
    opened = bool(
        incident and incident["signals"] and incident["signals"][0]["id"] == receipt.signal_id
    )
    return render(
        request,
        "_intake_result.html",
        errors={},
        receipt=receipt,
        incident=incident,
        visible=visible,
        opened=opened,
        new_key=secrets.token_urlsafe(16),
    )


@post("/calls", opt=needs(Permission.CALL_CREATE), include_in_schema=False, status_code=200)
async def submit_call(request: Request[Any, Any, Any]) -> Response[str]:
    return await _submit_form(request, "call")


@post("/reports", opt=needs(Permission.DUTY_REPORT), include_in_schema=False, status_code=200)
async def submit_report(request: Request[Any, Any, Any]) -> Response[str]:
    return await _submit_form(request, "duty")


# -- the map ---------------------------------------------------------------------------------


@get("/map", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def map_page(request: Request[Any, Any, Any]) -> Response[str]:
    svc = services(request)
    principal = _principal(request)
    flt = repo.IncidentFilter(
        statuses=tuple(QUEUE_STATUSES), desks=visible_desks(principal, None) or ()
    )
    items, last_event = await live_queue(request, flt)
    await anyio.to_thread.run_sync(_reference, svc)
    return render(
        request,
        "map.html",
        title="Map",
        boot={
            "items": items,
            "last_event_id": last_event,
            "types": _reference(svc).type_names(),
            "desks": sorted(principal.desks),
            "map": map_config(request),
        },
    )


def _local_file(value: str | None, what: str) -> Path:
    if not value or _is_url(value):
        raise NotFound(f"no local {what} is configured")
    path = Path(value).expanduser()
    if not path.is_file():
        raise NotFound(f"the configured {what} {path} does not exist")
    return path


@get("/console/basemap.geojson", opt=needs(Permission.REFERENCE_READ), include_in_schema=False)
async def basemap_file(request: Request[Any, Any, Any]) -> File:
    path = _local_file(map_settings(services(request)).basemap_geojson, "basemap GeoJSON")
    return File(path, media_type="application/geo+json", content_disposition_type="inline")


@get("/console/tiles.pmtiles", opt=needs(Permission.REFERENCE_READ), include_in_schema=False)
async def pmtiles_file(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The configured PMTiles archive, with HTTP range requests (the reader needs them)."""
    path = _local_file(map_settings(services(request)).pmtiles, "PMTiles archive")
    size = path.stat().st_size
    rng = request.headers.get("range", "")
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    if not m:
        return Response(
            await anyio.Path(path).read_bytes(),
            media_type="application/octet-stream",
            headers=headers,
        )
    start = int(m.group(1))
    end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1, start + 16 * 1024 * 1024)
    if start >= size or end < start:
        return Response(
            b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"}
        )

    def read() -> bytes:
        with path.open("rb") as fh:
            fh.seek(start)
            return fh.read(end - start + 1)

    data = await anyio.to_thread.run_sync(read)
    return Response(
        data,
        status_code=206,
        media_type="application/octet-stream",
        headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"},
    )


# -- errors as pages -------------------------------------------------------------------------


def _is_htmx(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("hx-request") == "true"


def page_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Console routes answer errors with pages (or fragments for htmx), never JSON."""
    if isinstance(exc, AlarmdeskError):
        status, code, message = exc.status, exc.code, exc.message
    elif isinstance(exc, HTTPException):
        status, code, message = exc.status_code, "error", exc.detail
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        status, code, message = 500, "internal_error", "Something went wrong on the server."
    accept = request.headers.get("accept", "")
    if "text/event-stream" in accept:
        return error_response(status, code, message)
    if status == 401:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if _is_htmx(request):
            current = urlsplit(request.headers.get("hx-current-url", "/"))
            back = current.path + (f"?{current.query}" if current.query else "")
            return Response(
                "", status_code=401, headers={"HX-Redirect": "/login?next=" + quote(back)}
            )
        if request.method == "GET":
            return Redirect("/login?next=" + quote(here))
    p = request.scope.get("principal")
    template = "_error_fragment.html" if _is_htmx(request) else "error.html"
    return render(
        request,
        template,
        status_code=status,
        title={403: "Not allowed", 404: "Not found"}.get(status, "Error"),
        status=status,
        code=code,
        message=message,
        role=p.role.value if isinstance(p, Principal) else None,
    )


CONSOLE_ROUTES = [
    login_page,
    login_submit,
    logout,
    queue_page,
    incident_page,
    incident_panel,
    incident_events,
    call_form,
    report_form,
    submit_call,
    submit_report,
    map_page,
    basemap_file,
    pmtiles_file,
]

ROUTES = [
    Router(
        path="/",
        route_handlers=CONSOLE_ROUTES,
        exception_handlers={
            AlarmdeskError: page_error,
            HTTPException: page_error,
            Exception: page_error,
        },
        include_in_schema=False,
    ),
    create_static_files_router(
        path="/static",
        directories=[STATIC],
        opt={"public": True},
        cache_control=CacheControlHeader(no_cache=True),  # revalidate: modules import unversioned
        include_in_schema=False,
        name="console_static",
    ),
]
"""What ``web/app.py`` registers: the console's pages and its static files."""
