"""Webhook URLs no HTTP client can send to (a host httpx cannot encode: malformed punycode, a
zero-width space) are refused at subscription, and one stored before that rule is given up at
delivery with one warning, never a traceback loop. Each delivery's disclosure names its
recipient, so the transparency report says who received the data."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.webhooks import WebhookSpec, new_secret
from alarmdesk.safeguards.audit import entry_of
from alarmdesk.safeguards.transparency import AuditFigures
from alarmdesk.service import webhooks
from alarmdesk.service.webhooks import Deliverer, DelivererSettings

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)

UNENCODABLE = [
    "http://xn--zz.example/x",  # malformed punycode: "incomplete punicode string"
    "https://xn--a.example/hook",  # decodes to U+0080
    "http://exa\u200bmple.org/",  # a zero-width space in the host
    "http://exa\u200bmple.org/x",
]


@pytest.mark.parametrize("url", UNENCODABLE)
def test_a_url_whose_host_no_client_can_encode_is_refused_naming_url(url: str) -> None:
    with pytest.raises(InvalidField) as err:
        webhooks.check_spec(WebhookSpec(url=url))
    assert err.value.field == "url" and err.value.code == "invalid_value"
    assert "\n" not in err.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://cad.example.org/hooks/alarmdesk?key=abc",
        "http://127.0.0.1:8080/hook",
        "http://[::1]:8080/hook",
        "https://münchen.example/hook",  # an internationalised name, encoded as IDNA
        "https://xn--mnchen-3ya.example/hook",  # the same, already in punycode
        "HTTPS://CAD.EXAMPLE.ORG/",
    ],
)
def test_a_url_a_client_can_send_to_is_accepted(url: str) -> None:
    webhooks.check_spec(WebhookSpec(url=url))


def test_the_subscription_action_uses_the_same_check() -> None:
    """``create`` (the API's and the command line's one way in) refuses such a URL."""
    action = webhooks.create(
        webhooks.Actor("cli:test", "operator_of_machine"), WebhookSpec(url=UNENCODABLE[0])
    )
    with pytest.raises(InvalidField) as err:
        action.apply(None, NOW)  # type: ignore[arg-type]  # refused before the database
    assert err.value.field == "url"


def _events(n: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "incident_id": 1, "type": "incident.opened", "desks": ["west"], "at": NOW,
         "detail": {}, "snapshot": {}}
        for i in range(1, n + 1)
    ]  # fmt: skip


@pytest.mark.parametrize("url", UNENCODABLE)
async def test_a_stored_url_with_a_host_no_client_can_encode_is_given_up_once(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored before the rule: every event is given up on without an attempt, the cursor moves
    on, one warning, no traceback (it was a traceback twice a second, for ever)."""
    recorded: list[Any] = []

    async def runner(action: Any) -> None:
        recorded.append(action)

    settings = DelivererSettings(max_attempts=5, backoff_seconds=0.0, poll_seconds=0.0)
    deliverer = Deliverer(None, runner, lambda: NOW, settings)  # type: ignore[arg-type]
    events = _events(3)
    deliverer._events_after = lambda cursor: [e for e in events if e["id"] > cursor]  # type: ignore[method-assign]
    hook = {"id": 7, "url": url, "events": ["incident.*"], "desks": [], "secret": new_secret(),
            "description": ""}  # fmt: skip
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204))
    try:
        with caplog.at_level(logging.WARNING, logger="alarmdesk.service.webhooks"):
            async with httpx.AsyncClient(transport=transport) as client:
                cursor = await deliverer._round(client, hook, 0)
    finally:
        deliverer._reads.shutdown()
    assert cursor == 3 and sent == [] and deliverer.attempts == 0
    assert len(recorded) == 3
    logged = [r for r in caplog.records if r.name == "alarmdesk.service.webhooks"]
    assert len(logged) == 1 and logged[0].exc_info is None
    assert "cannot be sent" in logged[0].getMessage()


