"""``alarmdesk silences``: maintenance windows and known faults (stored, not alarmed)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from alarmdesk.cli.common import cli_actor, database, fail, out, run
from alarmdesk.cli.options import ConfigOpt, DbOpt, row_id
from alarmdesk.clock import utcnow
from alarmdesk.domain.silences import SilenceSpec
from alarmdesk.service import silences

silences_app = typer.Typer(
    help="Silences: signals they match are stored and shown, never alarmed.",
    no_args_is_help=True,
)


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--{name}: not an ISO 8601 time ({value!r})")
    if when.tzinfo is None:
        fail(f"--{name}: give a UTC offset, e.g. {value}+00:00")
    return when


def _weekly(text: str) -> dict[str, object]:
    parts = text.split()
    if len(parts) not in (2, 3):
        fail("--weekly: 'DAYS HH:MM-HH:MM [TIMEZONE]', e.g. 'tue,thu 06:00-08:00 Europe/London'")
    window: dict[str, object] = {"days": parts[0].split(","), "hours": parts[1]}
    if len(parts) == 3:
        window["timezone"] = parts[2]
    return window


@silences_app.command("add")
def silences_add(
    reason: Annotated[str, typer.Option(help="Why (a maintenance visit, a known fault...).")],
    device: Annotated[
        list[str] | None, typer.Option(help="A device id or pattern (panel-03E8, cam-*); repeat.")
    ] = None,
    account: Annotated[list[str] | None, typer.Option(help="A DC-09 account; repeat.")] = None,
    site: Annotated[list[str] | None, typer.Option(help="A site name or pattern; repeat.")] = None,
    type_code: Annotated[
        list[str] | None, typer.Option("--type", help="An incident type code; repeat.")
    ] = None,
    category: Annotated[list[str] | None, typer.Option(help="A harm category; repeat.")] = None,
    starts_at: Annotated[
        str | None, typer.Option(help="ISO 8601 with offset; default now.")
    ] = None,
    ends_at: Annotated[str | None, typer.Option(help="ISO 8601 with offset.")] = None,
    weekly: Annotated[
        list[str] | None,
        typer.Option(help="A weekly window 'DAYS HH:MM-HH:MM [TZ]', e.g. 'tue 06:00-08:00 UTC'."),
    ] = None,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Creates a silence (audited). A running server applies it within 5 seconds."""
    try:
        spec = msgspec.convert(
            {
                "match": {
                    "devices": device or [],
                    "accounts": account or [],
                    "sites": site or [],
                    "types": type_code or [],
                    "categories": category or [],
                },
                "reason": reason,
                "starts_at": _when(starts_at, "starts-at"),
                "ends_at": _when(ends_at, "ends-at"),
                "weekly": [_weekly(w) for w in weekly or []],
            },
            SilenceSpec,
            from_attributes=True,
        )
    except msgspec.ValidationError as exc:
        fail(str(exc))
    with database(config, database_url) as (cfg, engine):
        silence_id = run(cfg, engine, silences.create(cli_actor(), spec))
    out.print(f"silence {silence_id} created")


@silences_app.command("end")
def silences_end(
    silence_id: Annotated[int, row_id("The silence's id.")],
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Ends a silence now (audited); what it held back stays stored."""
    with database(config, database_url) as (cfg, engine):
        run(cfg, engine, silences.end(cli_actor(), silence_id))
    out.print(f"silence {silence_id} ended")


@silences_app.command("list")
def silences_list(
    ended: Annotated[bool, typer.Option(help="Also ended and expired ones.")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Lists silences with how many signals each held back."""
    with database(config, database_url) as (_, engine):
        found = silences.list_silences(engine, utcnow(), ended=ended)
    table = Table("id", "state", "matches", "from", "until", "weekly", "signals", "reason")
    for s in found:
        match = "; ".join(f"{k}: {', '.join(v)}" for k, v in s["match"].items() if v)
        weekly = "; ".join(f"{','.join(w['days'])} {w['hours']}" for w in s.get("weekly", []))
        table.add_row(
            str(s["id"]),
            s["state"],
            match,
            s["starts_at"].isoformat(timespec="minutes"),
            s["ends_at"].isoformat(timespec="minutes") if s["ends_at"] else "until ended",
            weekly,
            str(s["signals"]),
            s["reason"],
        )
    out.print(table)
