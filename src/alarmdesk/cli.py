"""The ``alarmdesk`` command.

Exit codes: 0 ok, 1 failure at run time, 2 bad input or usage, 3 refused by a safeguard
(protected_purpose).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from alarmdesk import config as config_mod
from alarmdesk.cli_options import ConfigOpt, DbOpt
from alarmdesk.cli_safeguards import register as register_safeguards
from alarmdesk.domain.errors import ConfigError, SchemaNotReady

app = typer.Typer(
    help="alarmdesk: alarms and incidents for public-safety operations centres.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo city (San Francisco).", no_args_is_help=True)
types_app = typer.Typer(help="Incident types.", no_args_is_help=True)
users_app = typer.Typer(help="People who sign in to the console.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for machines and scripts.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(types_app, name="types")
register_safeguards(app)  # alarmdesk retention …, alarmdesk report …

err = Console(stderr=True)
out = Console()


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _config(path: Path | None, database_url: str | None = None) -> config_mod.Config:
    try:
        cfg = config_mod.load(path)
    except ConfigError as exc:
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
    dc09_port: Annotated[
        int | None,
        typer.Option(help="Also receive SIA DC-09 alarm panels on this TCP and UDP port."),
    ] = None,
    mqtt_url: Annotated[
        str | None,
        typer.Option(help="Also take in cameras and sensors from this MQTT broker (mqtt://…)."),
    ] = None,
) -> None:
    """Runs the HTTP API and the live stream (and, if asked, the equipment receivers)."""
    import uvicorn

    from alarmdesk.store.database import make_engine, require_head
    from alarmdesk.web.app import create_app

    cfg = _config(config, database_url)
    if host:
        cfg.server.host = host
    if port is not None:
        cfg.server.port = port
    if dc09_port is not None:
        cfg.intake.dc09_port = dc09_port
    if mqtt_url:
        cfg.intake.mqtt_url = mqtt_url
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
def demo_load(
    config: ConfigOpt = None,
    database_url: DbOpt = None,
    token_file: Annotated[
        Path, typer.Option(help="Where to write the simulator's intake token.")
    ] = Path("var/demo-intake-token"),
) -> None:
    """Loads the demo city (desks, stations, units, panels, cameras) and demo accounts."""
    from alarmdesk.demo import DEMO_PASSWORD, load_demo, load_demo_accounts

    engine = _engine(config, database_url)
    counts = load_demo(engine)
    users, token = load_demo_accounts(engine)
    engine.dispose()
    out.print("demo city loaded: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if token is not None:
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        out.print(f"simulator token written to {token_file}")
    out.print(f"demo sign-in: {', '.join(users)} — password [bold]{DEMO_PASSWORD}[/]")


@types_app.command("list")
def types_list(
    custom: Annotated[
        bool, typer.Option(help="Custom types, pending ones included, with purpose and approvals.")
    ] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Lists the incident types in force (or the custom ones)."""
    from rich.table import Table

    from alarmdesk.store import custom_types
    from alarmdesk.store import repository as repo

    engine = _engine(config, database_url)
    with engine.connect() as conn:
        taxonomy = repo.load_taxonomy(conn)
        customs = custom_types.list_custom(conn) if custom else []
    engine.dispose()
    if custom:
        table = Table("code", "name", "category", "P", "status", "purpose", "approvals")
        for c in customs:
            table.add_row(
                c["code"],
                c["name"],
                c["category"],
                str(c["priority"]),
                c["status"],
                c["purpose"],
                ", ".join(a["approver"] for a in c["approvals"]),
            )
    else:
        table = Table("code", "name", "category", "P", "origin")
        for x in sorted(taxonomy, key=lambda x: x.code):
            table.add_row(x.code, x.name, x.category.value, str(x.priority), x.origin)
    out.print(table)


def _refused(exc: Exception) -> NoReturn:
    """Purpose screening refusals exit with 3, other bad input with 2."""
    from alarmdesk.domain.purpose import ProtectedPurposeError

    code = getattr(exc, "code", "invalid_input")
    fail(f"{exc} ({code})", 3 if isinstance(exc, ProtectedPurposeError) else 2)


