"""``alarmdesk import calls`` and ``alarmdesk report kpi``: a centre's call history from its
old CAD, and its response-time KPIs (docs/analytics.md).

Exit codes as for every ``alarmdesk`` command: 0 ok, 1 failure at run time, 2 bad input (a
mapping or file that cannot be used, a bad date or ``--by``), 3 a name refused by purpose
screening.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated

import msgspec
import sqlalchemy as sa
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from alarmdesk.bootstrap import analytics_store, audit_chain
from alarmdesk.cli.common import cli_actor, database, err, exit_code, fail, out
from alarmdesk.cli.options import ConfigOpt, DbOpt
from alarmdesk.cli.output import spreadsheet_safe
from alarmdesk.clock import utcnow
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION
from alarmdesk.domain.history import load_mapping
from alarmdesk.domain.kpi import NFPA_1710
from alarmdesk.service import history, kpi_report

__all__ = ["import_app", "report_kpi"]

import_app = typer.Typer(
    help="Bring a centre's history from other systems (each import is audited).",
    no_args_is_help=True,
)

FORMATS = ("table", "json", "csv", "html")


@import_app.command("calls")
def import_calls(
    file: Annotated[Path, typer.Argument(help="The CAD export: CSV, or XLSX (.xlsx, .xlsm).")],
    mapping: Annotated[
        Path,
        typer.Option("--mapping", "-m", help="The export's mapping (TOML; docs/analytics.md)."),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            help="This history's name; with the call id it identifies a call "
            "(default: the mapping file's name without .toml)."
        ),
    ] = None,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Imports a CAD export's calls with their phase times, with a progress bar, then
    prints what was imported, what was already there, what was left out and why, and the
    file's data quality. Importing the same file again adds nothing. Exit 2 (nothing
    stored): a mapping that cannot be used, a file that cannot be read or is not CSV (or, named
    .xlsx, not a workbook), or lacks a column or sheet the mapping names; 3: a source name
    refused by purpose screening."""
    try:
        spec = load_mapping(mapping)
        name = history.check_source(source if source is not None else mapping.stem)
    except AlarmdeskError as exc:
        fail(f"{exc.message} ({exc.code})", exit_code(exc))
    with (
        database(config, database_url) as (cfg, engine),
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as bar,
    ):
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        try:
            summary = history.import_calls(
                engine,
                audit_chain(cfg),
                file,
                spec,
                source=name,
                actor=cli_actor(),
                policy=cfg.retention,
                now=utcnow(),
                progress=progress,
            )
        except AlarmdeskError as exc:
            bar.stop()
            fail(f"{file}: {exc.message} ({exc.code})", exit_code(exc))
        except sa.exc.SQLAlchemyError as exc:  # the chunks before it stay stored
            bar.stop()
            fail(f"the database failed; run the same import again to complete it: {exc}", 1)
    for line in summary.lines():
        out.print(line, highlight=False)


