"""The response-time KPI report: its query as written (``--by station_area,priority``), the
figures over imported calls or alarmdesk's own incidents (computed with DuckDB over the
analytics store, ``analytics/queries.py``, by ``domain/kpi.py``'s definitions),
and their layouts for the terminal and a printable page (docs/analytics.md).

Reading a report is a ``combine`` audit entry, committed before any figure is computed.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import sqlalchemy as sa

from alarmdesk.analytics.parts import PartStore
from alarmdesk.analytics.queries import Selection
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION, check_resolution
from alarmdesk.domain.history import Interval
from alarmdesk.domain.history.mapping import EARLIEST_DAY, LATEST_DAY
from alarmdesk.domain.kpi import (
    NFPA_1710,
    Dimension,
    GroupKey,
    Objective,
    Period,
    Stats,
    over_target,
    parse_objectives,
)
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.service.actions import in_transaction
from alarmdesk.service.analytics import export, open_analytics
from alarmdesk.service.history import AUDIT_OBJECT, check_source
from alarmdesk.store import history as store
from alarmdesk.store.audit import AuditChain

__all__ = [
    "COMPLIANCE_HEAD",
    "DEFAULT_TARGET",
    "KPI_HEAD",
    "OBJECTIVES_NAME",
    "WORKLOAD_HEAD",
    "ComplianceFigures",
    "IntervalFigures",
    "KpiGroup",
    "KpiQuery",
    "KpiReport",
    "OverTarget",
    "WorkloadFigures",
    "api_parameter",
    "cli_flag",
    "compliance_rows",
    "kpi_query",
    "kpi_report",
    "kpi_rows",
    "load_objectives",
    "render_html",
    "workload_rows",
]

PERCENTILES: Final = (
    "nearest rank: the p-th percentile of n values is the value at rank ceil(p*n/100) of the "
    "values sorted ascending"
)


OBJECTIVES_NAME: Final = "NFPA 1710 (2020)"
# An area's p90 from call to first unit on scene should stay under 8 minutes by default.
DEFAULT_TARGET: Final = 480.0
TARGET_INTERVAL: Final = Interval.CALL_TO_ON_SCENE

# The days a report may cover: wide enough for any history, narrow enough that a day and its
# time zone never fall off the calendar's ends (date.max + 1 day is an error, not a report).
EARLIEST: Final = EARLIEST_DAY  # the days a call's times may fall on (domain.history)
LATEST: Final = LATEST_DAY


def cli_flag(option: str) -> str:
    """An option as the command line spells it in a message: ``--from``."""
    return f"--{option}"


def api_parameter(option: str) -> str:
    """An option as the HTTP API spells it in a message: its query or body parameter,
    ``from``."""
    return option


@dataclass(frozen=True, slots=True)
class KpiQuery:
    """Which calls a KPI report covers and how it groups them."""

    first_day: date
    last_day: date  # included
    tz: ZoneInfo
    by: tuple[Dimension, ...] = ()
    period: Period = Period.MONTH
    source: str | None = None
    own: bool = False  # alarmdesk's own finished incidents instead of imported calls
    resolution: int = DEFAULT_RESOLUTION  # of the H3 cells, when grouping by cell

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), self.tz)

    @property
    def end(self) -> datetime:
        """The first instant after the last day (excluded)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), self.tz)


