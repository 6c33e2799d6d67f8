"""A command's error message is printed as it is: brackets in it (a config section, a usage
pattern, a value the user typed) are text, never console markup."""

from __future__ import annotations

import pytest
import typer

from alarmdesk.cli.common import fail


@pytest.mark.parametrize(
    "message",
    [
        "[server] workers is for one machine",
        "--weekly: 'DAYS HH:MM-HH:MM [TIMEZONE]'",
        "no desk named '[/]' or '[bold red]x'",
    ],
)
def test_an_error_message_is_printed_verbatim(message: str, capsys) -> None:
    with pytest.raises(typer.Exit) as exit_:
        fail(message, 2)
    assert exit_.value.exit_code == 2
    printed = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert printed == f"error: {message}"


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["serve"], "[server] workers"),
        (["report", "transparency"], "(default: [report])"),
        (["analytics", "export"], "since the last export into [analytics] dir"),
    ],
)
def test_option_help_shows_its_brackets(command: list[str], shown: str) -> None:
    from typer.testing import CliRunner

    from alarmdesk.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert shown in " ".join(result.output.replace("│", " ").split())
