"""One batch of the writer's work inside its transaction (``service/writer.py`` gathers the
batch, owns the connection and the state, commits, and completes the callers' futures).

In one transaction, in this order: the escalation steps due now fire; signals whose partition
lease is no longer this node's are refused; each request runs through its handler
(``service/handlers.py``), a refused one (an ``AlarmdeskError``) failing alone; and the
audit entries of the batch are gathered: one ``collect`` entry per sender for its signals,
one entry per command, positions of units folded per sender.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import AlarmdeskError, LeaseLost
from alarmdesk.domain.signal import SignalIn, SourceKind, settle_key
from alarmdesk.safeguards.audit import Actor, AuditEvent
from alarmdesk.service import audit_policy, handlers
from alarmdesk.service.actions import Action, apply_in
from alarmdesk.store import repository as repo
from alarmdesk.store.leases import Lease, holds
from alarmdesk.store.unit_of_work import Changes, known_receipts

__all__ = ["Queued", "Work", "apply_batch", "outcomes", "settle"]


@dataclass(frozen=True, slots=True)
class Queued:
    """One request of signals taken from the intake log (distributed mode): stored alone
    (its own all-or-none), received when the edge queued it, fenced by its partition lease."""

    signals: Sequence[SignalIn]
    received_at: datetime
    actor: Actor | None
    lease: Lease


@dataclass(slots=True)
class Work:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    signals: Sequence[SignalIn] = ()
    command: c.Command | None = None
    unit_report: c.UnitReport | None = None
    action: Action | None = None  # a configuration or account change, with its entries
    actor: Actor | None = None  # who submitted it; its audit entry is written with it
    audit: Sequence[AuditEvent] = ()  # entries to append, alone or beside the work
    reload_taxonomy: bool = False  # the types in force changed (a custom type was approved)
    reload_silences: bool = False  # a silence was created or ended
    reload_setup: bool = False  # the centre's set-up was applied
    reload_state: bool = False  # this node gained a partition: others may have written
    received_at: datetime | None = None  # when the edge took the signals (else: at commit)
    lease: Lease | None = None  # the partition lease the signals are stored under
    result: Any = None
    error: BaseException | None = None
    # It failed in a transaction that held it alone, on what may be its own (a defect it
    # meets, a constraint it breaks: writer._may_be_one_request), not on a refusal.
    failed_alone: bool = False
    queued: float = field(default_factory=time.monotonic)  # for the pipeline-lag metric


def outcomes(works: Sequence[Work], failed: bool) -> list[tuple[str, str, int]]:
    """(source kind, outcome, signals) for the metrics, one entry per pair in ``works``.

    Counted over the whole transaction, so a counter's labels are looked up once per pair
    and not once per request (64 single-signal requests are one pair, stored, panel)."""
    counts: dict[tuple[SourceKind, str], int] = {}
    for w in works:
        if not w.signals:
            continue
        if failed:
            outcome = "failed"
        elif w.error is None:
            outcome = "stored"
        else:
            outcome = getattr(w.error, "code", "error")
        for s in w.signals:
            pair = (s.source_kind, outcome)
            counts[pair] = counts.get(pair, 0) + 1
    return [(kind.value, outcome, n) for (kind, outcome), n in counts.items()]


def apply_batch(
    conn: sa.Connection,
    state: handlers.State,
    works: list[Work],
    changes: Changes,
    now: datetime,
    setup_changed: Callable[[sa.Connection, handlers.State], None],
) -> None:
    """Applies ``works`` to ``state`` and ``changes`` (each request's result or error set on
    it). ``setup_changed``: the writer takes up a set-up applied in this batch."""
    # Escalation timers due now fire first, in this transaction: a step and the move to the
    # next commit together, so none fires twice and none is lost across a restart.
    fired = state.pipeline.fire_due(now)
    if fired.events:
        state.number(fired.events)
        changes.collect(fired.incidents, fired.units, fired.events)
        changes.commanded.update(fired.incidents)
    # One query for every key in the batch: earlier receipts, to answer resends.
    for w in works:
        if w.lease is not None and not holds(conn, w.lease, now):
            w.error = LeaseLost(f"this node no longer holds the lease {w.lease.name}")
    keyed = [
        (w, [settle_key(s) for s in w.signals]) for w in works if w.signals and w.error is None
    ]
    known = known_receipts(conn, [k for _, ks in keyed for k in ks if not k.startswith("auto:")])
    keys_of = {id(w): ks for w, ks in keyed}
    collected: dict[Actor, list[Work]] = {}
    positions: dict[Actor, list[c.UnitReport]] = {}
    for w in works:
        if w.error is not None:  # fenced out: stores nothing, writes no audit entry
            continue
        try:
            if w.command is not None:
                w.result = handlers.apply_command(conn, state, w.command, now, changes)
            elif w.unit_report is not None:
                w.result = handlers.apply_unit_report(state, w.unit_report, now, changes)
            elif w.signals:
                w.result = handlers.apply_signals(
                    state, w.signals, keys_of[id(w)], known, w.received_at or now, changes
                )
            elif w.action is not None:
                w.result = apply_in(conn, w.action, now)
        except AlarmdeskError as exc:
            w.error = exc
        if w.reload_taxonomy and w.error is None:
            state.pipeline.taxonomy = repo.load_taxonomy(conn)
        if w.reload_silences and w.error is None:
            state.pipeline.silences = repo.load_silences(conn, now)
        if w.reload_setup and w.error is None:
            setup_changed(conn, state)
        changes.audit.extend(w.audit)
        if w.action is not None:
            error = w.error if isinstance(w.error, AlarmdeskError) else None
            changes.audit.extend(w.action.audit_of(w.result, error))
        if w.actor is None:
            continue
        if w.command is not None:
            changes.audit.append(audit_policy.command_entry(w.actor, w.command, w.error))
        elif w.unit_report is not None:
            if w.error is None and w.unit_report.status is None:
                positions.setdefault(w.actor, []).append(w.unit_report)
            else:
                changes.audit.append(
                    audit_policy.unit_report_entry(w.actor, w.unit_report, w.error)
                )
        elif w.signals and w.error is None:
            collected.setdefault(w.actor, []).append(w)
        elif w.signals:
            changes.audit.append(
                audit_policy.denied_collect_entry(w.actor, len(w.signals), w.error)  # type: ignore[arg-type]
            )
    for actor, reports in positions.items():
        changes.audit.append(audit_policy.positions_entry(actor, reports))
    for actor, ws in collected.items():
        changes.audit.append(
            audit_policy.collect_entry(
                actor,
                [r for w in ws for r in w.result],
                signals=sum(len(w.signals) for w in ws),
                requests=len(ws),
            )
        )


def settle(works: list[Work]) -> None:
    for w in works:
        if w.future.done():
            continue
        if w.error is not None:
            w.future.set_exception(w.error)
        else:
            w.future.set_result(w.result)