def kpi_query(
    first_day: str,
    last_day: str,
    *,
    by: str = "",
    timezone: str = "UTC",
    period: str = Period.MONTH.value,
    source: str | None = None,
    own: bool = False,
    resolution: int | str = DEFAULT_RESOLUTION,
    option_name: Callable[[str], str] = cli_flag,
) -> KpiQuery:
    """A report's query from its options as written (``--by station_area,priority``).
    An error's message names the option as ``option_name`` spells it: the command line's flag
    (:func:`cli_flag`, the default) or the API's parameter (:func:`api_parameter`); its
    ``field`` is always the parameter.

    Raises:
        InvalidField: a date that is not YYYY-MM-DD or a last day before the first
            (``invalid_date``), a ``by`` name that is not a dimension or appears twice, an
            unknown time zone or period, an H3 resolution outside 5 … 10
            (``invalid_value``).
        ProtectedPurposeError: a source name that targets people exercising rights.
    """
    days = []
    for key, value in (("from", first_day), ("to", last_day)):
        try:
            days.append(date.fromisoformat(value.strip()))
        except ValueError:
            raise InvalidField(
                f"{option_name(key)} {value!r}: a day is written YYYY-MM-DD",
                field=key,
                code="invalid_date",
            ) from None
    if days[1] < days[0]:
        raise InvalidField(
            f"{option_name('to')} {days[1]} is before {option_name('from')} {days[0]}",
            field="to",
            code="invalid_date",
        )
    for key, day in zip(("from", "to"), days, strict=True):
        if not EARLIEST <= day <= LATEST:
            raise InvalidField(
                f"{option_name(key)} {day}: a day from {EARLIEST} to {LATEST}",
                field=key,
                code="invalid_date",
            )
    dims: list[Dimension] = []
    for raw in (x.strip() for x in by.split(",")):
        if not raw:
            continue
        try:
            dim = Dimension(raw)
        except ValueError:
            allowed = ", ".join(d.value for d in Dimension)
            raise InvalidField(
                f"{option_name('by')} {raw!r}: one of {allowed}", field="by", code="invalid_value"
            ) from None
        if dim in dims:
            raise InvalidField(
                f"{option_name('by')} names {raw} twice", field="by", code="invalid_value"
            )
        dims.append(dim)
    try:
        tz = ZoneInfo(timezone.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidField(
            f"{option_name('timezone')} {timezone!r}: not an IANA time zone "
            "(such as Europe/Amsterdam)",
            field="timezone",
            code="invalid_value",
        ) from None
    try:
        length = Period(period.strip())
    except ValueError:
        allowed = ", ".join(p.value for p in Period)
        raise InvalidField(
            f"{option_name('period')} {period!r}: one of {allowed}",
            field="period",
            code="invalid_value",
        ) from None
    if own and source is not None:
        raise InvalidField(
            f"{option_name('own')} reports alarmdesk's own incidents; "
            f"{option_name('source')} names an import: one or the other",
            field="source",
            code="invalid_value",
        )
    name = check_source(source) if source is not None else None
    cells = check_resolution(resolution)
    return KpiQuery(days[0], days[1], tz, tuple(dims), length, name, own, cells)


class IntervalFigures(msgspec.Struct, frozen=True):
    """One interval in one group, in seconds; the figures are null when no call had it."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    missing: int  # calls left out: a phase without a time
    negative: int  # calls left out: the phases out of order
    zero: int  # calls left out: both phases at the same second

    @classmethod
    def of(cls, s: Stats) -> IntervalFigures:
        return cls(s.count, s.mean, s.p50, s.p90, s.p99, s.missing, s.negative, s.zero)


class KpiGroup(msgspec.Struct, frozen=True):
    """One group: its value of each dimension grouped by, and each interval's figures."""

    group: dict[str, str | int | None]
    intervals: dict[str, IntervalFigures]


class ComplianceFigures(msgspec.Struct, frozen=True):
    """One objective in one station area and year: met or not, with the fraction achieved
    (null, and met null, when no call had the interval)."""

    objective: str
    interval: str
    limit_seconds: float
    fraction: float
    station_area: str | None
    year: str
    count: int
    within: int
    achieved: float | None
    met: bool | None
    left_out: int
    reference: str


class WorkloadFigures(msgspec.Struct, frozen=True):
    """One station area's demand against capacity over the report's days (domain/kpi.Workload):
    capacity is the units on the area's roster in the centre's set-up (its station's units),
    or, for an area the set-up does not know, the distinct units that answered its calls."""

    station_area: str | None
    calls: int
    calls_per_hour: float
    responses: int
    units: int
    responses_per_unit_hour: float | None  # incidents per unit-hour
    busy_hours: float
    utilisation: float | None  # busy unit-hours over available unit-hours
    untimed: int  # unit responses without dispatched and cleared times
    capacity: str = "answered"  # "roster": units is the set-up's; "answered": those that came


class OverTarget(msgspec.Struct, frozen=True):
    """A station area whose p90 of the target interval exceeds the target."""

    station_area: str | None
    p90: float


class KpiReport(msgspec.Struct, frozen=True):
    """``alarmdesk report kpi``: the KPIs of the imported calls (with ``own``: of alarmdesk's
    own finished incidents) received in the days from
    ``first_day`` to ``last_day`` (both included, in ``timezone``), and NFPA 1710 compliance
    per station area and year."""

    first_day: str = msgspec.field(name="from")
    last_day: str = msgspec.field(name="to")
    timezone: str = "UTC"
    period: str = Period.MONTH.value
    by: list[str] = msgspec.field(default_factory=list)
    source: str | None = None
    own: bool = False  # alarmdesk's own finished incidents, not imported calls
    saved: str | None = None  # the saved report this is, if it is one
    resolution: int = DEFAULT_RESOLUTION  # of the H3 cells when grouped by h3
    objectives: str = "NFPA 1710 (2020)"  # whose compliance objectives (a centre's own file)
    target_interval: str = "call_to_on_scene"
    target_seconds: float = DEFAULT_TARGET  # the p90 an area should keep under
    calls: int = 0
    percentiles: str = PERCENTILES
    groups: list[KpiGroup] = msgspec.field(default_factory=list)
    compliance: list[ComplianceFigures] = msgspec.field(default_factory=list)
    workload: list[WorkloadFigures] = msgspec.field(default_factory=list)
    over_target: list[OverTarget] = msgspec.field(default_factory=list)


def _groups(
    by: Sequence[Dimension], table: dict[GroupKey, dict[Interval, Stats]]
) -> list[KpiGroup]:
    return [
        KpiGroup(
            group={d.value: v for d, v in zip(by, key, strict=True)},
            intervals={i.value: IntervalFigures.of(s) for i, s in stats.items()},
        )
        for key, stats in table.items()
    ]


def kpi_report(
    engine: sa.Engine,
    chain: AuditChain,
    query: KpiQuery,
    *,
    actor: Actor,
    now: datetime,
    fmt: str,
    objectives: Sequence[Objective] = NFPA_1710,
    objectives_name: str = OBJECTIVES_NAME,
    target_seconds: float = DEFAULT_TARGET,
    saved: str | None = None,
    analytics: PartStore,
) -> KpiReport:
    """The report over the stored calls ``query`` selects. The ``combine`` audit entry (the
    days, grouping and source, and the saved report's name when it is one; never a figure) is
    committed first; then what finished since the last export is exported to the analytics
    store (so a report is never stale), and the figures are computed there with DuckDB
    (docs/analytics.md)."""
    entry = AuditEvent(
        actor,
        Operation.COMBINE,
        AUDIT_OBJECT,
        f"{query.first_day.isoformat()}/{query.last_day.isoformat()}",
        rule="report.kpi",
        detail={
            "by": [d.value for d in query.by],
            "source": query.source,
            "own": query.own,
            "timezone": query.tz.key,
            "format": fmt,
            **({"resolution": query.resolution} if Dimension.H3 in query.by else {}),
            **({"saved": saved} if saved is not None else {}),
        },
    )

    def log(conn: sa.Connection) -> None:
        chain.append(conn, [entry], now)

    in_transaction(engine, chain, log, "kpi report")
    export(engine, analytics, chain, now=now)  # what finished since the last export
    which = Selection(query.start, query.end, own=query.own, source=query.source)
    hours = (query.end - query.start).total_seconds() / 3600
    with engine.connect() as conn:
        units_on_roster = store.roster(conn)
    with open_analytics(analytics) as figures:
        calls = figures.count(which)
        table = figures.kpis(
            which, query.by, period=query.period, tz=query.tz, resolution=query.resolution
        )
        results = figures.compliance(which, objectives, tz=query.tz)
        load = figures.workload(which, hours, units_on_roster)
        by_area = figures.kpis(which, (Dimension.STATION_AREA,), intervals=(TARGET_INTERVAL,))
    worst = over_target(by_area, TARGET_INTERVAL, target_seconds)
    return KpiReport(
        first_day=query.first_day.isoformat(),
        last_day=query.last_day.isoformat(),
        timezone=query.tz.key,
        period=query.period.value,
        by=[d.value for d in query.by],
        source=query.source,
        own=query.own,
        saved=saved,
        resolution=query.resolution,
        objectives=objectives_name,
        target_interval=TARGET_INTERVAL.value,
        target_seconds=target_seconds,
        workload=[
            WorkloadFigures(
                station_area=w.station_area,
                calls=w.calls,
                calls_per_hour=w.calls_per_hour,
                responses=w.responses,
                units=w.units,
                responses_per_unit_hour=w.responses_per_unit_hour,
                busy_hours=w.busy_hours,
                utilisation=w.utilisation,
                untimed=w.untimed,
                capacity=w.capacity,
            )
            for w in load
        ],
        over_target=[
            OverTarget(station_area=None if k[0] is None else str(k[0]), p90=p90)
            for k, p90 in worst
        ],
        calls=calls,
        groups=_groups(query.by, table),
        compliance=[
            ComplianceFigures(
                objective=c.objective.name,
                interval=c.objective.interval.value,
                limit_seconds=c.objective.limit_seconds,
                fraction=c.objective.fraction,
                station_area=None if c.group[0] is None else str(c.group[0]),
                year=str(c.group[1]),
                count=c.count,
                within=c.within,
                achieved=c.achieved,
                met=c.met,
                left_out=c.left_out,
                reference=c.objective.reference,
            )
            for c in results
        ],
    )


KPI_HEAD: Final = ("interval", "n", "mean", "p50", "p90", "p99", "left out m/n/z")
COMPLIANCE_HEAD: Final = (
    "station area", "year", "objective", "limit", "target", "achieved", "met", "n",
)  # fmt: skip


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}" if value % 1 else f"{value:.0f}"


