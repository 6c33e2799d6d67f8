"""The output files of ``alarmdesk`` commands (an export, a report, the set-up files), all
written by :func:`alarmdesk.files.write_file`, with one set of exit codes: a path that cannot
be an output file (no such folder, a folder, a FIFO, a device) is bad input, exit 2, checked
before the command does anything (logs an export, a disclosure); a failure while writing (a
full disk, no permission) exits 1. Either is one line on stderr."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alarmdesk.cli.common import fail
from alarmdesk.files import OutputPathError, check_output_folder, output_target, write_file

__all__ = ["output_file", "output_folder", "write_output", "writing"]


@contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turns a path refused as an output (exit 2) or a failed write (exit 1) into one line."""
    try:
        yield
    except OutputPathError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror or exc}", 1)


def output_file(path: Path) -> None:
    """Exits 2 now if ``path`` cannot be an output file (call it before anything is done)."""
    with writing(path):
        output_target(path)


def output_folder(path: Path) -> None:
    """Exits 2 now if ``path`` (or the nearest folder above it that exists) is not a folder."""
    with writing(path):
        check_output_folder(path)


def write_output(path: Path, text: str | Iterable[str], *, mode: int = 0o666) -> Path:
    """Writes an output file (:func:`alarmdesk.files.write_file`) or exits with one line."""
    with writing(path):
        return write_file(path, text, mode=mode)
    raise AssertionError("unreachable")  # fail() exits; for type checkers


# What a spreadsheet reads as the start of a formula (OWASP, "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell as a spreadsheet shows it, never runs it: text that starts like a formula
    (a station area ``=cmd|' /C calc'!A0`` from an imported export) gets a leading ``'``.
    Numbers are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
