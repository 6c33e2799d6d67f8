"""Saved KPI reports: a supervisor's report query kept by name, run again over the last
``days`` days whenever it is asked for (docs/analytics.md, "Saved reports").

A saved report is a rule about what to look at, so it is screened as an incident type is:
its name and description may not target people exercising rights (``domain/purpose/``),
its import source is screened as the report's ``--source`` is, and every other field is one
of a fixed set of names (dimensions, periods, time zones). Saving and removing are
``configure`` audit entries; running one is the report's own ``combine`` entry, naming it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, Final

import msgspec
import sqlalchemy as sa

from alarmdesk.analytics.parts import PartStore
from alarmdesk.domain.errors import AlarmdeskError, InvalidField, NotFound
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.signal import check_text
from alarmdesk.safeguards.audit import Actor, AuditEvent
from alarmdesk.service.actions import Action
from alarmdesk.service.audit_policy import configure_entry
from alarmdesk.service.kpi_report import (
    DEFAULT_TARGET,
    KpiQuery,
    KpiReport,
    cli_flag,
    kpi_query,
    kpi_report,
)
from alarmdesk.store import saved_reports as store
from alarmdesk.store.audit import AuditChain

__all__ = [
    "MAX_DAYS",
    "SavedReport",
    "SavedReportSpec",
    "check_name",
    "get_saved",
    "list_saved",
    "query_of",
    "remove",
    "run_saved",
    "save",
]

NAME: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # a name that is its own URL path
MAX_DAYS: Final = 3660  # ten years
MAX_DESCRIPTION: Final = 500


class SavedReportSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a saved report asks: the KPI report's options, over the last ``days`` days (today
    included, in ``timezone``)."""

    description: str = ""
    days: int = 30
    by: list[str] = msgspec.field(default_factory=list)
    timezone: str = "UTC"
    period: str = "month"
    own: bool = True  # alarmdesk's own incidents; False with ``source``: an import
    source: str | None = None
    resolution: int = DEFAULT_RESOLUTION
    target_seconds: float = DEFAULT_TARGET


class SavedReport(msgspec.Struct, frozen=True, kw_only=True):
    """A saved report as stored: its name, what it asks, who saved it and when."""

    name: str
    spec: SavedReportSpec
    saved_by: str
    saved_at: datetime


def check_name(name: str) -> str:
    """A saved report's name: 1–64 of a–z, 0–9, '.', '_', '-', starting with a letter or
    digit (it is a path of the API), purpose-screened.

    Raises:
        InvalidField: not such a name (``invalid_value``).
        ProtectedPurposeError: it targets people exercising rights.
    """
    if not NAME.fullmatch(name):
        raise InvalidField(
            f"a saved report's name is 1 to 64 of a-z, 0-9, '.', '_' and '-', not {name[:80]!r}",
            field="name",
            code="invalid_value",
        )
    screen({"name": name.replace("-", " ").replace("_", " ").replace(".", " ")})
    return name


def query_of(
    spec: SavedReportSpec, now: datetime, *, option_name: Callable[[str], str] = cli_flag
) -> KpiQuery:
    """The report query a saved report asks at ``now``: its last ``days`` days, today
    included, in its time zone. A refused option is named as ``option_name`` spells it
    (``kpi_report.kpi_query``): the command line's flag, or the API's field.

    Raises:
        InvalidField: a field out of its range or not one of its names.
        ProtectedPurposeError: its source or description targets people exercising rights.
    """
    if not 1 <= spec.days <= MAX_DAYS:
        raise InvalidField(
            f"days is 1 to {MAX_DAYS}, not {spec.days}", field="days", code="invalid_value"
        )
    if not 0 < spec.target_seconds <= 86400:
        raise InvalidField(
            "target_seconds is over 0 and at most 86400",
            field="target_seconds",
            code="invalid_value",
        )
    description = spec.description.strip()
    if len(description) > MAX_DESCRIPTION:
        raise InvalidField(
            f"the description is at most {MAX_DESCRIPTION} characters",
            field="description",
            code="invalid_value",
        )
    check_text(description, "description", multiline=True)
    screen({"description": description})
    if spec.own and spec.source is not None:
        raise InvalidField(
            "a saved report is of the centre's own incidents (own) or of an import (source): "
            "one or the other",
            field="source",
            code="invalid_value",
        )
    probe = kpi_query(  # the zone, checked
        "2000-01-01", "2000-01-01", timezone=spec.timezone, option_name=option_name
    )
    today: date = now.astimezone(probe.tz).date()
    first = today - timedelta(days=spec.days - 1)
    return kpi_query(
        first.isoformat(),
        today.isoformat(),
        by=",".join(spec.by),
        timezone=spec.timezone,
        period=spec.period,
        source=spec.source,
        own=spec.own,
        resolution=spec.resolution,
        option_name=option_name,
    )


