"""The ``alarmdesk`` command.

Exit codes: 0 ok, 1 failure at run time, 2 bad input or usage, 3 refused by a safeguard
(protected_purpose).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from alarmdesk import config as config_mod

app = typer.Typer(
    help="alarmdesk: alarms and incidents for public-safety operations centres.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo city (San Francisco).", no_args_is_help=True)
types_app = typer.Typer(help="Incident types.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(types_app, name="types")

err = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="TOML configuration file (default: $ALARMDESK_CONFIG or ./alarmdesk.toml).",
    ),
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Overrides the configured database (sqlite:///path or postgresql://…).",
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _config(path: Path | None, database_url: str | None = None) -> config_mod.Config:
    try:
        cfg = config_mod.load(path)
    except config_mod.ConfigError as exc:
        fail(str(exc))
    if database_url:
        cfg.database.url = database_url
    return cfg


@app.command()
def serve(
    config: ConfigOpt = None,
    database_url: DbOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Runs the HTTP API and the live stream."""
    import uvicorn

    from alarmdesk.store.database import SchemaNotReady, make_engine, require_head
    from alarmdesk.web.app import create_app

    cfg = _config(config, database_url)
    if host:
        cfg.server.host = host
    if port is not None:
        cfg.server.port = port
    engine = make_engine(cfg.database.url)
    try:
        require_head(engine)
    except SchemaNotReady as exc:
        fail(str(exc), 1)
    finally:
        engine.dispose()
    uvicorn.run(
        create_app(cfg),
        host=cfg.server.host,
        port=cfg.server.port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Migrates the schema to the latest version and loads the default taxonomy."""
    from alarmdesk.domain.taxonomy import default_types
    from alarmdesk.store import repository as repo
    from alarmdesk.store.database import make_engine, upgrade

    cfg = _config(config, database_url)
    upgrade(cfg.database.url)
    engine = make_engine(cfg.database.url)
    with engine.begin() as conn:
        n = repo.upsert_types(conn, default_types())
    engine.dispose()
    out.print(f"schema at head; {n} default incident types loaded")


@demo_app.command("load")
def demo_load(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Loads the demo city: desks and jurisdictions, stations, units, panels, cameras."""
    from alarmdesk.demo import load_demo
    from alarmdesk.store.database import make_engine

    cfg = _config(config, database_url)
    engine = make_engine(cfg.database.url)
    counts = load_demo(engine)
    engine.dispose()
    out.print("demo city loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))


@types_app.command("list")
def types_list(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Lists the incident types in the database."""
    from rich.table import Table

    from alarmdesk.store import repository as repo
    from alarmdesk.store.database import make_engine

    cfg = _config(config, database_url)
    engine = make_engine(cfg.database.url)
    with engine.connect() as conn:
        taxonomy = repo.load_taxonomy(conn)
    engine.dispose()
    table = Table("code", "name", "category", "P", "origin")
    for x in sorted(taxonomy, key=lambda x: x.code):
        table.add_row(x.code, x.name, x.category.value, str(x.priority), x.origin)
    out.print(table)


@app.command()
def simulate(
    url: Annotated[
        str, typer.Option(help="Base URL of a running alarmdesk.")
    ] = "http://127.0.0.1:8000",
    rate: Annotated[float, typer.Option(min=0.01, help="Signals per second.")] = 2.0,
    duration: Annotated[
        float, typer.Option(min=0, help="Seconds to run; 0 runs until interrupted.")
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="Same seed, same sequence of signals.")] = 1,
    run_id: Annotated[
        str | None,
        typer.Option(help="Prefix of idempotency keys (default: random, so runs never collide)."),
    ] = None,
) -> None:
    """Drives a running server with a realistic, reproducible feed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from alarmdesk.simulate import SimulationReport, run

    total = int(rate * duration) if duration > 0 else None
    with Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        task = progress.add_task("feed", total=total, status="")

        def update(r: SimulationReport) -> None:
            progress.update(
                task,
                completed=r.accepted + r.failed,
                status=f"accepted {r.accepted}, failed {r.failed}",
            )

        try:
            report = asyncio.run(
                run(url, rate, duration, seed=seed, run_id=run_id, on_progress=update)
            )
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
    out.print(
        f"sent {report.sent}, accepted {report.accepted}, failed {report.failed} "
        f"in {report.seconds:.1f}s" + (f"; errors: {report.errors}" if report.errors else "")
    )
    if report.sent and report.accepted == 0:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
