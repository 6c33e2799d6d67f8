"""Texts at the edges of the API that end up in the audit log: a search's or an export's
justification (``safeguards.audit.check_justification``) and an export's recipient
(``service.sharing.check_recipient``). Held to the one text rule (no control or bidi
characters) and to the one rule of blank (white space and invisible characters say nothing)."""

from __future__ import annotations

import pytest

from alarmdesk.domain.errors import InvalidField, JustificationRequired
from alarmdesk.safeguards.audit import check_justification
from alarmdesk.service.sharing import check_recipient


@pytest.mark.parametrize(
    "text",
    [
        "\x00\x00\x00\x00\x00\x00abc",
        "\x1b[31mred\x1b[0m",
        "\u202e\u200b\u200b\u200b\u200b\u200b",
        "annual check\u2066",
        "line one\nline two",
        "rea\x85son",
    ],
)
@pytest.mark.parametrize("required", [True, False])
def test_a_justification_with_a_control_or_bidi_character_is_refused_naming_it(
    text: str, required: bool
) -> None:
    with pytest.raises(InvalidField) as err:
        check_justification(text, required=required)
    assert (err.value.code, err.value.field) == ("invalid_value", "justification")


@pytest.mark.parametrize(
    "text",
    [None, "", "        ", "\u200b" * 6, "a\u200bb\u200bc\u200bd", " ab  c "],
)
def test_a_justification_needs_five_characters_that_show(text: str | None) -> None:
    with pytest.raises(JustificationRequired) as err:
        check_justification(text, required=True)
    assert err.value.field == "justification"
    assert check_justification(text, required=False) == (text or "").strip()


def test_a_justification_is_kept_as_written_without_its_outer_spaces() -> None:
    assert check_justification("  annual report check ", required=True) == "annual report check"
    assert check_justification("проверка", required=True) == "проверка"
    assert check_justification("\u200fفحص سنوي", required=True) == "\u200fفحص سنوي"


@pytest.mark.parametrize("text", ["\u200b", " \u2060 ", "\ufeff\u200d", "\u200b\u3000"])
def test_a_recipient_of_only_invisible_characters_is_missing(text: str) -> None:
    with pytest.raises(InvalidField) as err:
        check_recipient(text)
    assert (err.value.code, err.value.field) == ("missing_field", "recipient")


@pytest.mark.parametrize("text", ["Fire\u202eevil", "\u2067Fire Brigade\u2069", "Fire\x1b[0m"])
def test_a_recipient_with_a_bidi_or_control_character_is_refused(text: str) -> None:
    with pytest.raises(InvalidField) as err:
        check_recipient(text)
    assert (err.value.code, err.value.field) == ("invalid_value", "recipient")


def test_a_recipient_is_kept_as_written() -> None:
    assert check_recipient(" Fire Brigade West ") == "Fire Brigade West"
    assert check_recipient("\u200fالدفاع المدني") == "\u200fالدفاع المدني"
