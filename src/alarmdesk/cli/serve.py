"""``alarmdesk serve``, ``alarmdesk db upgrade`` and ``alarmdesk demo load``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from alarmdesk.bootstrap import audit_chain
from alarmdesk.cli.common import (
    cli_actor,
    database,
    exit_code,
    fail,
    load_config,
    open_database,
    out,
)
from alarmdesk.cli.options import ConfigOpt, DbOpt, port_option
from alarmdesk.demo import DEMO_PASSWORD, load_demo, load_demo_accounts
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.taxonomy import default_types
from alarmdesk.store import repository as repo
from alarmdesk.web.app import create_app
from alarmdesk.web.server import run
from alarmdesk.web.workers import WorkerPool

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo city (San Francisco).", no_args_is_help=True)


def serve(
    config: ConfigOpt = None,
    database_url: DbOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, port_option("Port to listen on.")] = None,
    dc09_port: Annotated[
        int | None,
        port_option("Also receive SIA DC-09 alarm panels on this TCP and UDP port."),
    ] = None,
    mqtt_url: Annotated[
        str | None,
        typer.Option(help="Also take in cameras and sensors from this MQTT broker (mqtt://…)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=64,
            help="HTTP worker processes in front of the process that writes (0: one process "
            "does both; N: HTTP uses N more cores). Overrides \\[server] workers.",
        ),
    ] = None,
) -> None:
    """Runs the HTTP API and the live stream (and, if asked, the equipment receivers)."""
    cfg = load_config(config, database_url)
    if host:
        cfg.server.host = host
    if port is not None:
        cfg.server.port = port
    if dc09_port is not None:
        cfg.intake.dc09_port = dc09_port
    if mqtt_url:
        cfg.intake.mqtt_url = mqtt_url
    if workers is not None:
        cfg.server.workers = workers
    try:
        cfg.check()
    except AlarmdeskError as exc:
        fail(exc.message, exit_code(exc))
    with open_database(cfg):
        pass  # reachable, at the code's schema: checked before listening
    if cfg.server.workers:
        pool = WorkerPool(cfg)
        try:
            pool.reserve_port()
        except OSError as exc:
            pool.remove()
            where = f"{cfg.server.host}:{cfg.server.port}"
            fail(f"cannot listen on {where}: {exc.strerror or exc}", 1)
        run(create_app(cfg, workers=pool), cfg, uds=str(pool.http_socket))
    else:
        run(create_app(cfg), cfg)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Migrates the schema to the latest version and loads the default taxonomy."""
    with database(config, database_url, upgrade=True) as (_, engine), engine.begin() as conn:
        n = repo.upsert_types(conn, default_types())
    out.print(f"schema at head; {n} default incident types loaded")


@demo_app.command("load")
def demo_load(
    config: ConfigOpt = None,
    database_url: DbOpt = None,
    token_file: Annotated[
        Path, typer.Option(help="Where to write the simulator's intake token.")
    ] = Path("var/demo-intake-token"),
) -> None:
    """Applies the demo city's set-up (desks, stations, units, panels, cameras; the files
    `alarmdesk config export` would write) and creates the demo accounts."""
    with database(config, database_url) as (cfg, engine):
        try:
            counts = load_demo(engine, audit_chain(cfg))
            users, token = load_demo_accounts(engine, audit_chain(cfg), cli_actor())
        except AlarmdeskError as exc:
            fail(f"{exc.message} ({exc.code})", exit_code(exc))
    loaded = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    out.print(f"demo city loaded: {loaded or 'already there, nothing changed'}")
    if token is not None:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        out.print(f"simulator token written to {token_file}")
    else:
        out.print(
            f"demo accounts exist already: their intake token (demo-simulator) is not shown "
            f"again and {token_file} was not written (`alarmdesk tokens create --role intake` "
            "makes another)",
            soft_wrap=True,  # one line, whatever the terminal's width
        )
    out.print(
        Text.assemble(f"demo sign-in: {', '.join(users)} — password ", (DEMO_PASSWORD, "bold"))
    )
