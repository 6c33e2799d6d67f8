"""``alarmdesk parked``: queued signals that could not be stored (distributed mode).

docs/operations.md, "A signal that cannot be stored": a signal from the intake log that
failed alone, try after try, is parked so that its partition goes on. These commands show
them and put them back into the log once the fault is mended.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from rich.table import Table

from alarmdesk import config as config_mod
from alarmdesk.bootstrap import audit_chain
from alarmdesk.bus.jetstream import IntakeLog, LogSettings, QueuedSignal
from alarmdesk.cli.common import cli_actor, database, exit_code, fail, out, run
from alarmdesk.cli.options import ConfigOpt, DbOpt, row_id
from alarmdesk.clock import utcnow
from alarmdesk.domain.errors import AlarmdeskError, IntakeUnavailable
from alarmdesk.service import parked
from alarmdesk.service.cluster import publish_queued

parked_app = typer.Typer(
    help="Queued signals that failed alone, try after try, and were parked (distributed mode).",
    no_args_is_help=True,
)


def _row(r: dict[str, Any]) -> dict[str, Any]:
    signal = r["queued"].get("signal", {})
    return {
        "id": r["id"],
        "parked_at": r["parked_at"].isoformat(),
        "received_at": r["received_at"].isoformat(),
        "partition": r["partition"],
        "source": f"{signal.get('source_kind', '')}:{signal.get('source_id', '')}",
        "type_code": signal.get("type_code", ""),
        "idempotency_key": signal.get("idempotency_key"),
        "attempts": r["attempts"],
        "error": r["error"],
        "retries": r["retries"],
        "retried_at": r["retried_at"].isoformat() if r["retried_at"] else None,
    }


@parked_app.command("list")
def parked_list(
    retried: Annotated[bool, typer.Option(help="Also those put back into the log.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Lists the parked signals, oldest first (audited: it reads signal data)."""
    with database(config, database_url) as (cfg, engine):
        rows = [
            _row(r)
            for r in parked.listing(
                engine, audit_chain(cfg), cli_actor(), utcnow(), retried=retried
            )
        ]
    if as_json:
        for r in rows:
            out.print_json(json.dumps(r), indent=None)
        return
    if not rows:
        out.print("no parked signals")
        return
    table = Table("id", "parked at", "partition", "source", "type", "tries", "error", "put back")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["parked_at"][:19],
            str(r["partition"]),
            r["source"],  # a sender's text: `out` reads no markup
            r["type_code"],
            str(r["attempts"]),
            r["error"],
            r["retried_at"][:19] if r["retried_at"] else "",
        )
    out.print(table)


@parked_app.command("retry")
def parked_retry(
    ids: Annotated[list[int] | None, row_id("Parked signals' ids (alarmdesk parked list).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every parked signal waiting.")] = False,
    config: ConfigOpt = None,
    database_url: DbOpt = None,
) -> None:
    """Puts parked signals back into the intake log once the fault that parked them is mended.

    As they were queued (their sender and received time kept). One that fails again is
    parked again; one already stored is recognised by its key and not stored twice.
    """
    if bool(ids) == every:
        fail("name the parked signals to put back (their ids), or give --all")
    with database(config, database_url) as (cfg, engine):
        if not cfg.nats.enabled:
            fail("parked signals go back into the intake log: set [nats] url (ALARMDESK_NATS_URL)")
        try:
            items = parked.to_retry(engine, ids or None)
        except AlarmdeskError as exc:
            fail(f"{exc.message} ({exc.code})", exit_code(exc))
        if not items:
            out.print("no parked signal waiting")
            return
        try:
            asyncio.run(_republish(cfg, engine, [(r.queued, r.msg_id) for r in items]))
        except AlarmdeskError as exc:
            fail(f"{exc.message} ({exc.code}); nothing was marked as put back", exit_code(exc))
        count = run(cfg, engine, parked.retried(cli_actor(), items))
    out.print(f"{count} parked signal(s) put back into the intake log")
    if count < len(items):
        out.print(f"{len(items) - count} failed again at once and were parked again")


async def _republish(
    cfg: config_mod.Config, engine: sa.Engine, items: list[tuple[QueuedSignal, str]]
) -> None:
    nats = cfg.nats
    intake = IntakeLog(LogSettings(nats.url, nats.stream, nats.replicas, nats.partitions))
    try:
        async with asyncio.timeout(10):
            await intake.connect()
    except Exception as exc:
        raise IntakeUnavailable(
            f"NATS at {nats.url} did not answer ({type(exc).__name__})"
        ) from None
    try:
        await publish_queued(intake, engine, items)
    finally:
        await intake.close()
