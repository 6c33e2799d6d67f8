"""Custom incident types: proposal and approval, each with its audit entry in the same
transaction (``service/actions.py``). The rules themselves (purpose, legal basis, two
approvals: a rights officer and one other user, neither the author) are enforced by
``store/custom_types.py`` and the purpose policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.safeguards.access import Principal
from alarmdesk.safeguards.audit import Actor, AuditEvent
from alarmdesk.service.actions import Action
from alarmdesk.service.audit_policy import configure_entry
from alarmdesk.store import custom_types
from alarmdesk.store import repository as repo

__all__ = ["approve", "list_types", "propose"]


def list_types(engine: sa.Engine, *, custom: bool) -> list[dict[str, Any]]:
    """The types in force, or (custom) every custom type with its approvals."""
    with engine.connect() as conn:
        if custom:
            return custom_types.list_custom(conn)
        return [msgspec.to_builtins(x) for x in repo.load_taxonomy(conn)]


def propose(proposed: IncidentType, author: str, actor: Actor) -> Action:
    """Stores a proposal (screened for protected purposes); the result describes it."""

    def apply(conn: sa.Connection, now: datetime) -> dict[str, Any]:
        custom_types.propose(conn, proposed, author, now)
        return custom_types.describe(conn, proposed.code)

    def audit_of(result: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        return [configure_entry(actor, "incident_type", proposed.code, "types.propose", error)]

    return Action(apply, audit_of)


def approve(code: str, approver: Principal, actor: Actor) -> Action:
    """Records an approval; the type takes effect (the writer reloads the taxonomy) once it
    has both. The result describes the type."""

    def apply(conn: sa.Connection, now: datetime) -> dict[str, Any]:
        return custom_types.approve(conn, code, approver.name, approver.role, now)

    def audit_of(result: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        if result is None:
            return [configure_entry(actor, "incident_type", code, "types.approve", error)]
        detail = {"status": result["status"]}
        return [
            configure_entry(actor, "incident_type", result["code"], "types.approve", error, detail)
        ]

    return Action(apply, audit_of, reload_taxonomy=True)
