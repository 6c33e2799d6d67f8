"""Silences: create and end them (actions with their audit entries), list them with what they
held back (the "silenced" view).

Created or ended through the writer (``Writer.run``), a silence takes effect for the next
signal: the writer reloads the silences it holds in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import AlarmdeskError, InvalidField
from alarmdesk.domain.geo import checked_area
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.silences import SilenceSpec, check_new_silence, compile_silence
from alarmdesk.safeguards.audit import Actor, AuditEvent
from alarmdesk.service.actions import Action
from alarmdesk.service.audit_policy import configure_entry
from alarmdesk.store import repository as repo
from alarmdesk.store import silences as store

__all__ = ["create", "end", "list_silences", "silenced_signals"]

_CATEGORIES = [h.value for h in HarmCategory]


def _check_types(conn: sa.Connection, codes: list[str]) -> None:
    """Refuses a type code not in the taxonomy in force (a silence for it would hold back
    nothing: a typo, not a rule), for the API and the command line alike.

    Raises:
        InvalidField: ``unknown_reference``, naming the codes.
    """
    if not codes:
        return
    taxonomy = repo.load_taxonomy(conn)
    unknown = sorted({c.upper() for c in codes if c.upper() not in taxonomy})
    if unknown:
        raise InvalidField(
            f"types: no incident type {', '.join(unknown)}",
            field="types",
            code="unknown_reference",
        )


def create(actor: Actor, spec: SilenceSpec) -> Action:
    """Creates a silence. The audit entry names the kinds of condition and the period, not
    the reason's text."""

    def run(conn: sa.Connection, now: datetime) -> int:
        compile_silence(0, spec, now, _CATEGORIES)  # refuses what cannot hold
        check_new_silence(spec, now)  # and what would hold back too much, or for too long
        _check_types(conn, spec.match.types)  # a type code, like a category, must exist
        if spec.match.area is not None:
            checked_area(spec.match.area, "area")  # and an area that would silence elsewhere
        # A silence is a rule about what not to see: its texts are screened like a type's.
        screen({"reason": spec.reason, "sites": spec.match.sites, "devices": spec.match.devices})
        starts = spec.starts_at or now
        body = msgspec.to_builtins(msgspec.structs.replace(spec, starts_at=starts))
        return store.insert(conn, body, actor.id, now, starts, spec.ends_at)

    def audit_of(result: int | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        m = spec.match
        detail = {
            "conditions": [k for k in msgspec.structs.asdict(m) if getattr(m, k)],
            "weekly": len(spec.weekly),
            "open_ended": spec.ends_at is None,
        }
        return [
            configure_entry(actor, "silence", str(result or ""), "silence.create", error, detail)
        ]

    return Action(run, audit_of, reload_silences=True)


def end(actor: Actor, silence_id: int) -> Action:
    """Ends a silence now (its signals stay stored, marked with it)."""

    def run(conn: sa.Connection, now: datetime) -> int:
        store.end(conn, silence_id, actor.id, now)
        return silence_id

    def audit_of(_: int | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        return [configure_entry(actor, "silence", str(silence_id), "silence.end", error)]

    return Action(run, audit_of, reload_silences=True)


def list_silences(
    engine: sa.Engine, now: datetime, *, ended: bool = False, silence_id: int | None = None
) -> list[dict[str, Any]]:
    """Silences in force or to come (or every one, with ``ended``), each with how many
    signals it held back."""
    with engine.connect() as conn:
        rows = store.list_silences(conn, now, ended=ended, silence_id=silence_id)
    return [_silence(r, now) for r in rows]


def _silence(r: dict[str, Any], now: datetime) -> dict[str, Any]:
    spec = r.pop("spec")
    state = (
        "ended"
        if r["ended_at"] is not None
        else "expired"
        if r["ends_at"] is not None and r["ends_at"] <= now
        else "pending"
        if r["starts_at"] > now
        else "active"
    )
    return {**spec, **r, "state": state}  # the columns (datetimes) over the spec's strings


def silenced_signals(
    engine: sa.Engine, silence_id: int, *, limit: int = 200
) -> list[dict[str, Any]]:
    """The signals a silence held back, newest first."""
    with engine.connect() as conn:
        return store.silenced_signals(conn, silence_id, limit=limit)