def kpi_rows(report: KpiReport) -> list[list[str]]:
    """The KPI table as text cells, one row per group and interval (after the ``by`` columns,
    :data:`KPI_HEAD`): the one layout of the table and HTML forms."""
    rows = []
    for g in report.groups:
        keys = ["-" if v is None else str(v) for v in g.group.values()]
        for interval, f in g.intervals.items():
            rows.append(
                [
                    *keys,
                    interval,
                    str(f.count),
                    *(_seconds(x) for x in (f.mean, f.p50, f.p90, f.p99)),
                    f"{f.missing}/{f.negative}/{f.zero}",
                ]
            )
    return rows


def compliance_rows(report: KpiReport) -> list[list[str]]:
    """The compliance table as text cells (:data:`COMPLIANCE_HEAD`)."""
    return [
        [
            c.station_area or "-",
            c.year,
            c.objective,
            f"{c.limit_seconds:g} s",
            f"{c.fraction:.0%}",
            "" if c.achieved is None else f"{c.achieved:.1%}",
            "no data" if c.met is None else "met" if c.met else "not met",
            str(c.count),
        ]
        for c in report.compliance
    ]


WORKLOAD_HEAD: Final = (
    "station area", "calls", "calls/h", "unit responses", "units", "responses/unit-h",
    "busy unit-h", "utilisation", "untimed",
)  # fmt: skip


