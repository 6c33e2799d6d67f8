"""The handlers: a signal or a command in, changes and events out.

They run inside the writer's transaction (``service/writer.py`` is the plumbing around them)
and decide; the unit of work (``store/unit_of_work.py``) stores what they decided. Each
handler raises an :class:`~alarmdesk.domain.errors.AlarmdeskError` to refuse its request;
a refused request changes nothing and never fails the other requests of its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import (
    IdempotencyKeyReused,
    InvalidField,
    InvalidTransition,
    NotFound,
)
from alarmdesk.domain.events import IncidentEvent
from alarmdesk.domain.incident import incident_dict
from alarmdesk.domain.signal import Receipt, SignalIn, content_digest, to_signal
from alarmdesk.pipeline import Pipeline
from alarmdesk.pipeline.unit_reports import unit_report
from alarmdesk.safeguards.minimise import minimise
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.store.unit_of_work import Changes

__all__ = ["State", "apply_command", "apply_signals", "load_state"]

PipelineFactory = Callable[[sa.Connection], Pipeline]

KnownKeys = dict[str, tuple[Receipt, str]]


@dataclass(slots=True)
class State:
    """What the writer holds in memory between transactions: the pipeline and the ids.

    The single writer assigns signal and event ids itself, which keeps event ids gap-free
    and makes ``Last-Event-ID`` replay exact (docs/architecture.md, "Ids").
    """

    pipeline: Pipeline
    next_signal_id: int
    next_event_id: int
    minimised: int = 0  # payload keys and objects dropped by minimisation (a count only)

    def number(self, events: Sequence[IncidentEvent]) -> None:
        for ev in events:
            ev.id = self.next_event_id
            self.next_event_id += 1


def load_state(conn: sa.Connection, pipeline_factory: PipelineFactory) -> State:
    return State(
        pipeline_factory(conn),
        next_signal_id=repo.highest_id(conn, t.signals) + 1,  # never one given before
        next_event_id=repo.highest_id(conn, t.events) + 1,
    )


def apply_signals(
    state: State,
    signals: Sequence[SignalIn],
    keys: Sequence[str],
    known: KnownKeys,
    now: datetime,
    changes: Changes,
) -> list[Receipt]:
    """Stores a request's signals, all or none: a resend gets its first receipt.

    Raises:
        InvalidField: a signal no store can keep (checked before any is applied).
        IdempotencyKeyReused: a key came before with other content.
    """
    try:
        digests = [content_digest(s) for s in signals]
    except (OverflowError, ValueError) as exc:  # one bad request never fails its batch
        raise InvalidField(f"a signal cannot be stored: {exc}", code="invalid_value") from None
    # All or nothing per request: look for a reused key before applying any signal.
    local: dict[str, str] = {}
    for key, fp in zip(keys, digests, strict=True):
        seen = known[key][1] if key in known else local.get(key)
        if seen is not None and seen != fp:
            raise IdempotencyKeyReused(
                f"idempotency key {key!r} was used before for a different signal",
                field="idempotency_key",
            )
        local[key] = fp
    receipts: list[Receipt] = []
    for s, key, fp in zip(signals, keys, digests, strict=True):
        if key in known:
            receipts.append(known[key][0])
            continue
        # Minimisation, the one step every source passes (adapters may have run it too; it
        # is idempotent): special-category keys never reach the store.
        s, dropped = minimise(s)
        state.minimised += dropped
        signal = to_signal(s, id=state.next_signal_id, key=key, fp=fp, received_at=now)
        state.next_signal_id += 1
        result = state.pipeline.ingest(signal)
        changes.signals.append(
            t.row(
                t.signals,
                id=signal.id,
                idempotency_key=key,
                content_digest=fp,
                source_kind=signal.source_kind.value,
                source_id=signal.source_id,
                type_code=signal.type_code,
                occurred_at=signal.occurred_at,
                received_at=now,
                location=repo.location_json(signal.location),
                summary=signal.summary,
                payload=signal.payload,
                condition=signal.condition,
                record_only=signal.record_only,
                incident_id=result.incident_id,
                silenced_by=result.silenced_by,
            )
        )
        state.number(result.events)
        changes.collect(result.incidents, result.units, result.events)
        changes.commanded.update(result.rewrite)
        receipt = Receipt(
            signal_id=signal.id,
            incident_id=result.incident_id,
            idempotency_key=key,
            received_at=now,
        )
        known[key] = (receipt, fp)
        receipts.append(receipt)
    return receipts


def apply_unit_report(
    state: State, report: c.UnitReport, now: datetime, changes: Changes
) -> dict[str, Any]:
    """Applies a unit's status or position report; returns the unit as it is after it."""
    result = unit_report(state.pipeline, report, now)
    state.number(result.events)
    changes.collect(result.incidents, result.units, result.events)
    changes.commanded.update(result.incidents)
    return repo.unit_dict(state.pipeline.units[report.unit_id])


def apply_command(
    conn: sa.Connection, state: State, cmd: c.Command, now: datetime, changes: Changes
) -> dict[str, Any]:
    """Applies an operator command; returns the incident as it is after it.

    Raises:
        NotFound: no such incident; InvalidTransition: it is final already; any other
        AlarmdeskError the state machine raises (version conflict, desk, unit).
    """
    try:
        result = state.pipeline.handle(cmd, now)
    except NotFound:
        # Not in memory: either it never existed, or it is final (closed, cancelled).
        status = conn.execute(
            sa.select(t.incidents.c.status).where(t.incidents.c.id == cmd.incident_id)
        ).scalar()
        if status is None:
            raise
        raise InvalidTransition(
            f"incident {cmd.incident_id} is {status}; nothing more can be done to it",
            field="status",
        ) from None
    state.number(result.events)
    changes.collect(result.incidents, result.units, result.events)
    changes.commanded.add(cmd.incident_id)
    return incident_dict(result.incidents[cmd.incident_id])
