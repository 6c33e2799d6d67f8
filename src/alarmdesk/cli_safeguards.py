"""``alarmdesk retention`` and ``alarmdesk report``: data expiry and public accountability.

Exit codes as for every ``alarmdesk`` command: 0 ok, 1 failure at run time, 2 bad input
(including a retention period over its ceiling: ``retention_ceiling``).

This module does not import ``alarmdesk.cli`` at import time (``cli`` registers it with
:func:`register`); the shared helpers are imported when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from alarmdesk.cli_options import ConfigOpt, DbOpt

if TYPE_CHECKING:
    from alarmdesk.config import Config
    from alarmdesk.safeguards.retention_policy import RetentionConfig

retention_app = typer.Typer(help="Data expiry: erase what the retention policy says has expired.")
report_app = typer.Typer(help="Reports for auditors, rights officers and the public.")


def register(app: typer.Typer) -> None:
    """Adds ``retention`` and ``report`` to the ``alarmdesk`` command."""
    app.add_typer(retention_app, name="retention")
    app.add_typer(report_app, name="report")


def _load(config: Path | None, database_url: str | None) -> tuple[Config, RetentionConfig]:
    from alarmdesk import cli
    from alarmdesk.domain.errors import RetentionPolicyError

    cfg = cli._config(config, database_url)
    try:
        cfg.retention.validate()  # checked at load too; a cheap second look
        return cfg, cfg.retention
    except RetentionPolicyError as exc:
        cli.fail(f"{exc.message} ({exc.code})")


@retention_app.command("show")
def retention_show(config: ConfigOpt = None) -> None:
    """Prints the retention policy in force: days per data class and their ceilings."""
    from rich.table import Table

    from alarmdesk import cli

    _, policy = _load(config, None)
    described = policy.describe()
    table = Table("data class", "kept (days)", "ceiling (days)", "what")
    for name, x in described["classes"].items():
        table.add_row(name, str(x["days"]), str(x["ceiling_days"]), x["what"])
    cli.out.print(table)
    overrides = policy.incidents_by_category
    if overrides:
        cli.out.print(
            "incidents by category: " + ", ".join(f"{k} {v} days" for k, v in overrides.items())
        )
    cli.out.print(f"scheduled in a running server every {policy.schedule_hours:g} h (0: never)")


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what has expired; erase and log nothing.")
    ] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Erases what has expired under the retention policy, logging one `erase` audit entry
    per data class (counts only, never what was erased)."""
    from rich.table import Table

    from alarmdesk import cli
    from alarmdesk.bootstrap import audit_chain
    from alarmdesk.clock import utcnow
    from alarmdesk.store.database import make_engine
    from alarmdesk.store.retention import run_retention

    cfg, policy = _load(config, database_url)
    engine = make_engine(cfg.database.url)
    try:
        run = run_retention(
            engine, policy, audit_chain(cfg), utcnow(), cli.cli_actor(), dry_run=dry_run
        )
    except Exception as exc:  # a database failure: nothing of the failed class was erased
        cli.fail(f"retention failed: {exc}", 1)
    finally:
        engine.dispose()
    table = Table("data class", "days", "expired before", "would erase" if dry_run else "erased")
    for name, count in run.counts.items():
        cls_days = policy.describe()["classes"][name]["days"]
        table.add_row(name, str(cls_days), run.cutoffs[name].isoformat(), str(count))
    cli.out.print(table)
    if run.incidents_by_category:
        cli.out.print(
            "incidents by category: "
            + ", ".join(f"{k} {v}" for k, v in run.incidents_by_category.items())
        )
    if run.incomplete:
        cli.out.print(
            f"more expired rows remain in: {', '.join(sorted(run.incomplete))} "
            f"(at most {policy.max_rows_per_run} per class and run); run again"
        )
    if dry_run:
        cli.out.print("dry run: nothing was erased")


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
            min=0, help="Complaints received in the period (default: [report]).", show_default=False
        ),
    ] = None,
    costs: Annotated[
        str | None,
        typer.Option(help="Cost statement (default: [report] costs).", show_default=False),
    ] = None,
    verify: Annotated[
        bool, typer.Option(help="Verify the audit log up to the closing checkpoint.")
    ] = True,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """The transparency report for a period (CCOPS items, with the closing audit checkpoint
    and the log's public key). Generating it is logged in the audit log."""
    import msgspec

    from alarmdesk import cli
    from alarmdesk.bootstrap import audit_chain
    from alarmdesk.clock import utcnow
    from alarmdesk.safeguards.audit import AuditEvent, Operation
    from alarmdesk.safeguards.transparency import (
        build_report,
        parse_period,
        render_html,
        render_json,
    )
    from alarmdesk.store.database import make_engine
    from alarmdesk.store.retention import lock_audit

    if fmt not in ("json", "html"):
        cli.fail(f"--format is json or html, not {fmt!r}")
    try:
        span = parse_period(period, start, end)
    except ValueError as exc:
        cli.fail(str(exc))
    cfg, policy = _load(config, database_url)
    rcfg = cfg.report
    if complaints is not None:
        rcfg = msgspec.structs.replace(rcfg, complaints=complaints)
    if costs is not None:
        rcfg = msgspec.structs.replace(rcfg, costs=costs)
    engine = make_engine(cfg.database.url)
    chain = audit_chain(cfg)
    now = utcnow()
    try:
        with engine.begin() as conn:
            report = build_report(
                conn, span, chain=chain, policy=policy, now=now, config=rcfg, verify=verify
            )
            lock_audit(conn)
            chain.append(
                conn,
                [
                    AuditEvent(
                        cli.cli_actor(),
                        Operation.COMBINE,
                        "transparency_report",
                        f"{span.start.isoformat()}/{span.end.isoformat()}",
                        detail={"format": fmt},
                    )
                ],
                now,
            )
    except Exception as exc:
        cli.fail(f"cannot build the report: {exc}", 1)
    finally:
        engine.dispose()
    text = render_html(report) if fmt == "html" else render_json(report)
    if out_file is None:
        typer.echo(text, nl=False)
    else:
        out_file.write_text(text, encoding="utf-8")
        cli.err.print(f"report written to {out_file}")
    finding = report["audit_log"]["finding"]["result"]
    if finding == "problems_found":
        cli.err.print("[bold red]the audit log did not verify[/]: see audit_log.finding")
        raise typer.Exit(1)
