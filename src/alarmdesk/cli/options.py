"""Options every ``alarmdesk`` command shares (one definition for cli.py and its parts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

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

# A row id as the tables hold it: sa.Integer, 32 bits on PostgreSQL (64 on SQLite), so the
# smaller range is the one both databases take. Past it, a number is a usage error (exit 2)
# before any query (it was an OverflowError on SQLite, a DataError on PostgreSQL).
ROW_ID_MAX = 2**31 - 1
BIG_ROW_ID_MAX = 2**63 - 1  # sa.BigInteger ids (incidents): 64 bits on both databases
# A TCP/UDP port, as the configuration file takes it (0: any free port).
PORT_MIN, PORT_MAX = 0, 65535


def row_id(help: str, max: int = ROW_ID_MAX) -> Any:
    """A command's argument that names a row by id (tokens, silences, webhooks, parked
    signals): 1 … ROW_ID_MAX, or 1 … BIG_ROW_ID_MAX for a BigInteger id (incidents)."""
    return typer.Argument(min=1, max=max, help=help)


def port_option(help: str) -> Any:
    """A port option: 0 … 65535, like the configuration file's."""
    return typer.Option(min=PORT_MIN, max=PORT_MAX, help=help)
