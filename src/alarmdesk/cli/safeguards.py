"""``alarmdesk retention`` and ``alarmdesk report``: data expiry and public accountability.

Exit codes as for every ``alarmdesk`` command: 0 ok, 1 failure at run time, 2 bad input
(including a retention period over its ceiling: ``retention_ceiling``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer
from rich.table import Table
from rich.text import Text

from alarmdesk.bootstrap import analytics_store, audit_chain
from alarmdesk.cli.common import cli_actor, err, fail, load_config, open_database, out
from alarmdesk.cli.options import ConfigOpt, DbOpt
from alarmdesk.cli.output import output_file, write_output
from alarmdesk.clock import utcnow
from alarmdesk.config import Config
from alarmdesk.domain.errors import RetentionPolicyError
from alarmdesk.safeguards.retention_policy import RetentionConfig
from alarmdesk.safeguards.transparency import parse_period, render_html, render_json
from alarmdesk.service.reports import transparency_report
from alarmdesk.service.retention import run_retention

retention_app = typer.Typer(help="Data expiry: erase what the retention policy says has expired.")
report_app = typer.Typer(help="Reports for auditors, rights officers and the public.")


def _load(config: Path | None, database_url: str | None) -> tuple[Config, RetentionConfig]:

    cfg = load_config(config, database_url)
    try:
        cfg.retention.validate()  # checked at load too; a cheap second look
        return cfg, cfg.retention
    except RetentionPolicyError as exc:
        fail(f"{exc.message} ({exc.code})")


@retention_app.command("show")
def retention_show(config: ConfigOpt = None) -> None:
    """Prints the retention policy in force: days per data class and their ceilings."""
    _, policy = _load(config, None)
    described = policy.describe()
    table = Table("data class", "kept (days)", "ceiling (days)", "what")
    for name, x in described["classes"].items():
        table.add_row(name, str(x["days"]), str(x["ceiling_days"]), x["what"])
    out.print(table)
    overrides = policy.incidents_by_category
    if overrides:
        out.print(
            "incidents by category: " + ", ".join(f"{k} {v} days" for k, v in overrides.items())
        )
    out.print(f"scheduled in a running server every {policy.schedule_hours:g} h (0: never)")


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what has expired; erase and log nothing.")
    ] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Erases what has expired under the retention policy, a chunk of 500 rows a
    transaction, logging one `erase` audit entry per chunk (counts only, never what was
    erased)."""
    cfg, policy = _load(config, database_url)
    with open_database(cfg) as engine:
        try:
            run = run_retention(
                engine,
                policy,
                audit_chain(cfg),
                utcnow(),
                cli_actor(),
                dry_run=dry_run,
                analytics=analytics_store(cfg, engine),
            )
        except Exception as exc:  # a database failure: the chunks before stay erased, with entries
            fail(f"retention failed: {exc}", 1)
    table = Table("data class", "days", "expired before", "would erase" if dry_run else "erased")
    for name, count in run.counts.items():
        cls_days = policy.describe()["classes"][name]["days"]
        table.add_row(name, str(cls_days), run.cutoffs[name].isoformat(), str(count))
    out.print(table)
    if run.incidents_by_category:
        out.print(
            "incidents by category: "
            + ", ".join(f"{k} {v}" for k, v in run.incidents_by_category.items())
        )
    if run.history_calls:
        out.print(f"of the incidents: imported history calls {run.history_calls}")
    if run.analytics_calls:
        out.print(f"removed from the analytics store: {run.analytics_calls} calls")
    if run.incomplete:
        out.print(
            f"more expired rows remain in: {', '.join(sorted(run.incomplete))} "
            f"(at most {policy.max_rows_per_run} per class and run); run again"
        )
    if dry_run:
        out.print("dry run: nothing was erased")


@report_app.command("transparency")
def report_transparency(
    start: Annotated[
        str | None,
        typer.Option("--from", help="First day (YYYY-MM-DD, UTC) or an ISO time with offset."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last day, included (YYYY-MM-DD) or an ISO time (excluded)."),
    ] = None,
    period: Annotated[
        str | None, typer.Option("--period", help="Instead of --from/--to: 2026, 2026-03, 2026-Q1.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="json or html.")] = "json",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
    complaints: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Complaints received in the period (default: \\[report]).",
            show_default=False,
        ),
    ] = None,
    costs: Annotated[
        str | None,
        typer.Option(help="Cost statement (default: \\[report] costs).", show_default=False),
    ] = None,
    verify: Annotated[
        bool, typer.Option(help="Verify the audit log up to the closing checkpoint.")
    ] = True,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """The transparency report for a period (CCOPS items, with the closing audit checkpoint
    and the log's public key). Generating it is logged in the audit log."""
    if fmt not in ("json", "html"):
        fail(f"--format is json or html, not {fmt!r}")
    try:
        span = parse_period(period, start, end)
    except ValueError as exc:
        fail(str(exc))
    if out_file is not None:
        output_file(out_file)  # before generating the report is logged
    cfg, policy = _load(config, database_url)
    rcfg = cfg.report
    if complaints is not None:
        rcfg = msgspec.structs.replace(rcfg, complaints=complaints)
    if costs is not None:
        rcfg = msgspec.structs.replace(rcfg, costs=costs)
    with open_database(cfg) as engine:
        chain = audit_chain(cfg)
        now = utcnow()
        try:
            report = transparency_report(
                engine,
                chain,
                span,
                actor=cli_actor(),
                policy=policy,
                config=rcfg,
                now=now,
                fmt=fmt,
                verify=verify,
            )
        except Exception as exc:
            fail(f"cannot build the report: {exc}", 1)
    text = render_html(report) if fmt == "html" else render_json(report)
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        write_output(out_file, text)
        err.print(f"report written to {out_file}")
    finding = report["audit_log"]["finding"]["result"]
    if finding == "problems_found":
        err.print(
            Text.assemble(("the audit log did not verify", "bold red"), ": see audit_log.finding")
        )
        raise typer.Exit(1)
