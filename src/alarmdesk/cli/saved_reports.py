"""``alarmdesk report saved``: KPI reports kept by name, run again over their last days."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table
from rich.text import Text

from alarmdesk.bootstrap import analytics_store, audit_chain
from alarmdesk.cli.common import cli_actor, database, exit_code, fail, out, run
from alarmdesk.cli.history import FORMATS, print_report
from alarmdesk.cli.options import ConfigOpt, DbOpt
from alarmdesk.clock import utcnow
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION
from alarmdesk.service import saved_reports
from alarmdesk.service.kpi_report import DEFAULT_TARGET

saved_app = typer.Typer(
    help="Saved KPI reports: a report's options kept by name (purpose-screened), run again "
    "over their last days.",
    no_args_is_help=True,
)


@saved_app.command("save")
def saved_save(
    name: Annotated[str, typer.Argument(help="Its name: a-z, 0-9, '.', '_', '-' (screened).")],
    days: Annotated[int, typer.Option(help="The last days it covers, today included.")] = 30,
    by: Annotated[
        str, typer.Option(help="Group by, as for report kpi: station_area,priority…")
    ] = "",
    source: Annotated[
        str | None, typer.Option(help="An import's calls instead of the centre's own incidents.")
    ] = None,
    timezone: Annotated[str, typer.Option(help="IANA time zone of its days.")] = "UTC",
    period: Annotated[str, typer.Option(help="day, week, month or year for --by period.")] = (
        "month"
    ),
    resolution: Annotated[int, typer.Option(help="H3 resolution for --by h3 (5-10).")] = (
        DEFAULT_RESOLUTION
    ),
    target: Annotated[
        float, typer.Option(help="Seconds an area's p90 from call to on scene should keep under.")
    ] = DEFAULT_TARGET,
    description: Annotated[str, typer.Option(help="What it is for (screened).")] = "",
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Saves a report's options by name (replacing one of that name), audited. Exit 2: a bad
    name or option; 3: a name, description or source refused by purpose screening."""
    spec = saved_reports.SavedReportSpec(
        description=description,
        days=days,
        by=[b.strip() for b in by.split(",") if b.strip()],
        timezone=timezone,
        period=period,
        own=source is None,
        source=source,
        resolution=resolution,
        target_seconds=target,
    )
    with database(config, database_url) as (cfg, engine):
        created = run(cfg, engine, saved_reports.save(cli_actor(), name, spec))
    out.print(f"saved report {name} {'saved' if created else 'replaced'}", highlight=False)


@saved_app.command("list")
def saved_list(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """The saved reports, with what each asks."""
    with database(config, database_url) as (_, engine):
        found = saved_reports.list_saved(engine)
    table = Table("name", "days", "by", "of", "saved by", "saved at", "description")
    for r in found:
        s = r.spec
        table.add_row(
            *(
                Text(c)
                for c in (
                    r.name,
                    str(s.days),
                    ",".join(s.by) or "-",
                    f"source {s.source}" if s.source else "own incidents",
                    r.saved_by,
                    r.saved_at.isoformat(timespec="seconds"),
                    s.description,
                )
            )
        )
    out.print(table)


@saved_app.command("remove")
def saved_remove(
    name: Annotated[str, typer.Argument(help="The saved report's name.")],
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Removes a saved report (audited). Exit 2: there is none of that name."""
    with database(config, database_url) as (cfg, engine):
        run(cfg, engine, saved_reports.remove(cli_actor(), name))
    out.print(f"saved report {name} removed", highlight=False)


@saved_app.command("run")
def saved_run(
    name: Annotated[str, typer.Argument(help="The saved report's name.")],
    fmt: Annotated[str, typer.Option("--format", help="table, json, csv or html.")] = "table",
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """The saved report over its last days, as report kpi prints it (an audited read naming
    it). Exit 2: no such report, or a bad --format."""
    if fmt not in FORMATS:
        fail(f"--format is one of {', '.join(FORMATS)}, not {fmt!r}")
    with database(config, database_url) as (cfg, engine):
        try:
            report = saved_reports.run_saved(
                engine,
                audit_chain(cfg),
                name,
                actor=cli_actor(),
                now=utcnow(),
                fmt=fmt,
                analytics=analytics_store(cfg, engine),
            )
        except AlarmdeskError as exc:
            fail(f"{exc.message} ({exc.code})", exit_code(exc))
        except sa.exc.SQLAlchemyError as exc:
            fail(f"cannot build the report: {exc}", 1)
    print_report(report, fmt)


__all__ = ["saved_app"]
