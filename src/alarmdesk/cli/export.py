"""``alarmdesk export``: an incident in a format another agency's system reads (docs/sharing.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from alarmdesk.bootstrap import audit_chain
from alarmdesk.cli.common import cli_actor, database, exit_code, fail, out
from alarmdesk.cli.options import BIG_ROW_ID_MAX, ConfigOpt, DbOpt, row_id
from alarmdesk.cli.output import output_file, write_output
from alarmdesk.clock import utcnow
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.service import queries, sharing

export_app = typer.Typer(
    help="Share an incident with another agency (each export is a disclosure in the audit log).",
    no_args_is_help=True,
)


@export_app.command("eido")
def export_eido(
    incident_id: Annotated[int, row_id("The incident's id.", BIG_ROW_ID_MAX)],
    recipient: Annotated[
        str | None,
        typer.Option(help="The agency it is for (required; kept in the audit log)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the EIDO to this file (default: stdout)."),
    ] = None,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Writes the incident as a NENA EIDO (NENA-STA-021.1 JSON). The disclosure, with its
    recipient, is committed to the audit log before anything is written. Exit 2: no
    recipient, no such incident, or an output that cannot be written (no such folder; a
    folder, FIFO or device; a symlink is followed); 3: a recipient refused by purpose
    screening."""
    try:
        name = sharing.check_recipient(recipient)
    except AlarmdeskError as exc:
        fail(f"{exc.message} ({exc.code})", exit_code(exc))
    if output is not None:
        output_file(output)  # before the disclosure is logged
    with database(config, database_url) as (cfg, engine):
        found = queries.get_incident(engine, incident_id)
        if found is None:
            fail(f"incident {incident_id} does not exist (not_found)")
        document = sharing.eido_document(engine, found, sharing.agency_of(cfg.sharing))
        event = sharing.disclosure(cli_actor(), incident_id, name)
        sharing.record_disclosure(engine, audit_chain(cfg), event, utcnow())
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        print(text, end="")
        return
    write_output(output, text)
    out.print(f"incident {incident_id} written to {output} as EIDO for {name!r}", highlight=False)