async def test_an_error_building_the_request_is_given_up_not_looped(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever else building a request for a stored URL raises is handled the same way: the
    event is given up on once, with one warning and no traceback."""
    recorded: list[Any] = []

    async def runner(action: Any) -> None:
        recorded.append(action)

    def broken(*args: Any, **kwargs: Any) -> httpx.Request:
        raise IndexError("string index out of range")

    settings = DelivererSettings(max_attempts=5, backoff_seconds=0.0, poll_seconds=0.0)
    deliverer = Deliverer(None, runner, lambda: NOW, settings)  # type: ignore[arg-type]
    events = _events(2)
    deliverer._events_after = lambda cursor: [e for e in events if e["id"] > cursor]  # type: ignore[method-assign]
    hook = {"id": 8, "url": "https://cad.example.org/", "events": ["incident.*"], "desks": [],
            "secret": new_secret(), "description": ""}  # fmt: skip
    transport = httpx.MockTransport(lambda r: httpx.Response(204))
    try:
        with caplog.at_level(logging.WARNING, logger="alarmdesk.service.webhooks"):
            async with httpx.AsyncClient(transport=transport) as client:
                monkeypatch.setattr(client, "build_request", broken)
                monkeypatch.setattr(webhooks, "_unsendable", lambda url: None)
                cursor = await deliverer._round(client, hook, 0)
    finally:
        deliverer._reads.shutdown()
    assert cursor == 2 and deliverer.attempts == 0 and len(recorded) == 2
    logged = [r for r in caplog.records if r.name == "alarmdesk.service.webhooks"]
    assert logged and all(r.exc_info is None for r in logged)
    assert len(logged) == 1


def _disclosure(hook: dict[str, Any], event_id: int) -> dict[str, Any]:
    event = {"id": event_id, "incident_id": 40 + event_id}
    action = webhooks._record(hook, event, [], event_id, delivered=True)
    [ev] = action.audit_of(None, None)
    return entry_of(event_id, NOW, ev)


def test_a_delivery_names_its_recipient_and_the_report_counts_by_it() -> None:
    cad = {"id": 1, "url": "https://cad.example.org/hooks?key=secret", "description": "County CAD"}
    pager = {"id": 2, "url": "http://10.0.0.5:8080/page", "description": ""}
    entries = [_disclosure(cad, i) for i in range(1, 7)] + [_disclosure(pager, 7)]
    assert entries[0]["detail"]["recipient"] == "County CAD (cad.example.org)"
    assert entries[0]["detail"]["host"] == "cad.example.org"
    assert entries[-1]["detail"]["recipient"] == "10.0.0.5"
    assert not any("key=secret" in str(e) or "/hooks" in str(e) for e in entries)
    figures = AuditFigures()
    for e in entries:
        figures.add(e)
    assert figures.sharing()["disclosures_by_recipient"] == {
        "10.0.0.5": "<5",
        "County CAD (cad.example.org)": 6,
    }


async def test_a_round_that_keeps_failing_waits_longer_each_time_with_one_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The database down, say: a traceback every half second for as long as it lasted. Now
    one traceback, then a line a try, the tries ever later up to a minute apart."""
    from alarmdesk.service import webhooks

    async def runner(action: Any) -> None:
        raise AssertionError("nothing is recorded")

    deliverer = Deliverer(None, runner, lambda: NOW, DelivererSettings(poll_seconds=0.5))  # type: ignore[arg-type]

    async def failing(client: Any, hook: Any, cursor: int) -> int:
        raise RuntimeError("database down")

    deliverer._round = failing  # type: ignore[method-assign]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 9:
            raise asyncio.CancelledError

    monkeypatch.setattr(webhooks.asyncio, "sleep", sleep)
    hook = {"id": 7, "url": "https://cad.example.org/hook", "cursor": 0}
    try:
        with (
            caplog.at_level(logging.WARNING, logger="alarmdesk.service.webhooks"),
            pytest.raises(asyncio.CancelledError),
        ):
            await deliverer._worker(hook)
    finally:
        deliverer._reads.shutdown()
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    logged = [r for r in caplog.records if r.name == "alarmdesk.service.webhooks"]
    assert len(logged) == 9 and sum(1 for r in logged if r.exc_info) == 1
