"""The call history of a centre's old CAD: importing an export (docs/analytics.md). The KPI
report over it is ``service/kpi_report.py``.

Import: the file is first read whole as CSV (``check_csv``), or as an XLSX workbook's sheet
when its name ends in .xlsx or .xlsm (``domain/history/sheets.py``), so that a file that
breaks off halfway, or lacks a column, stores nothing; then it is read with the mapping
(``domain/history``) and stored a chunk at a time, each chunk in its own short transaction
with one ``collect`` audit entry (counts, never content), so a running server's writer never
waits long. A call already stored for the same source and call id is skipped and counted:
importing a file twice adds nothing. A call whose last recorded time is already past the
retention period of incidents of its category is not stored (``past_retention``).
"""

from __future__ import annotations

import codecs
import io
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

import sqlalchemy as sa

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.history import (
    CallRecord,
    DataQuality,
    Mapping,
    check_csv,
    read_calls,
)
from alarmdesk.domain.history.reader import check_rows, read_rows
from alarmdesk.domain.history.sheets import Sheet, is_spreadsheet
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.signal import check_text
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.safeguards.retention_policy import RetentionConfig
from alarmdesk.service.actions import in_transaction
from alarmdesk.store import history as store
from alarmdesk.store.audit import AuditChain

__all__ = [
    "AUDIT_OBJECT",
    "SOURCE_MAX",
    "ImportSummary",
    "Progress",
    "check_source",
    "import_calls",
]

SOURCE_MAX: Final = 64
# The longest value a stored call may hold (the columns of store/history.py).
_LIMITS: Final = {"call_id": 200, "station_area": 100, "unit_id": 100, "unit_kind": 100}
AUDIT_OBJECT: Final = "history_calls"

# (stage, bytes done, bytes in the file): "checking" the CSV, then "importing".
Progress = Callable[[str, int, int], None]


def check_source(name: str) -> str:
    """An import source's name (stored with each call, and a report filter): one line of at
    most SOURCE_MAX characters, purpose-screened.

    Raises:
        InvalidField: empty, too long, or with control characters.
        ProtectedPurposeError: the name targets people exercising rights.
    """
    value = name.strip()
    if not value:
        raise InvalidField("the source name is empty", field="source", code="invalid_value")
    if len(value) > SOURCE_MAX:
        raise InvalidField(
            f"the source name is at most {SOURCE_MAX} characters",
            field="source",
            code="invalid_value",
        )
    check_text(value, "source")
    screen({"source": value})
    return value


# -------------------------------------------------------------------------------- import


@dataclass(slots=True)
class ImportSummary:
    """What an import did: the reader's data-quality report, and what became of its calls."""

    source: str
    quality: DataQuality
    imported: int = 0
    already_imported: int = 0
    not_stored: Counter[str] = field(default_factory=Counter)  # reason → calls

    def lines(self) -> list[str]:
        """The summary in words, as the import prints it."""
        out = [
            f"source: {self.source}",
            f"calls imported: {self.imported}",
            f"calls already imported (not added again): {self.already_imported}",
        ]
        if self.not_stored:
            out.append("calls read but not stored:")
            out += [f"  {why}: {n}" for why, n in sorted(self.not_stored.items())]
        return [*out, "data quality of the file:", *(f"  {x}" for x in self.quality.lines())]


def _open(path: Path) -> tuple[io.BufferedReader, int]:
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise InvalidField(
            f"cannot read {path}: {exc.strerror or exc}", field="file", code="unreadable_file"
        ) from exc
    return raw, os.fstat(raw.fileno()).st_size


def _readable(path: Path) -> None:
    raw, _ = _open(path)
    raw.close()


def _counted(
    rows: Iterator[list[str]], size: int, stage: str, progress: Progress
) -> Iterator[list[str]]:
    """A spreadsheet's rows, telling ``progress`` how many of ``size`` are read."""
    n = 0
    for n, row in enumerate(rows, start=1):
        if n % 1000 == 1:
            progress(stage, n, max(size, n))
        yield row
    progress(stage, max(size, n), max(size, n))


def _lines(
    raw: io.BufferedReader, text: io.TextIOWrapper, size: int, stage: str, progress: Progress
) -> Iterator[str]:
    for n, line in enumerate(text):
        if n % 1000 == 0:
            progress(stage, raw.tell(), size)
        yield line
    progress(stage, size, size)


