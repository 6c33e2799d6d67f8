"""What every ``alarmdesk`` command shares: output, exit codes, configuration, the database,
who acts from the command line, and how a change is run with its audit entry.

Exit codes: 0 ok, 1 failure at run time, 2 bad input or usage, 3 refused by a safeguard
(``protected_purpose``).
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.text import Text

from alarmdesk import config as config_mod
from alarmdesk.bootstrap import audit_chain
from alarmdesk.clock import utcnow
from alarmdesk.domain.errors import AlarmdeskError, ConfigError, ProtectedPurposeError, Unavailable
from alarmdesk.domain.signal import FORBIDDEN_TEXT
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service.actions import Action, perform
from alarmdesk.store.database import make_engine, require_head, sqlite_file
from alarmdesk.store.database import upgrade as upgrade_schema

__all__ = [
    "cli_actor",
    "database",
    "err",
    "exit_code",
    "fail",
    "load_config",
    "open_database",
    "out",
    "run",
]

# What a command prints holds what people typed (a silence's reason, a source id, a name, a
# line of a file being verified): shown as text, never read as markup ("[/]" in a reason
# stopped `silences list` with a traceback). A style is given as a style (rich.text.Text),
# not written in the string. An error is one line however long (soft_wrap: the terminal
# wraps it), for people and for the scripts and logs that read it.
#
# Nor as a terminal's control sequence: text stored before today's input rules may hold an
# ESC or a bidi override (a custom type's name, a silence's reason), and printed raw it
# would retitle the window, recolour or hide what follows. Such characters are shown
# escaped (``\x1b``), as the input rules would have refused them.


class _TextConsole(Console):
    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(FORBIDDEN_TEXT.sub(_escaped, text), **kwargs)


def _escaped(found: re.Match[str]) -> str:
    return ascii(found.group())[1:-1]


err = _TextConsole(stderr=True, soft_wrap=True, markup=False)
out = _TextConsole(markup=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Prints ``message`` as text (its brackets are not markup) and exits with ``code``."""
    err.print(Text.assemble(("error:", "bold red"), f" {message}"), highlight=False)
    raise typer.Exit(code)


def exit_code(exc: AlarmdeskError) -> int:
    """3 for a safeguard's refusal, 1 when alarmdesk cannot serve now, 2 for the rest (bad
    input, no such object, a state that forbids it)."""
    if exc.code == ProtectedPurposeError.code:  # also a set-up file refused for its purpose
        return 3
    return 1 if isinstance(exc, Unavailable) else 2


def load_config(path: Path | None, database_url: str | None = None) -> config_mod.Config:
    try:
        cfg = config_mod.load(path)
    except ConfigError as exc:
        fail(str(exc))
    if database_url is not None:
        if not database_url.strip():  # was taken for "not given": the configured one was used
            fail("--database-url is empty: give sqlite:///PATH or postgresql://USER@HOST/NAME")
        cfg.database.url = database_url
    try:
        cfg.check()
    except ConfigError as exc:
        fail(str(exc))
    return cfg


@contextmanager
def database(
    path: Path | None, database_url: str | None = None, *, upgrade: bool = False
) -> Iterator[tuple[config_mod.Config, sa.Engine]]:
    """The configuration and an engine on its database, disposed of afterwards (see
    :func:`open_database`)."""
    cfg = load_config(path, database_url)
    with open_database(cfg, upgrade=upgrade) as engine:
        yield cfg, engine


@contextmanager
def open_database(cfg: config_mod.Config, *, upgrade: bool = False) -> Iterator[sa.Engine]:
    """An engine on the configured database, disposed of afterwards, for every command
    (``serve`` and ``db upgrade`` included). A URL of no database alarmdesk supports exits 2;
    a database that cannot be reached, a SQLite file that does not exist (only ``upgrade``,
    for `alarmdesk db upgrade`, creates one: a mistyped path made directories and an empty
    file), or a schema that is not the code's (never upgraded, or upgraded by a newer
    alarmdesk) exits 1 with what to do before any command reads it (each was a traceback)."""
    url = cfg.database.url
    try:
        file = sqlite_file(url)
    except ConfigError as exc:
        fail(str(exc))
    if file is not None and not upgrade and not file.exists():
        fail(f"no database at {file} (alarmdesk db upgrade creates it)", 1)
    engine = make_engine(url)
    try:
        try:
            if upgrade:
                upgrade_schema(url)
            require_head(engine)
        except AlarmdeskError as exc:
            fail(f"{exc.message} ({exc.code})", exit_code(exc))
        except sa.exc.OperationalError as exc:
            fail(f"the database cannot be reached: {str(exc.orig).strip()}", 1)
        yield engine
    finally:
        engine.dispose()


def cli_actor() -> Actor:
    """Who acts from the command line: the machine's user, as the audit log records it."""
    return Actor(f"cli:{getpass.getuser()}", "operator_of_machine")


def run(cfg: config_mod.Config, engine: sa.Engine, action: Action) -> Any:
    """Runs a change with its audit entries in one transaction; a refusal exits 2 or 3 with
    its code (the refusal itself is in the log)."""
    try:
        return perform(engine, audit_chain(cfg), action, utcnow())
    except AlarmdeskError as exc:
        fail(f"{exc.message} ({exc.code})", exit_code(exc))