@types_app.command("add")
def types_add(
    code: Annotated[str, typer.Argument(help="The new type's code, e.g. LIBFIRE.")],
    name: Annotated[str, typer.Option(help="Its name.")],
    category: Annotated[
        str,
        typer.Option(
            help="A harm category: fire, medical, violence, "
            "property, traffic, hazard, rescue, equipment, "
            "public_service, other_harm."
        ),
    ],
    priority: Annotated[int, typer.Option(min=1, max=5, help="1 (life) … 5 (admin).")],
    purpose: Annotated[str, typer.Option(help="The harm it responds to, in words.")],
    legal_basis: Annotated[str, typer.Option(help="The law or mandate that allows it.")],
    author: Annotated[str, typer.Option("--as", help="The user proposing it.")],
    definition: Annotated[str, typer.Option(help="What it covers.")] = "",
    sop: Annotated[list[str] | None, typer.Option(help="A procedure step (repeat).")] = None,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Proposes a custom type; it takes effect after two approvals (`types approve`)."""
    from alarmdesk.clock import utcnow
    from alarmdesk.domain.errors import AlarmdeskError
    from alarmdesk.domain.purpose import ProtectedPurposeError, UnknownCategoryError, check_category
    from alarmdesk.domain.taxonomy import IncidentType
    from alarmdesk.safeguards.audit import AuditEvent, Operation
    from alarmdesk.store import custom_types

    cfg = _config(config, database_url)
    engine = _engine(config, database_url)
    try:
        proposed = IncidentType(
            code=code.upper(),
            name=name,
            category=check_category(category),
            priority=priority,
            definition=definition,
            sop=tuple(sop or ()),
            origin="custom",
            purpose=purpose,
            legal_basis=legal_basis,
        )
        with engine.begin() as conn:
            custom_types.propose(conn, proposed, author, utcnow())
        audit_now(
            cfg,
            engine,
            [
                AuditEvent(
                    cli_actor(),
                    Operation.CONFIGURE,
                    "incident_type",
                    proposed.code,
                    rule="types.propose",
                )
            ],
        )
    except (ProtectedPurposeError, UnknownCategoryError, AlarmdeskError) as exc:
        _refused(exc)
    finally:
        engine.dispose()
    out.print(
        f"{code.upper()} proposed; it takes effect after two approvals "
        "(a rights officer and one other user, neither the author)"
    )


@types_app.command("approve")
def types_approve(
    code: Annotated[str, typer.Argument(help="The custom type's code.")],
    approver: Annotated[str, typer.Option("--as", help="The approving user (must exist).")],
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Approves a custom type as a user; the second approval puts it in force."""
    import sqlalchemy as sa

    from alarmdesk.clock import utcnow
    from alarmdesk.domain.errors import AlarmdeskError
    from alarmdesk.safeguards.access import Permission, Principal, Role, allowed
    from alarmdesk.safeguards.audit import AuditEvent, Operation
    from alarmdesk.store import custom_types
    from alarmdesk.store import tables as t

    cfg = _config(config, database_url)
    engine = _engine(config, database_url)
    try:
        with engine.begin() as conn:
            role = conn.execute(
                sa.select(t.users.c.role).where(
                    t.users.c.name == approver, t.users.c.disabled_at.is_(None)
                )
            ).scalar()
            if role is None:
                fail(f"no active user {approver!r}")
            who = Principal(id=approver, name=approver, role=Role(role), desks=frozenset())
            if not allowed(who, Permission.TYPES_APPROVE):
                fail(f"{approver} ({role}) may not approve incident types", 3)
            state = custom_types.approve(conn, code, approver, Role(role), utcnow())
        audit_now(
            cfg,
            engine,
            [
                AuditEvent(
                    cli_actor(),
                    Operation.CONFIGURE,
                    "incident_type",
                    state["code"],
                    rule="types.approve",
                    detail={"approver": approver, "status": state["status"]},
                )
            ],
        )
    except AlarmdeskError as exc:
        _refused(exc)
    finally:
        engine.dispose()
    out.print(
        f"{state['code']} approved by {approver}: now {state['status']}"
        + (" (a running server takes it up within 30 s)" if state["status"] == "active" else "")
    )


def _engine(config: Path | None, database_url: str | None) -> Any:
    from alarmdesk.store.database import make_engine

    return make_engine(_config(config, database_url).database.url)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    role: Annotated[
        str,
        typer.Option(help="call_taker, operator, supervisor, auditor, rights_officer or admin."),
    ],
    desk: Annotated[
        list[str], typer.Option(help="A desk the user works (repeat for more; '*' for every desk).")
    ],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the password from standard input instead of a prompt."
        ),
    ] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Adds a user (the password is asked for, never given on the command line)."""
    from alarmdesk.clock import utcnow
    from alarmdesk.domain.errors import AlarmdeskError
    from alarmdesk.store import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    engine = _engine(config, database_url)
    from alarmdesk.safeguards.audit import AuditEvent, Operation

    try:
        with engine.begin() as conn:
            user_id = accounts.create_user(conn, name, password, role, desk, utcnow())
        audit_now(
            _config(config, database_url),
            engine,
            [
                AuditEvent(
                    cli_actor(),
                    Operation.CONFIGURE,
                    "user",
                    str(user_id),
                    rule="users.add",
                    detail={"role": role, "desks": sorted(desk)},
                )
            ],
        )
    except AlarmdeskError as exc:
        fail(f"{exc.message} ({exc.code})")
    finally:
        engine.dispose()
    out.print(f"user {name} added (id {user_id}, role {role}, desks {', '.join(desk)})")


@users_app.command("list")
def users_list(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Lists users with their role and desks."""
    from alarmdesk.store import accounts

    engine = _engine(config, database_url)
    with engine.connect() as conn:
        users = accounts.list_users(conn)
    engine.dispose()
    for u in users:
        state = " (disabled)" if u["disabled_at"] else ""
        out.print(f"{u['name']}\t{u['role']}\t{','.join(u['desks'])}{state}")  # type: ignore[arg-type]


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option(help="intake (submit signals only) or a person's role.")],
    name: Annotated[str, typer.Option(help="What the token is for, e.g. 'panel-receiver-1'.")],
    desk: Annotated[
        list[str] | None, typer.Option(help="Desks it may see (not for intake).")
    ] = None,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Creates an API token and prints it once (only its hash is stored)."""
    from alarmdesk.clock import utcnow
    from alarmdesk.domain.errors import AlarmdeskError
    from alarmdesk.store import accounts

    engine = _engine(config, database_url)
    from alarmdesk.safeguards.audit import AuditEvent, Operation

    try:
        with engine.begin() as conn:
            token_id, secret = accounts.create_token(conn, name, role, desk or [], utcnow())
        audit_now(
            _config(config, database_url),
            engine,
            [
                AuditEvent(
                    cli_actor(),
                    Operation.CONFIGURE,
                    "token",
                    str(token_id),
                    rule="tokens.create",
                    detail={"role": role},
                )
            ],
        )
    except AlarmdeskError as exc:
        fail(f"{exc.message} ({exc.code})")
    finally:
        engine.dispose()
    err.print(f"token {token_id} ({name}, role {role}); shown once, keep it safe:")
    print(secret)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int, config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Revokes a token (it stops working within seconds)."""
    from alarmdesk.clock import utcnow
    from alarmdesk.store import accounts

    engine = _engine(config, database_url)
    from alarmdesk.safeguards.audit import AuditEvent, Operation

    with engine.begin() as conn:
        done = accounts.revoke_token(conn, token_id, utcnow())
    if done:
        audit_now(
            _config(config, database_url),
            engine,
            [
                AuditEvent(
                    cli_actor(), Operation.CONFIGURE, "token", str(token_id), rule="tokens.revoke"
                )
            ],
        )
    engine.dispose()
    if not done:
        fail(f"no active token {token_id}")
    out.print(f"token {token_id} revoked")


