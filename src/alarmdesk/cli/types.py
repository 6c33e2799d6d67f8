"""``alarmdesk types``: the incident types in force, and custom types with two approvals."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table

from alarmdesk.cli.common import cli_actor, database, exit_code, fail, out, run
from alarmdesk.cli.options import ConfigOpt, DbOpt
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.purpose import check_category
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.safeguards.access import Permission, Principal, allowed
from alarmdesk.service import accounts, custom_types

types_app = typer.Typer(help="Incident types.", no_args_is_help=True)


def _acting_user(engine: sa.Engine, name: str, permission: Permission, verb: str) -> Principal:
    """The user named by --as: an active one (exit 2) allowed to do it (exit 3)."""
    who = accounts.active_user(engine, name)
    if who is None:
        fail(f"no active user {name!r}")
    if not allowed(who, permission):
        fail(f"{name} ({who.role.value}) may not {verb} incident types", 3)
    return who


@types_app.command("list")
def types_list(
    custom: Annotated[
        bool, typer.Option(help="Custom types, pending ones included, with purpose and approvals.")
    ] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Lists the incident types in force (or the custom ones)."""
    with database(config, database_url) as (_, engine):
        types = custom_types.list_types(engine, custom=custom)
    if custom:
        table = Table("code", "name", "category", "P", "status", "purpose", "approvals")
        for c in types:
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
        for x in sorted(types, key=lambda x: x["code"]):
            table.add_row(x["code"], x["name"], x["category"], str(x["priority"]), x["origin"])
    out.print(table)


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
    author: Annotated[str, typer.Option("--as", help="The user proposing it (must exist).")],
    definition: Annotated[str, typer.Option(help="What it covers.")] = "",
    sop: Annotated[list[str] | None, typer.Option(help="A procedure step (repeat).")] = None,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Proposes a custom type; it takes effect after two approvals (`types approve`)."""
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
    except AlarmdeskError as exc:
        fail(f"{exc.message} ({exc.code})", exit_code(exc))
    with database(config, database_url) as (cfg, engine):
        _acting_user(engine, author, Permission.TYPES_PROPOSE, "propose")
        run(cfg, engine, custom_types.propose(proposed, author, cli_actor()))
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
    with database(config, database_url) as (cfg, engine):
        who = _acting_user(engine, approver, Permission.TYPES_APPROVE, "approve")
        state = run(cfg, engine, custom_types.approve(code, who, cli_actor()))
    out.print(
        f"{state['code']} approved by {approver}: now {state['status']}"
        + (" (a running server takes it up within 30 s)" if state["status"] == "active" else "")
    )