def workload_rows(report: KpiReport) -> list[list[str]]:
    """Demand against capacity per station area as text cells (:data:`WORKLOAD_HEAD`), an
    area over the target marked with its p90."""

    def share(value: float | None) -> str:
        return "" if value is None else f"{value:.1%}"

    def rate(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    over = {o.station_area: o.p90 for o in report.over_target}
    return [
        [
            (w.station_area or "-")
            + (f" (p90 {_seconds(over[w.station_area])} s)" if w.station_area in over else ""),
            str(w.calls),
            f"{w.calls_per_hour:.2f}",
            str(w.responses),
            f"{w.units} ({w.capacity})",
            rate(w.responses_per_unit_hour),
            f"{w.busy_hours:.1f}",
            share(w.utilisation),
            str(w.untimed),
        ]
        for w in report.workload
    ]


def render_html(report: KpiReport) -> str:
    """The report as a plain, printable HTML page; every value escaped."""
    e = html.escape

    def tr(cells: Sequence[str], tag: str = "td") -> str:
        return "<tr>" + "".join(f"<{tag}>{e(c)}</{tag}>" for c in cells) + "</tr>"

    what = (
        "alarmdesk's own incidents"
        if report.own
        else (f"calls of source {report.source}" if report.source else "imported calls")
    )
    rows = [tr(r) for r in kpi_rows(report)]
    comp = [tr(r) for r in compliance_rows(report)]
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>Response-time KPIs {e(report.first_day)} to {e(report.last_day)}</title>",
            "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse;"
            "margin:1em 0}td,th{border:1px solid #999;padding:2px 6px;text-align:right}"
            "th{background:#eee}</style></head><body>",
            f"<h1>Response-time KPIs: {e(report.first_day)} to {e(report.last_day)}</h1>",
            f"<p>{report.calls} {e(what)}, days in {e(report.timezone)}; seconds; "
            f"percentiles: {e(report.percentiles)}.</p>",
            "<table>" + tr([*report.by, *KPI_HEAD], "th"),
            *rows,
            "</table>",
            f"<h2>Workload per station area (over {e(report.target_interval)} p90 "
            f"{report.target_seconds:g} s: marked)</h2>",
            "<table>" + tr(WORKLOAD_HEAD, "th"),
            *(tr(r) for r in workload_rows(report)),
            "</table>",
            f"<h2>Compliance: {e(report.objectives)}</h2>",
            "<table>" + tr(COMPLIANCE_HEAD, "th"),
            *comp,
            "</table></body></html>",
        ]
    )


def load_objectives(path: Path) -> tuple[tuple[Objective, ...], str]:
    """A centre's own compliance objectives from a TOML file, and the name the report gives
    them (the file's name).

    Raises:
        InvalidField: the file cannot be read, or is not objectives (``invalid_objectives``).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidField(
            f"{path}: cannot read it ({exc})", field="objectives", code="invalid_objectives"
        ) from None
    return parse_objectives(text, source=str(path)), path.name