def _decoded(raw: io.BufferedReader, encoding: str, size: int, progress: Progress) -> Iterator[str]:
    """The file's lines decoded one at a time, so that bytes not in the encoding are named
    by their line (a text reader decodes ahead, a block at a time)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    n = 0
    for n, line in enumerate(raw, start=1):
        if n % 1000 == 1:
            progress("checking", raw.tell(), size)
        try:
            yield decoder.decode(line)
        except UnicodeDecodeError as exc:
            raise InvalidField(
                f"line {n}: not readable as CSV in the mapping's encoding ({exc.reason})",
                code="malformed_csv",
            ) from exc
    try:
        yield decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InvalidField(
            f"line {n}: not readable as CSV in the mapping's encoding ({exc.reason})",
            code="malformed_csv",
        ) from exc
    progress("checking", size, size)


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


def _unstorable(record: CallRecord) -> str | None:
    """Why a call cannot be stored as read (a value too long, a control character)."""
    values = {"call_id": record.call_id, "station_area": record.station_area or ""}
    for n, unit in enumerate(record.units):
        values[f"unit_id.{n}"] = unit.unit_id
        values[f"unit_kind.{n}"] = unit.kind or ""
    for key, value in values.items():
        if len(value) > _LIMITS[key.split(".")[0]]:
            return "value_too_long"
        try:
            check_text(value, key)
        except InvalidField:
            return "invalid_text"
    return None


def import_calls(
    engine: sa.Engine,
    chain: AuditChain,
    path: str | Path,
    mapping: Mapping,
    *,
    source: str,
    actor: Actor,
    policy: RetentionConfig,
    now: datetime,
    progress: Progress | None = None,
    chunk: int = 2000,
) -> ImportSummary:
    """Imports a CAD export with its mapping; returns the summary.

    Args:
        path: the CSV file, or an XLSX workbook (by its suffix).
        mapping: its mapping (``domain.history.load_mapping``).
        source: the import's name (:func:`check_source`); with the call id, a call's key.
        actor: who imports (the audit entries name them).
        policy: the retention policy: calls already past it are not stored.
        now: the time of the import (an injected clock in tests).
        progress: told how far the reading is.
        chunk: calls per transaction.

    Raises:
        InvalidField: the file cannot be opened (``unreadable_file``), or is not CSV in the
            mapping's encoding (``malformed_csv``, naming the line), or not a readable
            workbook (``malformed_xlsx``). Nothing is stored.
        MappingError: the file lacks a column the mapping names, or the workbook the sheet
            it names. Nothing is stored.
        ProtectedPurposeError: the source name targets people exercising rights.
    """
    name = check_source(source)
    tell = progress or _no_progress
    file = Path(path)
    cutoffs = policy.cutoffs(now)
    summary = ImportSummary(name, DataQuality())
    batch: list[CallRecord] = []

    def keep(records: Iterator[CallRecord]) -> None:
        nonlocal batch
        for record in records:
            if (why := _unstorable(record)) is not None:
                summary.not_stored[why] += 1
            elif record.last_time() < cutoffs[f"incidents.{record.category.value}"]:
                summary.not_stored["past_retention"] += 1
            else:
                batch.append(record)
            if len(batch) >= chunk:
                _store(engine, chain, name, batch, actor, now, summary)
                batch = []
        if batch:
            _store(engine, chain, name, batch, actor, now, summary)

    if is_spreadsheet(file):
        _readable(file)
        with Sheet(file, mapping) as sheet:
            check_rows(_counted(sheet.rows(), sheet.size, "checking", tell), mapping)
        with Sheet(file, mapping) as sheet:
            rows = _counted(sheet.rows(), sheet.size, "importing", tell)
            keep(read_rows(rows, mapping, summary.quality))
        return summary
    raw, size = _open(file)
    with raw:
        check_csv(_decoded(raw, mapping.encoding, size, tell), mapping)
    raw, size = _open(file)
    with raw, io.TextIOWrapper(raw, encoding=mapping.encoding, newline="") as text:
        keep(read_calls(_lines(raw, text, size, "importing", tell), mapping, summary.quality))
    return summary


def _store(
    engine: sa.Engine,
    chain: AuditChain,
    source: str,
    batch: Sequence[CallRecord],
    actor: Actor,
    now: datetime,
    summary: ImportSummary,
) -> None:
    def work(conn: sa.Connection) -> store.Stored:
        stored = store.store_calls(conn, source, batch, now)
        entry = AuditEvent(
            actor,
            Operation.COLLECT,
            AUDIT_OBJECT,
            source,
            rule="history.import",
            detail={"calls": len(batch), "imported": stored.imported, "already": stored.already},
        )
        chain.append(conn, [entry], now)
        return stored

    stored = in_transaction(engine, chain, work, "history import")
    summary.imported += stored.imported
    summary.already_imported += stored.already
