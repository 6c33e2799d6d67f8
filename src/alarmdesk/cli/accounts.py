"""``alarmdesk users`` and ``alarmdesk tokens``: people who sign in, and machine tokens."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from alarmdesk.cli.common import cli_actor, database, err, fail, out, run
from alarmdesk.cli.options import ConfigOpt, DbOpt, row_id
from alarmdesk.service import accounts

users_app = typer.Typer(help="People who sign in to the console.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for machines and scripts.", no_args_is_help=True)


def _password(password_stdin: bool) -> str:
    """A password from standard input (one line) or asked for twice, never an argument."""
    if password_stdin:
        try:
            return sys.stdin.readline().rstrip("\n")
        except UnicodeDecodeError:
            fail("the password on standard input is not UTF-8 text")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from standard input instead of a prompt."
    ),
]


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
    password_stdin: PasswordStdin = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Adds a user (the password is asked for, never given on the command line)."""
    password = _password(password_stdin)
    with database(config, database_url) as (cfg, engine):
        user_id = run(cfg, engine, accounts.create_user(cli_actor(), name, password, role, desk))
    out.print(f"user {name} added (id {user_id}, role {role}, desks {', '.join(desk)})")


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    password_stdin: PasswordStdin = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Gives a user a new password (audited); every session of theirs ends."""
    password = _password(password_stdin)
    with database(config, database_url) as (cfg, engine):
        run(cfg, engine, accounts.set_password(cli_actor(), name, password))
    out.print(f"user {name}: password changed, sessions ended")


def _set_disabled(name: str, disabled: bool, config: ConfigOpt, database_url: DbOpt) -> None:
    with database(config, database_url) as (cfg, engine):
        run(cfg, engine, accounts.set_disabled(cli_actor(), name, disabled))
    out.print(f"user {name} disabled, sessions ended" if disabled else f"user {name} enabled")


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Disables a user (audited): they cannot sign in, and their sessions end (a running
    server notices within 10 s, its credential cache)."""
    _set_disabled(name, True, config, database_url)


@users_app.command("enable")
def users_enable(
    name: Annotated[str, typer.Argument(help="Sign-in name.")],
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Enables a disabled user again (audited)."""
    _set_disabled(name, False, config, database_url)


@users_app.command("list")
def users_list(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Lists users with their role and desks."""
    with database(config, database_url) as (_, engine):
        users = accounts.list_users(engine)
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
    with database(config, database_url) as (cfg, engine):
        token_id, secret = run(
            cfg, engine, accounts.create_token(cli_actor(), name, role, desk or [])
        )
    err.print(f"token {token_id} ({name}, role {role}); shown once, keep it safe:")
    print(secret)


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[int, row_id("The token's id.")],
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Revokes a token (it stops working within seconds)."""
    with database(config, database_url) as (cfg, engine):
        run(cfg, engine, accounts.revoke_token(cli_actor(), token_id))
    out.print(f"token {token_id} revoked")
