"""A CAD export saved as a spreadsheet (XLSX) imports as its CSV does.

The San Francisco week is written into a workbook as a spreadsheet program would keep it:
times as date-time cells, the call number as a number. Read with the same mapping, it gives
the very call records the CSV gives; imported, the same calls are stored. A file that is not
a workbook, or lacks the mapping's sheet, stores nothing.
"""

from __future__ import annotations

import csv
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from openpyxl.xml import DEFUSEDXML

from alarmdesk.domain.errors import InvalidField, MappingError
from alarmdesk.domain.history import DataQuality, load_mapping, read_calls_file
from alarmdesk.domain.history.reader import read_rows
from alarmdesk.domain.history.sheets import Sheet
from tests.integration import test_history_import as imports
from tests.integration.test_history_import import (
    MAPPING,
    SF_WEEK,
    WEEK_CALLS,
    cli,
    import_week,
    said,
    stored,
)

cfg = imports.cfg  # the fixtures: a migrated database of each kind, and its engine
engine = imports.engine

FORMAT = "%m/%d/%Y %I:%M:%S %p"  # the SF export's, as the mapping states it


def as_workbook(csv_path: Path, xlsx_path: Path, *, sheet: str = "Calls") -> None:
    """The CSV as a spreadsheet program saves it: typed cells, a named sheet first of two."""
    mapping = load_mapping(MAPPING)
    time_columns = set(mapping.phase_columns.values())
    book = openpyxl.Workbook(write_only=True)
    ws = book.create_sheet(sheet)
    with csv_path.open(encoding="utf-8-sig", newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        ws.append(header)
        for row in rows:
            cells: list[Any] = []
            for name, value in zip(header, row, strict=True):
                if name in time_columns and value:
                    cells.append(datetime.strptime(value, FORMAT))  # local, as Excel keeps it
                elif name == "Call Number" and value.isdigit():
                    cells.append(int(value))
                else:
                    cells.append(value or None)
            ws.append(cells)
    book.create_sheet("Notes").append(["exported from the old CAD"])
    book.save(xlsx_path)


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("xlsx") / "sf-week.xlsx"
    as_workbook(SF_WEEK, path)
    return path


def test_openpyxl_reads_workbooks_without_entity_expansion() -> None:
    assert DEFUSEDXML  # defusedxml is installed, so openpyxl parses with it


def test_the_workbook_gives_the_records_the_csv_gives(workbook: Path) -> None:
    mapping = load_mapping(MAPPING)
    from_xlsx, q_csv = DataQuality(), DataQuality()
    expected = list(read_calls_file(SF_WEEK, mapping, q_csv))
    with Sheet(workbook, mapping) as sheet:
        got = list(read_rows(sheet.rows(), mapping, from_xlsx))
    assert len(got) == WEEK_CALLS
    assert got == expected
    assert from_xlsx.lines() == q_csv.lines()


def test_importing_the_workbook_stores_the_week_once(cfg, engine, workbook: Path) -> None:
    summary = import_week(cfg, engine, workbook)
    assert summary.imported == WEEK_CALLS
    again = import_week(cfg, engine, workbook)
    assert (again.imported, again.already_imported) == (0, WEEK_CALLS)
    assert stored(engine)[0] == WEEK_CALLS


def test_the_command_imports_a_workbook(cfg, engine, workbook: Path, tmp_path: Path) -> None:
    result = cli(
        cfg,
        tmp_path,
        "import",
        "calls",
        str(workbook),
        "--mapping",
        str(MAPPING),
        "--source",
        "sf",
        retention="[retention]\nincidents_days = 3653\n",
    )
    assert result.exit_code == 0, result.output
    assert stored(engine)[0] > 0


def test_a_file_that_is_not_a_workbook_stores_nothing(cfg, engine, tmp_path: Path) -> None:
    fake = tmp_path / "calls.xlsx"
    shutil.copy(SF_WEEK, fake)  # a CSV file named .xlsx
    with pytest.raises(InvalidField) as caught:
        import_week(cfg, engine, fake)
    assert caught.value.code == "malformed_xlsx"
    assert stored(engine) == (0, 0)
    result = cli(cfg, tmp_path, "import", "calls", str(fake), "--mapping", str(MAPPING))
    assert result.exit_code == 2, result.output
    assert "malformed_xlsx" in said(result)


def test_a_workbook_cut_short_stores_nothing(cfg, engine, workbook: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.xlsx"
    data = workbook.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InvalidField) as caught:
        import_week(cfg, engine, cut)
    assert caught.value.code == "malformed_xlsx"
    assert stored(engine) == (0, 0)


def test_a_sheet_the_workbook_lacks_is_named(cfg, engine, workbook: Path, tmp_path: Path) -> None:
    mapping_file = tmp_path / "mapping.toml"
    text = MAPPING.read_text().replace("[source]\n", '[source]\nsheet = "Calls 2017"\n', 1)
    mapping_file.write_text(text)
    with (
        pytest.raises(MappingError, match=r"no sheet 'Calls 2017'.*'Calls', 'Notes'"),
        Sheet(workbook, load_mapping(mapping_file)),
    ):
        pass
    result = cli(cfg, tmp_path, "import", "calls", str(workbook), "--mapping", str(mapping_file))
    assert result.exit_code != 0
    assert stored(engine) == (0, 0)
