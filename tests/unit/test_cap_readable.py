"""CAP in: a ``sent`` out of range is named by the same path as a schema error on it
(``/alert/sent``), and an alert whose headline and event hold only white space still gives a
readable incident summary (the event, else the category, else the identifier), never an empty
one or one starting with ". "."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alarmdesk.domain.errors import InvalidCap
from alarmdesk.domain.signal import validate
from alarmdesk.intake import cap

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def alert_xml(
    *,
    sent: str = "2026-11-25T09:00:00+01:00",
    category: str = "Fire",
    event: str = "Structure fire",
    headline: str = "Fire at the depot",
    description: str = "Keep windows closed.",
    identifier: str = "A-1",
    info: bool = True,
    msg_type: str = "Alert",
) -> bytes:
    block = f"""
  <info><category>{category}</category><event>{event}</event><urgency>Immediate</urgency>
    <severity>Severe</severity><certainty>Observed</certainty>
    <headline>{headline}</headline><description>{description}</description>
    <area><areaDesc>Harbour district</areaDesc><circle>52.37,4.89 2</circle></area></info>"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>{identifier}</identifier><sender>agency@example.org</sender>
  <sent>{sent}</sent><status>Actual</status><msgType>{msg_type}</msgType>
  <scope>Public</scope>{block if info else ""}
</alert>""".encode()


@pytest.mark.parametrize("sent", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"])
def test_a_sent_time_out_of_range_is_named_like_a_schema_error(sent: str) -> None:
    with pytest.raises(InvalidCap) as out_of_range:
        cap.parse(alert_xml(sent=sent))
    with pytest.raises(InvalidCap) as schema:
        cap.parse(alert_xml(sent="2026-11-25T09:00:00Z"))
    assert schema.value.field == "/alert/sent"
    assert out_of_range.value.field == "/alert/sent"
    assert "/cap:" not in out_of_range.value.message


def summary_of(body: bytes) -> str:
    alert = cap.parse(body)
    signal = validate(cap.to_signal(alert, cap.default_mapping(), cap.thread_of(alert, {})), NOW)
    return signal.summary or ""


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"headline": "   ", "event": "Storm"}, "Storm. Keep windows closed."),
        ({"headline": "   ", "event": "   "}, "Fire alert. Keep windows closed."),
        ({"headline": "   ", "event": "   ", "description": "  "}, "Fire alert"),
        ({"headline": "\u200b", "event": "\u200b\u00a0", "description": "  "}, "Fire alert"),
        ({"headline": "Fire at the depot", "description": "   "}, "Fire at the depot"),
        ({"headline": "", "event": "", "description": "desc"}, "Fire alert. desc"),
    ],
)
def test_a_blank_headline_and_event_fall_back_to_readable_text(
    fields: dict[str, str], expected: str
) -> None:
    assert summary_of(alert_xml(**fields)) == expected


def test_with_no_readable_text_at_all_the_identifier_is_the_summary() -> None:
    # A category is required by the schema, so the identifier is reached only without an info.
    assert summary_of(alert_xml(info=False, identifier="NL-2026-77")) == "CAP alert NL-2026-77"


@pytest.mark.parametrize(
    "fields",
    [
        {"headline": "   ", "event": "   "},
        {"headline": "   ", "event": "   ", "description": "   "},
        {"headline": "\u200b", "event": "\u200b"},
        {"info": False},
    ],
)
def test_a_summary_is_never_empty_nor_starts_with_a_full_stop(fields: dict[str, object]) -> None:
    summary = summary_of(alert_xml(**fields))  # type: ignore[arg-type]
    assert summary.strip() and not summary.startswith(".")
