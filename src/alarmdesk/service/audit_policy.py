"""Which audit entry an action leaves: what was collected or altered, never its content."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.signal import Receipt
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation, Outcome

__all__ = [
    "collect_entry",
    "command_entry",
    "configure_entry",
    "denied_collect_entry",
    "positions_entry",
    "unit_report_entry",
]

AUDITED_UNITS = 200  # unit ids named in one positions entry; the count is always whole


def configure_entry(
    actor: Actor,
    object_type: str,
    object_id: str,
    rule: str,
    error: AlarmdeskError | None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """A change of configuration (a silence, a webhook, a type, an account): allowed under
    its rule, or denied with the error's code."""
    outcome, why = (Outcome.DENIED, error.code) if error is not None else (Outcome.ALLOWED, rule)
    return AuditEvent(
        actor, Operation.CONFIGURE, object_type, object_id, outcome, why, detail=detail or {}
    )


def command_entry(actor: Actor, command: c.Command, error: BaseException | None) -> AuditEvent:
    """An operator command: allowed (the command's name) or denied (the error's code)."""
    if error is not None:
        outcome, rule = Outcome.DENIED, getattr(error, "code", type(error).__name__)
    else:
        outcome, rule = Outcome.ALLOWED, type(command).__name__.lower()
    return AuditEvent(actor, Operation.ALTER, "incident", str(command.incident_id), outcome, rule)


def unit_report_entry(
    actor: Actor, report: c.UnitReport, error: BaseException | None
) -> AuditEvent:
    """A unit's report: which unit, which status, whether it carried a position (never the
    position itself)."""
    code = getattr(error, "code", "error") if error is not None else ""
    return AuditEvent(
        actor,
        Operation.ALTER,
        "unit",
        report.unit_id,
        outcome=Outcome.DENIED if error is not None else Outcome.ALLOWED,
        rule=code or "unit.report",
        detail={"status": report.status, "position": report.lat is not None},
    )


def positions_entry(actor: Actor, reports: Sequence[c.UnitReport]) -> AuditEvent:
    """One entry per reporter and transaction for position-only reports (an AVL feed sends
    one per unit every few seconds): which units and how many reports, never a position.
    A status change keeps an entry of its own (:func:`unit_report_entry`)."""
    units = sorted({r.unit_id for r in reports})
    return AuditEvent(
        actor,
        Operation.ALTER,
        "unit",
        units[0] if len(units) == 1 else f"{len(units)} units",
        Outcome.ALLOWED,
        "unit.position",
        detail={"count": len(reports), "units": units[:AUDITED_UNITS]},
    )


def _id_range(receipts: Sequence[Receipt]) -> str:
    ids = [r.signal_id for r in receipts]
    return f"{min(ids)}-{max(ids)}" if ids else ""


def collect_entry(
    actor: Actor, receipts: Sequence[Receipt], signals: int, requests: int
) -> AuditEvent:
    """One "collect" entry per source and transaction, however many requests it sent: every
    signal is still on record (the id range and the count), at a fraction of the cost."""
    return AuditEvent(
        actor,
        Operation.COLLECT,
        "signal",
        _id_range(receipts),
        Outcome.ALLOWED,
        "",
        detail={"count": signals, "requests": requests},
    )


def denied_collect_entry(actor: Actor, signals: int, error: BaseException) -> AuditEvent:
    """A submission refused as a whole (a reused key, a value no store can keep)."""
    return AuditEvent(
        actor,
        Operation.COLLECT,
        "signal",
        "",
        Outcome.DENIED,
        getattr(error, "code", type(error).__name__),
        detail={"count": signals},
    )
