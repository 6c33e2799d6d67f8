"""Reading a CAD export saved as a spreadsheet (XLSX): its rows as text cells, so the one
reader of ``reader.py`` maps them as it maps a CSV file's.

openpyxl reads the workbook in read-only mode, a row at a time, whatever its size; with
defusedxml installed (a dependency) it refuses XML entity expansion. A typed cell becomes the
text the mapping would read in a CSV export: a date and time is written in the mapping's
first time format (so that format reads it back to the second), a whole number without a
decimal point (a call number 170010123, not 170010123.0), an empty cell as empty text.
Formulas are read as their last computed values.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import openpyxl

from alarmdesk.domain.errors import AlarmdeskError, InvalidField, MappingError
from alarmdesk.domain.history.mapping import Mapping
from alarmdesk.domain.history.times import ISO_FORMAT

__all__ = ["SPREADSHEET_SUFFIXES", "Sheet", "is_spreadsheet"]

SPREADSHEET_SUFFIXES: Final = (".xlsx", ".xlsm")


def is_spreadsheet(path: str | Path) -> bool:
    """Whether a file is read as a spreadsheet (by its suffix) rather than as CSV."""
    return Path(path).suffix.lower() in SPREADSHEET_SUFFIXES


def _broken(path: Path, exc: BaseException) -> InvalidField:
    return InvalidField(
        f"{path.name}: not a readable XLSX workbook ({type(exc).__name__}: {exc})",
        field="file",
        code="malformed_xlsx",
    )


class Sheet:
    """One sheet of a workbook, opened for reading; close it (or use ``with``)."""

    def __init__(self, path: str | Path, mapping: Mapping) -> None:
        """
        Raises:
            InvalidField: the file is not a readable workbook (``malformed_xlsx``).
            MappingError: the workbook has no sheet of the mapping's ``source.sheet``.
        """
        self.path = Path(path)
        self.mapping = mapping
        fmt = mapping.formats[0].fmt
        self._time_format = None if fmt == ISO_FORMAT else fmt
        try:
            self._book = openpyxl.load_workbook(
                self.path, read_only=True, data_only=True, keep_links=False
            )
        except Exception as exc:  # openpyxl raises what zipfile and the XML parser raise
            raise _broken(self.path, exc) from exc
        names = self._book.sheetnames
        if mapping.sheet is not None and mapping.sheet not in names:
            self._book.close()
            raise MappingError(
                f"source.sheet: the workbook has no sheet {mapping.sheet!r} "
                f"(it has {', '.join(repr(n) for n in names) or 'none'})"
            )
        self._sheet = self._book[mapping.sheet] if mapping.sheet else self._book.worksheets[0]

    @property
    def size(self) -> int:
        """The number of rows the sheet says it has (its header included); 0 if unknown."""
        return int(self._sheet.max_row or 0)

    def rows(self) -> Iterator[list[str]]:
        """The sheet's rows as text cells, its header first.

        Raises:
            InvalidField: the workbook breaks off or is corrupt past its start
                (``malformed_xlsx``).
        """
        try:
            for row in self._sheet.iter_rows(values_only=True):
                yield [self._text(v) for v in row]
        except AlarmdeskError:
            raise
        except Exception as exc:  # a corrupt part is found only when it is reached
            raise _broken(self.path, exc) from exc

    def _text(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, datetime):
            return value.strftime(self._time_format) if self._time_format else value.isoformat()
        if isinstance(value, date):
            midnight = datetime.combine(value, time())
            return midnight.strftime(self._time_format) if self._time_format else str(value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    def close(self) -> None:
        self._book.close()

    def __enter__(self) -> Sheet:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
