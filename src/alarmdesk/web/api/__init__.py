"""The JSON API, version 1: one module per resource.

Every route names the permission it needs (``opt``); ``web/auth.permission_guard`` checks it
against ``safeguards/access.MATRIX``, and incident data is scoped to the caller's desks.
"""

from __future__ import annotations

from alarmdesk.web.api import (
    cap,
    health,
    incidents,
    media,
    reference,
    setup,
    setup_items,
    signals,
    silences,
    stream,
    webhooks,
)
from alarmdesk.web.api.common import actor_of, audit, desk_filter, needs, read_body, services
from alarmdesk.web.api.incidents import load_incident

__all__ = [
    "ROUTES",
    "actor_of",
    "audit",
    "desk_filter",
    "load_incident",
    "needs",
    "read_body",
    "services",
]

ROUTES = [
    *signals.ROUTES,
    *incidents.ROUTES,
    *media.ROUTES,
    *reference.ROUTES,
    *health.ROUTES,
    *stream.ROUTES,
    *setup.ROUTES,
    *setup_items.ROUTES,
    *silences.ROUTES,
    *webhooks.ROUTES,
    *cap.ROUTES,
]
