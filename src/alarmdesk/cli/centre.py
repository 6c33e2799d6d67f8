"""``alarmdesk config``: a centre's set-up as files — plan, apply, export, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from alarmdesk.cli.common import cli_actor, database, exit_code, fail, out, run
from alarmdesk.cli.options import ConfigOpt, DbOpt
from alarmdesk.cli.output import output_folder, writing
from alarmdesk.domain.centre import KINDS
from alarmdesk.domain.centre_plan import Plan
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.service import centre, centre_files

config_app = typer.Typer(
    help="The centre's set-up as files: desks, stations, units, panels, cameras, sensors.",
    no_args_is_help=True,
)

PathArg = Annotated[
    Path, typer.Argument(help="A set-up file (YAML) or a folder of them (*.yaml, *.yml).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")]


def _load(path: Path) -> centre_files.Located:
    try:
        return centre_files.load(path)
    except AlarmdeskError as exc:
        fail(f"{exc.message} ({exc.code})", exit_code(exc))


def _show(plan: Plan, as_json: bool, verb: str) -> None:
    if as_json:
        typer.echo(json.dumps({"counts": plan.counts(), **plan.summary()}, indent=2))
        return
    if plan.empty:
        out.print(f"No changes: the stored set-up already matches the files ({verb}).")
        return
    table = Table("kind", "added", "changed", "removed")
    counts = plan.counts()
    for kind in KINDS:
        if kind in counts:
            c = counts[kind]
            table.add_row(kind, str(c["added"]), str(c["changed"]), str(c["removed"]))
    out.print(table)
    for sign, changes in (("+", plan.added), ("~", plan.changed), ("-", plan.removed)):
        for ch in changes:
            fields = f" ({', '.join(ch.fields)})" if ch.fields else ""
            one = ch.kind.removesuffix("s")  # "routing" and "escalation" are one already
            out.print(f"  {sign} {one} {ch.id}{fields}", highlight=False)


@config_app.command("plan")
def config_plan(
    path: PathArg, as_json: JsonOpt = False, config: ConfigOpt = None, database_url: DbOpt = None
) -> None:
    """Shows what applying the files would add, change and remove (writes nothing)."""
    located = _load(path)
    with database(config, database_url) as (_, engine):
        try:
            planned = centre.plan(engine, located)
        except AlarmdeskError as exc:
            fail(f"{exc.message} ({exc.code})", exit_code(exc))
    _show(planned, as_json, "plan")


@config_app.command("apply")
def config_apply(
    path: PathArg, as_json: JsonOpt = False, config: ConfigOpt = None, database_url: DbOpt = None
) -> None:
    """Applies the files in one audited transaction (all or nothing).

    A running server takes the change up within seconds (new incidents follow it).
    """
    located = _load(path)
    with database(config, database_url) as (cfg, engine):
        applied = run(cfg, engine, centre.apply(cli_actor(), located, engine))
    _show(applied, as_json, "apply")


@config_app.command("export")
def config_export(
    folder: Annotated[Path, typer.Argument(help="The folder to write desks.yaml, units.yaml…")],
    include_secrets: Annotated[
        bool, typer.Option(help="Write AES keys instead of <redacted>.")
    ] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Writes the stored set-up as files (AES keys redacted unless --include-secrets).

    Applying an export back keeps the stored keys where a file says <redacted>.
    """
    output_folder(folder)
    with database(config, database_url) as (_, engine):
        stored = centre.stored_records(engine)
    texts = centre_files.dump(stored, include_secrets=include_secrets)
    with writing(folder):
        written = centre_files.write(folder, texts)
    for p in written:
        out.print(str(p), highlight=False)


@config_app.command("schema")
def config_schema() -> None:
    """Prints the JSON Schema of a set-up file (for editors)."""
    typer.echo(json.dumps(centre_files.schema(), indent=2))
