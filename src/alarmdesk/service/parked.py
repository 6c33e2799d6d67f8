"""Parked signals (distributed mode; docs/operations.md, "A signal that cannot be stored").

A signal taken from the intake log has been answered "202 queued": it must be stored, and
the signals behind it in its partition wait for it (they are consumed in order). One that
fails alone, in a transaction of its own, on what may be its own fault (a defect it meets,
a constraint it breaks; not the database away, which fails every signal and is waited out)
is tried :data:`PARK_AFTER` times, then parked: kept whole in ``parked_signals`` with its
error, counted in ``alarmdesk_signals_parked_total``, logged as an error, and acknowledged in
the log, so that its partition goes on. Nothing is dropped: ``alarmdesk parked list`` shows
them, and ``alarmdesk parked retry`` puts them back into the log once the fault is mended
(an upgrade); one that fails again is parked again.

Every step leaves its audit entry: parking a signal is its ``collect`` (under its sender),
reading the list a ``consult``, putting one back an ``alter``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from alarmdesk.bus.jetstream import QueuedSignal, message_id
from alarmdesk.domain.errors import AlarmdeskError, LeaseLost, NotFound
from alarmdesk.safeguards.audit import SYSTEM, Actor, AuditEvent, Operation, Outcome
from alarmdesk.service.actions import Action, in_transaction
from alarmdesk.store import leases
from alarmdesk.store import parked as store
from alarmdesk.store.audit import AuditChain

__all__ = [
    "PARK_AFTER",
    "Failure",
    "Retry",
    "listing",
    "park",
    "retried",
    "to_retry",
    "waiting",
]

# Tries of a signal that failed alone before it is parked: each try is a transaction that
# failed and a reload of the writer's state, a second apart (bus/jetstream.RETRY_SECONDS), so
# a signal is parked about PARK_AFTER seconds after it was taken.
PARK_AFTER = 3


@dataclass(frozen=True, slots=True)
class Failure:
    """A queued signal that failed alone, and how many times so far."""

    queued: QueuedSignal
    error: Exception
    attempts: int


def _error_text(error: Exception) -> str:
    """The error as the list shows it; a NUL (which no text column of PostgreSQL holds) as
    ``\\x00``."""
    return f"{type(error).__name__}: {error}".replace("\x00", "\\x00")


def park(partition: int, lease: leases.Lease | None, failures: Sequence[Failure]) -> Action:
    """Parks signals of ``partition`` that failed alone ``PARK_AFTER`` times, under the
    partition's lease (a node that lost the partition parks nothing: the new holder's
    consumer takes the signals again). One ``collect`` entry per signal, under its sender,
    naming the parked row; the error's type, never the signal's content."""

    def run(conn: sa.Connection, now: datetime) -> list[int]:
        if lease is not None and not leases.holds(conn, lease, now):
            raise LeaseLost(f"partition {partition} is no longer this node's")
        items = [
            store.Parking(
                message_id(f.queued.signal),
                partition,
                f.queued.received_at,
                msgspec.to_builtins(f.queued),
                _error_text(f.error),
                f.attempts,
            )
            for f in failures
        ]
        return store.park(conn, items, now)

    def audit_of(ids: list[int] | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        if error is not None or ids is None:
            return []  # nothing parked: the signals stay in the log
        return [
            AuditEvent(
                f.queued.actor or SYSTEM,
                Operation.COLLECT,
                "parked_signal",
                str(row_id),
                Outcome.ALLOWED,
                "parked",
                detail={
                    "partition": partition,
                    "attempts": f.attempts,
                    "error": type(f.error).__name__,
                },
            )
            for f, row_id in zip(failures, ids, strict=True)
        ]

    return Action(run, audit_of)


def listing(
    engine: sa.Engine, chain: AuditChain, actor: Actor, now: datetime, *, retried: bool = False
) -> list[dict[str, Any]]:
    """The parked signals (with ``retried``, also those put back), read with a ``consult``
    entry in the same transaction."""

    def work(conn: sa.Connection) -> list[dict[str, Any]]:
        rows = store.parked_rows(conn, retried=retried)
        entry = AuditEvent(
            actor,
            Operation.CONSULT,
            "parked_signals",
            "",
            Outcome.ALLOWED,
            "parked.list",
            detail={"count": len(rows), "retried": retried},
        )
        chain.append(conn, [entry], now)
        return rows

    return in_transaction(engine, chain, work, "parked signals list")


@dataclass(frozen=True, slots=True)
class Retry:
    """A parked signal to put back: its row as read, and the message id it goes under."""

    id: int
    parked_at: datetime
    queued: QueuedSignal
    msg_id: str


def waiting(engine: sa.Engine) -> tuple[int, datetime | None]:
    """How many parked signals wait, and since when (the oldest's parking): a count, no
    signal's content, for the supervisor's console."""
    with engine.connect() as conn:
        return store.waiting_count(conn)


def to_retry(engine: sa.Engine, ids: Sequence[int] | None) -> list[Retry]:
    """The parked signals to put back (``ids``; None: every one waiting). Each goes under a
    message id of its own every time, so that JetStream's duplicate window never drops it as
    the resend of an earlier delivery (the first one, or a retry published and parked again
    while its mark was lost). A signal already stored is still recognised by its key.

    Raises:
        NotFound: an id names no parked signal waiting.
    """
    with engine.connect() as conn:
        rows = store.parked_rows(conn, ids=ids)
    if ids is not None:
        missing = sorted(set(ids) - {int(r["id"]) for r in rows})
        if missing:
            raise NotFound(
                f"no parked signal waiting with id {', '.join(map(str, missing))} "
                "(alarmdesk parked list --retried shows those put back)"
            )
    return [
        Retry(
            int(r["id"]),
            r["parked_at"],
            msgspec.convert(r["queued"], QueuedSignal),
            f"{r['message_id']}#retry-{uuid.uuid4().hex}",
        )
        for r in rows
    ]


def retried(actor: Actor, retries: Sequence[Retry]) -> Action:
    """Marks parked signals as put back, after the log confirmed them: each only if it was not
    parked again meanwhile (it failed again at once: it stays waiting). One ``alter`` entry
    naming them."""
    ids = [r.id for r in retries]

    def run(conn: sa.Connection, now: datetime) -> int:
        return store.mark_retried(conn, [(r.id, r.parked_at) for r in retries], now)

    def audit_of(count: int | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        outcome, rule = (Outcome.DENIED, error.code) if error else (Outcome.ALLOWED, "parked.retry")
        return [
            AuditEvent(
                actor,
                Operation.ALTER,
                "parked_signal",
                f"{min(ids)}-{max(ids)}" if ids else "",
                outcome,
                rule,
                detail={"count": count or 0, "asked": len(ids)},
            )
        ]

    return Action(run, audit_of)
