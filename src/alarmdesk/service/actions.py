"""Actions: a configuration or account change together with the audit entries it leaves.

An :class:`Action` is built once by a service function (``service/accounts.py``,
``service/custom_types.py``) and run by either runner, so the web and the command line can
never store a change without its audit entry:

- in a server, ``Writer.run(action)`` runs it in the writer's transaction (group commit);
- from the command line, :func:`perform` runs it in a transaction of its own.

Either way the change and its entries commit together or not at all; a refused change (an
``AlarmdeskError``) stores only its denial entry and is raised to the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.safeguards.audit import AuditEvent
from alarmdesk.store.audit import AuditChain, lock_audit

__all__ = ["Action", "Apply", "AuditOf", "apply_in", "in_transaction", "perform"]

log = logging.getLogger(__name__)
T = TypeVar("T")
_RETRIES = 4

# Makes the change in the caller's transaction; returns what the caller gets back; raises an
# AlarmdeskError to refuse.
Apply = Callable[[sa.Connection, datetime], Any]
# The entries an action leaves, from its result or from the error that refused it.
AuditOf = Callable[[Any, AlarmdeskError | None], Sequence[AuditEvent]]


@dataclass(frozen=True, slots=True)
class Action:
    apply: Apply
    audit_of: AuditOf
    reload_taxonomy: bool = False  # the types in force may have changed
    reload_silences: bool = False  # the silences in force may have changed
    reload_setup: bool = False  # desks, routing, escalation or units may have changed


def apply_in(conn: sa.Connection, action: Action, now: datetime) -> Any:
    """Runs the change in a savepoint: a refused one leaves nothing behind, and the
    transaction goes on (for the writer's other requests, and for the denial entry)."""
    # The audit lock is a write: on SQLite it makes the driver open the transaction before the
    # SAVEPOINT, which would otherwise become the outer transaction and commit on RELEASE.
    lock_audit(conn)
    savepoint = conn.begin_nested()
    try:
        result = action.apply(conn, now)
    except AlarmdeskError:
        savepoint.rollback()
        raise
    savepoint.commit()
    return result


def perform(engine: sa.Engine, chain: AuditChain, action: Action, now: datetime) -> Any:
    """Runs an action and appends its entries in one transaction of its own (the command
    line's runner, and a standby's: ``service/standby.py``), again if another appender of
    the audit log took the same sequence number first. Raises the AlarmdeskError that
    refused it, after its denial is stored."""

    def work(conn: sa.Connection) -> tuple[Any, AlarmdeskError | None]:
        error: AlarmdeskError | None = None
        result: Any = None
        try:
            result = apply_in(conn, action, now)
        except AlarmdeskError as exc:
            error = exc
        chain.append(conn, list(action.audit_of(result, error)), now)
        return result, error

    result, error = in_transaction(engine, chain, work, "action")
    if error is not None:
        raise error
    return result


def in_transaction(
    engine: sa.Engine, chain: AuditChain, work: Callable[[sa.Connection], T], what: str
) -> T:
    """Runs ``work`` (which appends its audit entries with ``chain``) in one transaction;
    retries when another appender of the audit log took the same sequence number first, or
    the database was busy. ``what`` names the work in the log."""
    for attempt in range(_RETRIES):
        try:
            with engine.begin() as conn:
                return work(conn)
        except (sa.exc.IntegrityError, sa.exc.OperationalError) as exc:
            chain.reset()
            if attempt == _RETRIES - 1:
                raise
            log.warning("%s transaction retried (%s)", what, type(exc.orig).__name__)
            time.sleep(0.05 * 2**attempt)
        except BaseException:
            chain.reset()
            raise
    raise AssertionError("unreachable")
