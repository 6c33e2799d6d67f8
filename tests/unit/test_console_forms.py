"""The console's intake forms: what a form becomes, and what it refuses, field by field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alarmdesk.domain.taxonomy import default_types
from alarmdesk.safeguards.access import Principal, Role
from alarmdesk.service.console_queries import Reference
from alarmdesk.web.console.forms import FormErrors, intake_signal

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
REF = Reference(sorted(default_types(), key=lambda x: x.code), [])
PATROL = Principal("user:7", "pat", Role.OPERATOR, frozenset({"west"}))


def form(**fields: str) -> dict[str, str]:
    return {"type": "FSTRU", "coords": "45.1, -1.2", "form_key": "abcdefgh12345678", **fields}


@pytest.mark.parametrize("callback", ["radio ch 4", "Radio channel 4 / 0612 345 678", "TG 2041"])
def test_a_duty_report_takes_any_callback_text(callback) -> None:
    signal = intake_signal(form(callback=callback), "duty", PATROL, REF, NOW)
    assert signal.payload["people"] == [{"role": "reporter", "name": "pat", "callback": callback}]


@pytest.mark.parametrize(
    "callback",
    ["radio\x07ch 4", "radio\nch 4", "x" * 61],
)
def test_a_duty_report_refuses_control_characters_and_long_callbacks(callback) -> None:
    with pytest.raises(FormErrors) as caught:
        intake_signal(form(callback=callback), "duty", PATROL, REF, NOW)
    assert set(caught.value.errors) == {"callback"}


def test_a_call_still_takes_a_callback_number_only() -> None:
    signal = intake_signal(form(callback="+1 (415) 555-0100"), "call", PATROL, REF, NOW)
    assert signal.payload["people"][0]["callback"] == "+1 (415) 555-0100"
    with pytest.raises(FormErrors) as caught:
        intake_signal(form(callback="radio ch 4"), "call", PATROL, REF, NOW)
    assert set(caught.value.errors) == {"callback"}
