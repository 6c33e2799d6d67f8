"""The ``alarmdesk`` command: one module per command group, each calling services.

Exit codes: 0 ok, 1 failure at run time, 2 bad input or usage, 3 refused by a safeguard
(protected_purpose).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NoReturn

import typer

from alarmdesk import logs
from alarmdesk.cli.accounts import tokens_app, users_app
from alarmdesk.cli.analytics import analytics_app
from alarmdesk.cli.audit import audit_app
from alarmdesk.cli.centre import config_app
from alarmdesk.cli.common import exit_code, fail
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
from alarmdesk.domain.errors import AlarmdeskError

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
    """Runs the command. What no command turned into its one-line error is turned into one
    here, never a traceback: an error of alarmdesk's own (a broken audit key file met by any
    command), its exit code; standard output that cannot be written (a full disk), exit 1.
    A reader that stopped reading (``| head``) ends the command quietly, as it ends any Unix
    tool."""
    logs.configure()
    try:
        try:
            app()
        finally:
            sys.stdout.flush()  # what is still buffered fails here, where it can be reported
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        _drop_stdout()
        sys.exit(1)
    except AlarmdeskError as exc:
        _error(f"{exc.message} ({exc.code})", exit_code(exc))
    except OSError as exc:  # the files a command writes report their own (cli/output.py)
        _drop_stdout()
        where = f" ({exc.filename})" if exc.filename else ""
        _error(f"cannot write: {exc.strerror or exc}{where}", 1)


def _drop_stdout() -> None:
    """Points standard output at /dev/null, so that what is still buffered for it does not
    fail again when the interpreter exits."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _error(message: str, code: int) -> NoReturn:
    try:
        fail(message, code)
    except typer.Exit as done:
        sys.exit(done.exit_code)