def cli_actor() -> Any:
    """Who acts from the command line: the machine's user, as the audit log records it."""
    import getpass

    from alarmdesk.safeguards.audit import Actor

    return Actor(f"cli:{getpass.getuser()}", "operator_of_machine")


def audit_now(cfg: config_mod.Config, engine: Any, events: list[Any]) -> None:
    """Appends audit entries from the command line, in their own transaction."""
    from alarmdesk.bootstrap import audit_chain
    from alarmdesk.clock import utcnow

    with engine.begin() as conn:
        audit_chain(cfg).append(conn, events, utcnow())


@audit_app.command("pubkey")
def audit_pubkey(config: ConfigOpt = None) -> None:
    """Prints the public key that verifies the log's checkpoints (publish it)."""
    from alarmdesk.store.audit import Signer

    print(Signer.load_or_create(_config(config).audit.key_file).vkey)


@audit_app.command("export")
def audit_export(
    file: Annotated[Path, typer.Argument(help="Where to write the JSON Lines export.")],
    justification: Annotated[str, typer.Option(help="Why the log is exported (logged).")],
    checkpoint: Annotated[
        bool, typer.Option(help="Sign a checkpoint first, so every entry is covered.")
    ] = True,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Exports the whole log with its signed checkpoints, for `alarmdesk audit verify`."""
    from alarmdesk.bootstrap import audit_chain
    from alarmdesk.clock import utcnow
    from alarmdesk.safeguards.audit import AuditEvent, Operation
    from alarmdesk.safeguards.auditlog_file import write_export
    from alarmdesk.store.audit import export_lines

    if len(justification.strip()) < 5:
        fail("an export needs a justification (--justification), kept in the log")
    cfg = _config(config, database_url)
    engine = _engine(config, database_url)
    chain = audit_chain(cfg)
    with engine.begin() as conn:
        chain.append(
            conn,
            [
                AuditEvent(
                    cli_actor(),
                    Operation.EXPORT,
                    "audit_log",
                    str(file),
                    justification=justification.strip(),
                )
            ],
            utcnow(),
        )
        if checkpoint:
            chain.checkpoint(conn, utcnow())
    with engine.connect() as conn:
        n = write_export(export_lines(conn), file)
    engine.dispose()
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
    from alarmdesk.safeguards.auditlog_file import verify_export

    if not file.is_file():
        fail(f"no file {file}")
    try:
        report = verify_export(file, pubkey)
    except ValueError as exc:
        fail(f"cannot verify: {exc}")
    for note in report.notes:
        out.print(f"note: {note}")
    for problem in report.problems:
        err.print(f"[red]problem:[/] {problem}", highlight=False)
    summary = (
        f"{report.entries} entries ({report.erased} erased by retention), "
        f"{report.checkpoints} checkpoints, verified up to {report.last_verified_size}"
    )
    if not report.ok:
        err.print(f"[bold red]NOT VERIFIED[/]: {summary}")
        raise typer.Exit(1)
    out.print(f"[bold green]verified[/]: {summary}")


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
    token: Annotated[
        str | None,
        typer.Option(envvar="ALARMDESK_TOKEN", help="API token with the intake role."),
    ] = None,
    token_file: Annotated[Path | None, typer.Option(help="Read the token from this file.")] = None,
) -> None:
    """Drives a running server with a realistic, reproducible feed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from alarmdesk.simulate import SimulationReport, run

    if token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            fail(f"cannot read {token_file}: {exc}")
    if not token:
        fail(
            "simulate needs an intake token: --token, --token-file or $ALARMDESK_TOKEN "
            "(create one with `alarmdesk tokens create --role intake --name simulator`)"
        )
    headers = {"Authorization": f"Bearer {token}"}
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
                run(
                    url,
                    rate,
                    duration,
                    seed=seed,
                    run_id=run_id,
                    on_progress=update,
                    headers=headers,
                )
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
