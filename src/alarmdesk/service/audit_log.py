"""Exporting the audit log: the export is itself logged (with its justification) before a
line leaves, and a checkpoint is signed so that every entry is covered."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.store import audit as store_audit
from alarmdesk.store.audit import AuditChain

__all__ = ["export_lines", "record_export"]


def record_export(
    engine: sa.Engine,
    chain: AuditChain,
    actor: Actor,
    target: str,
    justification: str,
    now: datetime,
    *,
    sign: bool = True,
) -> None:
    """Logs the export (and signs a checkpoint covering it) in one transaction."""
    with engine.begin() as conn:
        chain.append(
            conn,
            [AuditEvent(actor, Operation.EXPORT, "audit_log", target, justification=justification)],
            now,
        )
        if sign:
            chain.checkpoint(conn, now)


def export_lines(engine: sa.Engine) -> Iterator[dict[str, Any]]:
    """The whole log in the export format, streamed."""
    with engine.connect() as conn:
        yield from store_audit.export_lines(conn)