def report_kpi(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day, included, YYYY-MM-DD.")],
    by: Annotated[
        str,
        typer.Option(
            help="Group by, comma-separated: period, station_area, unit_kind, type, priority, "
            "hour, desk, h3."
        ),
    ] = "",
    resolution: Annotated[
        int, typer.Option(help="H3 resolution of the cells for --by h3: 5 (district) to 10.")
    ] = DEFAULT_RESOLUTION,
    source: Annotated[
        str | None, typer.Option(help="Only the calls of this import source.")
    ] = None,
    own: Annotated[
        bool,
        typer.Option(help="alarmdesk's own resolved and closed incidents, not imported calls."),
    ] = False,
    timezone: Annotated[
        str,
        typer.Option(help="IANA time zone of the days, periods and hours of day."),
    ] = "UTC",
    period: Annotated[
        str, typer.Option(help="Length of a period for --by period: day, week, month, year.")
    ] = "month",
    objectives: Annotated[
        Path | None,
        typer.Option(help="A centre's own compliance objectives (TOML); default NFPA 1710's."),
    ] = None,
    target: Annotated[
        float,
        typer.Option(min=1, help="Seconds an area's p90 from call to on scene should keep under."),
    ] = kpi_report.DEFAULT_TARGET,
    fmt: Annotated[str, typer.Option("--format", help="table, json, csv or html.")] = "table",
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Response-time KPIs of the imported calls (--own: of alarmdesk's own resolved and closed
    incidents) received from --from to --to: per interval
    and group, count, mean, p50, p90, p99 (nearest rank) and the calls left out; and NFPA
    1710 compliance per station area and year (table and json). The report is an audited
    read across incidents. Exit 2: a bad date, --by, --timezone, --period, --resolution or
    --format; 3: a
    source name refused by purpose screening."""
    if fmt not in FORMATS:
        fail(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    try:
        query = kpi_report.kpi_query(
            start,
            end,
            by=by,
            timezone=timezone,
            period=period,
            source=source,
            own=own,
            resolution=resolution,
        )
        own_objectives = kpi_report.load_objectives(objectives) if objectives else None
    except AlarmdeskError as exc:
        fail(f"{exc.message} ({exc.code})", exit_code(exc))
    with database(config, database_url) as (cfg, engine):
        try:
            goals, goals_name = own_objectives or (NFPA_1710, kpi_report.OBJECTIVES_NAME)
            report = kpi_report.kpi_report(
                engine,
                audit_chain(cfg),
                query,
                actor=cli_actor(),
                now=utcnow(),
                fmt=fmt,
                objectives=goals,
                objectives_name=goals_name,
                target_seconds=target,
                analytics=analytics_store(cfg, engine),
            )
        except AlarmdeskError as exc:
            fail(f"{exc.message} ({exc.code})", exit_code(exc))
        except sa.exc.SQLAlchemyError as exc:
            fail(f"cannot build the report: {exc}", 1)
    print_report(report, fmt)


def print_report(report: kpi_report.KpiReport, fmt: str) -> None:
    """A KPI report on standard output in one of :data:`FORMATS`."""
    if fmt == "json":
        typer.echo(msgspec.json.format(msgspec.json.encode(report), indent=2).decode())
    elif fmt == "csv":
        typer.echo(_csv(report), nl=False)
    elif fmt == "html":
        typer.echo(kpi_report.render_html(report))
    else:
        _tables(report)


def _csv(report: kpi_report.KpiReport) -> str:
    """One row per group and interval; compliance is in the table and json formats."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    figures = ["count", "mean_s", "p50_s", "p90_s", "p99_s", "missing", "negative", "zero"]
    w.writerow([*report.by, "interval", *figures])
    for g in report.groups:
        keys = ["" if v is None else spreadsheet_safe(v) for v in g.group.values()]
        for interval, f in g.intervals.items():
            seconds = ("" if x is None else repr(x) for x in (f.mean, f.p50, f.p90, f.p99))
            w.writerow([*keys, interval, f.count, *seconds, f.missing, f.negative, f.zero])
    return buf.getvalue()


def _tables(report: kpi_report.KpiReport) -> None:
    where = f" of source {report.source}" if report.source else ""
    out.print(
        f"{report.calls} calls{where} received {report.first_day} to {report.last_day} "
        f"({report.timezone}); seconds; percentiles: {report.percentiles}",
        highlight=False,
    )
    table = Table(*report.by, *kpi_report.KPI_HEAD)
    for cells in kpi_report.kpi_rows(report):
        table.add_row(*cells)
    out.print(table)
    over = f"over {report.target_interval} p90 {report.target_seconds:g} s: marked"
    load = Table(*kpi_report.WORKLOAD_HEAD, title=f"Workload per station area ({over})")
    for cells in kpi_report.workload_rows(report):
        load.add_row(*cells)
    out.print(load)
    comp = Table(*kpi_report.COMPLIANCE_HEAD, title=report.objectives)
    for cells in kpi_report.compliance_rows(report):
        comp.add_row(*cells)
    out.print(comp)
