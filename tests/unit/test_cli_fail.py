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
