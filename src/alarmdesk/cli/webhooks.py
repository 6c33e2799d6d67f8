"""``alarmdesk webhooks``: signed deliveries of incident events to another system."""

from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.table import Table

from alarmdesk.cli.common import cli_actor, database, fail, out, run
from alarmdesk.cli.options import ConfigOpt, DbOpt, row_id
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.webhooks import WebhookSpec
from alarmdesk.service import webhooks

webhooks_app = typer.Typer(
    help="Webhooks: incident events POSTed to another system, signed (Standard Webhooks).",
    no_args_is_help=True,
)


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="Where events are POSTed (http or https).")],
    event: Annotated[
        list[str] | None,
        typer.Option(help="An event type (incident.opened...) or incident.*; repeat."),
    ] = None,
    desk: Annotated[
        list[str] | None, typer.Option(help="Only this desk's incidents; repeat. Default: all.")
    ] = None,
    description: Annotated[
        str,
        typer.Option(
            help="Who receives it and what for, e.g. 'County CAD' (screened); the transparency "
            "report names the recipient by it and the host."
        ),
    ] = "",
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Subscribes a URL (audited) and prints its signing secret: the only time it is shown.
    A running server starts delivering within seconds, from the next event on. A URL no HTTP
    request can be made to (a host that is not a valid domain name) is refused, exit 2."""
    try:
        spec = msgspec.convert(
            {
                "url": url,
                "events": event or ["incident.*"],
                "desks": desk or [],
                "description": description,
            },
            WebhookSpec,
        )
    except msgspec.ValidationError as exc:
        fail(str(exc))
    with database(config, database_url) as (cfg, engine):
        created = run(cfg, engine, webhooks.create(cli_actor(), spec))
    out.print(f"webhook {created.id} created")
    out.print(f"secret (shown once, give it to the receiver): {created.secret}", highlight=False)


@webhooks_app.command("remove")
def webhooks_remove(
    webhook_id: Annotated[int, row_id("The webhook's id.")],
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Stops deliveries to a webhook (audited); its delivery log stays."""
    with database(config, database_url) as (cfg, engine):
        run(cfg, engine, webhooks.remove(cli_actor(), webhook_id))
    out.print(f"webhook {webhook_id} removed")


@webhooks_app.command("list")
def webhooks_list(
    removed: Annotated[bool, typer.Option(help="Also removed ones.")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Lists webhooks (never their secrets) with the last event each has handled."""
    with database(config, database_url) as (_, engine):
        found = webhooks.list_webhooks(engine, removed=removed)
    table = Table("id", "url", "events", "desks", "after event", "given up", "removed")
    for w in found:
        table.add_row(
            str(w["id"]),
            w["url"],
            ", ".join(w["events"]),
            ", ".join(w["desks"]) or "all",
            str(w["cursor"]),
            str(w["failed_events"]),
            w["removed_at"].isoformat(timespec="minutes") if w["removed_at"] else "",
        )
    out.print(table)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    webhook_id: Annotated[int, row_id("The webhook's id.")],
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """The delivery log of a webhook, newest first: every attempt, its status and error."""
    with database(config, database_url) as (_, engine):
        try:
            found = webhooks.deliveries(engine, webhook_id, limit=limit)
        except AlarmdeskError as exc:
            fail(f"{exc.message} ({exc.code})")
    table = Table("at", "event", "incident", "attempt", "outcome", "status", "error", "ms")
    for d in found:
        table.add_row(
            d["at"].isoformat(timespec="seconds"),
            str(d["event_id"]),
            str(d["incident_id"]),
            str(d["attempt"]),
            d["outcome"],
            str(d["status"] or ""),
            d["error"] or "",
            str(d["duration_ms"]),
        )
    out.print(table)
