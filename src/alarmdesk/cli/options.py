"""Options every ``alarmdesk`` command shares (one definition for cli.py and its parts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