def _shown(name: str) -> str:
    """The name as the audit log may record it: not when it is itself refused."""
    try:
        return check_name(name)
    except AlarmdeskError:
        return ""


def save(
    actor: Actor,
    name: str,
    spec: SavedReportSpec,
    *,
    option_name: Callable[[str], str] = cli_flag,
) -> Action:
    """Saves (or replaces) a report by name, once every field is checked and screened (a
    refused option named as ``option_name`` spells it). Its audit entry names the grouping and
    span, never the description's text."""

    def run(conn: sa.Connection, now: datetime) -> bool:
        check_name(name)
        query_of(spec, now, option_name=option_name)  # refuses what could not run
        body = msgspec.to_builtins(
            msgspec.structs.replace(spec, description=spec.description.strip())
        )
        return store.upsert(conn, name, body, actor.id, now)

    def audit_of(_: bool | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        detail = {"by": list(spec.by), "days": spec.days, "own": spec.own}
        return [configure_entry(actor, "saved_report", _shown(name), "report.save", error, detail)]

    return Action(run, audit_of)


def _named(name: str) -> str:
    """A name looked up: one that could never be saved is no report (and never reaches SQL)."""
    if not NAME.fullmatch(name):
        raise NotFound(f"no saved report {name[:80]!r}", field="name")
    return name


def remove(actor: Actor, name: str) -> Action:
    """Removes a saved report."""

    def run(conn: sa.Connection, now: datetime) -> str:
        store.delete(conn, _named(name))
        return name

    def audit_of(_: str | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        return [configure_entry(actor, "saved_report", _shown(name), "report.remove", error)]

    return Action(run, audit_of)


def _saved(row: dict[str, Any]) -> SavedReport:
    return SavedReport(
        name=row["name"],
        spec=msgspec.convert(row["spec"], SavedReportSpec),
        saved_by=row["saved_by"],
        saved_at=row["saved_at"],
    )


def list_saved(engine: sa.Engine) -> list[SavedReport]:
    """Every saved report, by name."""
    with engine.connect() as conn:
        return [_saved(r) for r in store.list_saved(conn)]


def get_saved(engine: sa.Engine, name: str) -> SavedReport:
    """One saved report.

    Raises:
        NotFound: there is none of that name.
    """
    with engine.connect() as conn:
        return _saved(store.get(conn, _named(name)))


def run_saved(
    engine: sa.Engine,
    chain: AuditChain,
    name: str,
    *,
    actor: Actor,
    now: datetime,
    fmt: str,
    analytics: PartStore,
    option_name: Callable[[str], str] = cli_flag,
) -> KpiReport:
    """The saved report over its last days at ``now`` (an audited read, naming it); an
    option that no longer holds is named as ``option_name`` spells it.

    Raises:
        NotFound: there is none of that name.
    """
    saved = get_saved(engine, name)
    return kpi_report(
        engine,
        chain,
        query_of(saved.spec, now, option_name=option_name),
        actor=actor,
        now=now,
        fmt=fmt,
        target_seconds=saved.spec.target_seconds,
        saved=saved.name,
        analytics=analytics,
    )
