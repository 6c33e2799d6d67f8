"""A report's CSV is opened in spreadsheets: a station area imported from a CAD export as
``=cmd|' /C calc'!A0`` must be shown there, never run."""

from __future__ import annotations

import pytest

from alarmdesk.cli.output import spreadsheet_safe


@pytest.mark.parametrize(
    "text",
    ["=cmd|' /C calc'!A0", '+HYPERLINK("http://evil.example","x")', "@SUM(1)", "-2+3", "\t=1"],
)
def test_text_that_starts_like_a_formula_is_quoted(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["Station 7", "B02", "", 12, -3.5, None])
def test_other_cells_are_left_alone(value: object) -> None:
    assert spreadsheet_safe(value) == value
