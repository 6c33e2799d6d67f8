"""``alarmdesk audit``: publish the key, export the log, verify an export offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from alarmdesk.bootstrap import audit_chain
from alarmdesk.cli.common import cli_actor, database, err, fail, load_config, out
from alarmdesk.cli.options import ConfigOpt, DbOpt
from alarmdesk.cli.output import output_file, writing
from alarmdesk.clock import utcnow
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.safeguards.audit import MIN_JUSTIFICATION, check_justification
from alarmdesk.safeguards.auditlog_file import verify_export, write_export
from alarmdesk.service import audit_log
from alarmdesk.store.audit import Signer

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("pubkey")
def audit_pubkey(config: ConfigOpt = None) -> None:
    """Prints the public key that verifies the log's checkpoints (publish it)."""
    # a broken key file: one line naming it, exit 2 (the entry point, as for every command)
    print(Signer.load_or_create(load_config(config).audit.key_file).vkey)


@audit_app.command("export")
def audit_export(
    file: Annotated[Path, typer.Argument(help="Where to write the JSON Lines export.")],
    justification: Annotated[
        str,
        typer.Option(
            help=f"Why the log is exported (logged; at least {MIN_JUSTIFICATION} characters)."
        ),
    ],
    checkpoint: Annotated[
        bool, typer.Option(help="Sign a checkpoint first, so every entry is covered.")
    ] = True,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Exports the whole log with its signed checkpoints, for `alarmdesk audit verify`. The
    export is logged before the file is written. Exit 2: a justification too short, or a
    FILE that cannot be written (no such folder; a folder, FIFO or device). A symlink is
    followed: the file it names is written."""
    try:
        reason = check_justification(
            justification,
            required=True,
            param="--justification",
            why=f"--justification must say why the log is exported in at least "
            f"{MIN_JUSTIFICATION} characters that show (it is kept in the log), "
            f"not {justification!r}",
        )
    except AlarmdeskError as exc:  # a control or bidi character; too short
        fail(exc.message)
    output_file(file)  # before the export is logged
    with database(config, database_url) as (cfg, engine):
        chain = audit_chain(cfg)  # a broken key file: one line from the entry point, exit 2
        audit_log.record_export(
            engine,
            chain,
            cli_actor(),
            str(file),
            reason,
            utcnow(),
            sign=checkpoint,
        )
        with writing(file):
            n = write_export(audit_log.export_lines(engine), file)
    out.print(
        f"{n} lines written to {file}; verify with: alarmdesk audit verify {file} "
        f"--pubkey {chain.signer.vkey}"
    )


@audit_app.command("verify")
def audit_verify(
    file: Annotated[Path, typer.Argument(help="An export from `alarmdesk audit export`.")],
    pubkey: Annotated[str, typer.Option(help="The log's published verifier key.")],
) -> None:
    """Verifies an exported log against its signed checkpoints. Needs no secret, no network,
    no database. Exit 0: verified; 1: tampering or truncation found."""
    if not file.is_file():
        fail(f"no file {file}")
    try:
        report = verify_export(file, pubkey)
    except ValueError as exc:
        fail(f"cannot verify: {exc}")
    for note in report.notes:
        out.print(f"note: {note}")
    for problem in report.problems:
        err.print(Text.assemble(("problem:", "red"), f" {problem}"), highlight=False)
    summary = (
        f"{report.entries} entries ({report.erased} erased by retention), "
        f"{report.checkpoints} checkpoints, verified up to {report.last_verified_size}"
    )
    if not report.ok:
        err.print(Text.assemble(("NOT VERIFIED", "bold red"), f": {summary}"))
        raise typer.Exit(1)
    out.print(Text.assemble(("verified", "bold green"), f": {summary}"))
