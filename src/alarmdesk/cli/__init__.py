"""The ``alarmdesk`` command: one module per command group, each calling services.

Exit codes: 0 ok, 1 failure at run time, 2 bad input or usage, 3 refused by a safeguard
(protected_purpose).
"""

from __future__ import annotations

import sys

import typer

from alarmdesk import logs
from alarmdesk.cli.accounts import tokens_app, users_app
from alarmdesk.cli.analytics import analytics_app
from alarmdesk.cli.audit import audit_app
from alarmdesk.cli.centre import config_app
from alarmdesk.cli.export import export_app
from alarmdesk.cli.history import import_app, report_kpi
from alarmdesk.cli.parked import parked_app
from alarmdesk.cli.safeguards import report_app, retention_app
from alarmdesk.cli.saved_reports import saved_app
from alarmdesk.cli.serve import db_app, demo_app, serve
from alarmdesk.cli.silences import silences_app
from alarmdesk.cli.simulate import simulate
from alarmdesk.cli.types import types_app
from alarmdesk.cli.webhooks import webhooks_app

__all__ = ["app", "main"]

app = typer.Typer(
    help="alarmdesk: alarms and incidents for public-safety operations centres.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(serve)
app.command()(simulate)
app.add_typer(audit_app, name="audit")
app.add_typer(config_app, name="config")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(types_app, name="types")
app.add_typer(retention_app, name="retention")
app.add_typer(report_app, name="report")
app.add_typer(silences_app, name="silences")
app.add_typer(parked_app, name="parked")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.add_typer(analytics_app, name="analytics")
report_app.command("kpi")(report_kpi)
report_app.add_typer(saved_app, name="saved")


def main() -> None:
    logs.configure()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
