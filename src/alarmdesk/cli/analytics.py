"""``alarmdesk analytics export``: copy the calls finished since the last export into the
analytics store (docs/analytics.md). A running server does the same every
``[analytics] export_minutes``, and every KPI report does it first.

Exit codes as for every ``alarmdesk`` command: 0 ok, 1 failure at run time (the database or
the store's directory), 2 bad input.
"""

from __future__ import annotations

import sqlalchemy as sa
import typer

from alarmdesk.bootstrap import analytics_store, audit_chain
from alarmdesk.cli.common import cli_actor, database, exit_code, fail, out
from alarmdesk.cli.options import ConfigOpt, DbOpt
from alarmdesk.clock import utcnow
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.service.analytics import export

__all__ = ["analytics_app"]

analytics_app = typer.Typer(
    help="The analytics store: finished calls as Parquet, KPIs with DuckDB.",
    no_args_is_help=True,
)


@analytics_app.command("export")
def export_calls(config: ConfigOpt = None, database_url: DbOpt = None) -> None:
    """Copies the imported calls and alarmdesk's own resolved incidents that finished since
    the last export into \\[analytics] dir, and prints the calls exported, the parts written
    and the seconds it took. Running it again exports nothing new; an export that stopped
    halfway is completed by the next one, without duplicates."""
    with database(config, database_url) as (cfg, engine):
        try:
            run = export(
                engine,
                analytics_store(cfg, engine),
                audit_chain(cfg),
                now=utcnow(),
                actor=cli_actor(),
            )
        except AlarmdeskError as exc:
            fail(f"{exc.message} ({exc.code})", exit_code(exc))
        except sa.exc.SQLAlchemyError as exc:
            fail(f"the database failed; run the export again: {exc}", 1)
        except OSError as exc:
            fail(f"{cfg.analytics.dir}: {exc}", 1)
    out.print(
        f"exported {run.calls} calls ({run.units} unit responses) in {run.parts} parts "
        f"in {run.seconds:.2f} s to {cfg.analytics.dir}",
        highlight=False,
    )
    if run.strays:
        out.print(
            f"removed {run.strays} files of an export that had stopped before committing",
            highlight=False,
        )
