"""Pages: the Jinja2 environment (autoescaping every template), the policy every page is sent
with, what every page knows about its viewer, and errors shown as pages."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote, urlsplit

import jinja2
from litestar import MediaType, Request, Response
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException
from litestar.response import Redirect
from markupsafe import Markup

from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.safeguards.access import Permission, Principal, allowed
from alarmdesk.web.api import services
from alarmdesk.web.console.assets import TEMPLATES, static_url
from alarmdesk.web.console.settings import MapSettings, is_url, map_settings
from alarmdesk.web.errors import error_response

log = logging.getLogger(__name__)

EVENT_LABELS: Final = {
    "incident.opened": "Opened",
    "incident.updated": "Updated",
    "incident.transitioned": "Status changed",
    "incident.units_assigned": "Units assigned",
    "incident.noted": "Note",
    "incident.reclassified": "Reclassified",
    "incident.step_done": "Procedure step done",
    "incident.unit_status": "Unit status",
    "incident.escalated": "Escalated",
    "incident.verified": "Video verdict",
}

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
    if not url or not is_url(url):
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
            "media-src 'self'",  # clips of incidents, fetched from Frigate through alarmdesk
            f"connect-src {connect}",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ]
    )


NAV: Final = (
    ("/", "Queue", "g q", Permission.INCIDENT_READ),
    ("/map", "Map", "g m", Permission.INCIDENT_READ),
    ("/units", "Units", "g u", Permission.INCIDENT_READ),
    ("/silences", "Silences", "", Permission.INCIDENT_READ),
    ("/kpi", "Response times", "", Permission.KPI_READ),
    ("/calls/new", "New call", "g c", Permission.CALL_CREATE),
    ("/reports/new", "Duty report", "g r", Permission.DUTY_REPORT),
    ("/audit", "Audit log", "", Permission.AUDIT_READ),
    ("/transparency", "Transparency report", "", Permission.REPORT_READ),
    ("/accounts", "Accounts", "", Permission.ACCOUNTS_MANAGE),
    ("/setup", "Set-up", "", Permission.SETUP_MANAGE),
)
# A role's start page: the first of these it may open (the queue for those handling incidents).
START_PAGES: Final = (
    ("/", Permission.INCIDENT_READ),
    ("/audit", Permission.AUDIT_READ),
    ("/accounts", Permission.ACCOUNTS_MANAGE),
    ("/transparency", Permission.REPORT_READ),  # a rights officer: the report and approvals
)


def start_page(who: Principal) -> str:
    """Where ``who`` lands after signing in (and where the brand link leads)."""
    return next((path for path, perm in START_PAGES if allowed(who, perm)), "/")


def page_context(request: Request[Any, Any, Any]) -> dict[str, Any]:
    p = request.scope.get("principal")
    if not isinstance(p, Principal):
        return {
            "user": None,
            "csrf": "",
            "nav": [],
            "home": "/",
            "path": request.url.path,
            "server_now": "",
        }
    nav = [(href, label, key) for href, label, key, perm in NAV if allowed(p, perm)]
    return {
        "user": {
            "name": p.name,
            "role": p.role.value,
            "desks": sorted(p.desks),
            "all_desks": p.all_desks,
            "can_act": allowed(p, Permission.INCIDENT_ACT),
            "can_publish": allowed(p, Permission.CAP_PUBLISH),
        },
        "csrf": str(request.scope.get("csrf") or ""),
        "server_now": services(request).clock().isoformat(),
        "nav": nav,
        "home": start_page(p),
        "path": request.url.path,
    }


def render(
    request: Request[Any, Any, Any] | None,
    template: str,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Response[str]:
    """A page (or an htmx fragment), escaped by the environment, with the page policy."""
    context.setdefault("title", "alarmdesk")
    if request is not None:
        context.setdefault("page", page_context(request))
    html = environment.get_template(template).render(**context)
    settings = map_settings(services(request)) if request is not None else MapSettings()
    return Response(
        html,
        status_code=status_code,
        media_type=MediaType.HTML,  # Litestar adds "; charset=utf-8" to a text/* type
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": content_security_policy(settings),
            "X-Content-Type-Options": "nosniff",
            **(headers or {}),
        },
        cookies=cookies,
    )


# -- errors as pages -------------------------------------------------------------------------


def is_htmx(request: Request[Any, Any, Any]) -> bool:
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
    if "text/event-stream" in accept or "application/json" in accept:
        return error_response(status, code, message)
    if status == 401:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if is_htmx(request):
            current = urlsplit(request.headers.get("hx-current-url", "/"))
            back = current.path + (f"?{current.query}" if current.query else "")
            return Response(
                "", status_code=401, headers={"HX-Redirect": "/login?next=" + quote(back)}
            )
        if request.method == "GET":
            return Redirect("/login?next=" + quote(here))
    p = request.scope.get("principal")
    template = "_error_fragment.html" if is_htmx(request) else "error.html"
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
