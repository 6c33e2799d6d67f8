"""The operator console: server-rendered pages (Jinja2) with htmx, and small JS modules for
the live queue and the map. docs/console.md describes the pages, shortcuts and settings.

One module per concern:

- ``render``: the template environment (autoescaping), the Content-Security-Policy of every
  page, what a page knows of its viewer, errors as pages;
- ``settings``: the map's background settings and the briefly cached reference data;
- ``login``: signing in and out (and where each role lands);
- ``pages``: the queue and the incident page;
- ``events``: one incident's live stream;
- ``forms``: the call-taker and duty-report forms;
- ``maps``: the map page and the background files served from the server;
- ``landing``: the start pages of auditors, rights officers and administrators;
- ``setup_items``: the set-up item by item (lists, a page per item, forms, removal).

A page refused to a signed-in user renders a 403 page; without a session, a page redirects
to ``/login``. Changes go through the API (``/api/v1/incidents/{id}/{action}``) or the two
intake forms here, always with the session's CSRF token in ``X-CSRF-Token``. The console
reads through ``service/console_queries.py`` and ``service/queries.py``, never the store.
"""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router

from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.web.console import events, forms, landing, login, maps, pages, setup_items
from alarmdesk.web.console.assets import STATIC
from alarmdesk.web.console.render import page_error

__all__ = ["CONSOLE_ROUTES", "ROUTES"]

CONSOLE_ROUTES = [
    *login.ROUTES,
    *pages.ROUTES,
    *events.ROUTES,
    *forms.ROUTES,
    *maps.ROUTES,
    *landing.ROUTES,
    *setup_items.ROUTES,
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
