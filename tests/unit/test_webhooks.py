"""Signed webhooks, the pure part: the Standard Webhooks signature (its published test
vector), what a subscription may be, which events it gets, the body, the backoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.webhooks import (
    WebhookSpec,
    backoff,
    body_of,
    check,
    headers,
    new_secret,
    sign,
    wants,
)


def test_the_signature_is_the_standard_webhooks_one():
    # The test vector published with the Standard Webhooks specification.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    got = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_delivery_names_its_event_its_time_and_signs_both():
    secret = new_secret()
    assert secret.startswith("whsec_") and secret != new_secret()
    h = headers(secret, 42, 1_700_000_000, b"{}")
    assert h["webhook-id"] == "evt_42" and h["webhook-timestamp"] == "1700000000"
    assert h["webhook-signature"] == sign(secret, "evt_42", 1_700_000_000, b"{}")
    assert sign(secret, "evt_42", 1_700_000_001, b"{}") != h["webhook-signature"]


@pytest.mark.parametrize(
    "spec",
    [
        {"url": "ftp://example.org/"},
        {"url": "http:///nohost"},
        {"url": "http://user:pw@example.org/"},
        {"url": "http://example.org:99999/"},
        {"url": "https://example.org/", "events": []},
        {"url": "https://example.org/", "events": ["incident.*", "incident.deleted"]},
        {"url": "https://example.org/", "description": "bell\x07"},
        {"url": "https://a\x00b"},
        {"url": "https://ex.invalid/\x1b"},
        {"url": "https://ex.invalid/\n"},
        {"url": "https://ex.invalid/\x85"},
        {"url": "https://ex.invalid/a b"},
        {"url": "https://ex.invalid/a\u00a0b"},
    ],
)
def test_a_subscription_that_cannot_work_is_refused(spec):
    with pytest.raises(InvalidField):
        check(WebhookSpec(**spec))


def test_a_subscription_gets_the_events_and_desks_it_asked_for():
    assert wants(["incident.*"], [], "incident.noted", ["west"])
    assert wants(["incident.opened"], ["west"], "incident.opened", ["east", "west"])
    assert not wants(["incident.opened"], [], "incident.noted", ["west"])
    assert not wants(["incident.*"], ["east"], "incident.opened", ["west"])


def test_the_body_keeps_what_happened_and_leaves_out_who_in_the_centre_did_it():
    event = {
        "id": 7,
        "incident_id": 3,
        "type": "incident.step_done",
        "at": datetime(2026, 12, 3, 12, 0, tzinfo=UTC),
        "detail": {"step": 0, "text": "Call the keyholder", "actor": "alice"},
        "snapshot": {
            "id": 3,
            "summary": "fire",
            "procedure": [{"by": "alice"}],
            "version": 4,
            "verification": {"verdict": "verified", "by": "alice", "at": "2026-12-03T12:01:00"},
        },
    }
    body = json.loads(body_of(event))
    assert body["type"] == "incident.step_done"
    assert body["timestamp"] == "2026-12-03T12:00:00+00:00"
    assert body["data"] == {
        "event_id": 7,
        "incident_id": 3,
        "detail": {"step": 0, "text": "Call the keyholder"},
        "incident": {
            "id": 3,
            "summary": "fire",
            "verification": {"verdict": "verified", "at": "2026-12-03T12:01:00"},
        },
    }


def test_backoff_doubles_up_to_its_cap():
    assert [backoff(n, 5, 60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


async def test_a_stored_url_no_client_can_send_is_given_up_at_once_and_logged_once(caplog):
    """A subscription stored before its URL was checked ("https://ex.invalid/\\x1b"): each
    event is given up on without an attempt, the cursor moves on, and the round logs one
    warning, no traceback (it was a traceback every 0.5 s, for ever)."""
    import logging

    import httpx

    from alarmdesk.service.webhooks import Deliverer, DelivererSettings

    now = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    recorded = []

    async def runner(action):
        recorded.append(action)

    settings = DelivererSettings(max_attempts=5, backoff_seconds=0.0, poll_seconds=0.0)
    deliverer = Deliverer(None, runner, lambda: now, settings)  # type: ignore[arg-type]
    events = [
        {"id": i, "incident_id": 1, "type": "incident.opened", "desks": ["west"], "at": now,
         "detail": {}, "snapshot": {}}
        for i in (1, 2, 3)
    ]  # fmt: skip
    deliverer._events_after = lambda cursor: [e for e in events if e["id"] > cursor]
    hook = {"id": 7, "url": "https://ex.invalid/\x1b", "events": ["incident.*"], "desks": [],
            "secret": new_secret()}  # fmt: skip
    sent = []
    transport = httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(204))
    try:
        with caplog.at_level(logging.WARNING, logger="alarmdesk.service.webhooks"):
            async with httpx.AsyncClient(transport=transport) as client:
                cursor = await deliverer._round(client, hook, 0)
    finally:
        deliverer._reads.shutdown()
    assert cursor == 3 and sent == [] and deliverer.attempts == 0
    assert len(recorded) == 3  # each event's failed attempt logged and the cursor moved
    logged = [r for r in caplog.records if r.name == "alarmdesk.service.webhooks"]
    assert len(logged) == 1 and logged[0].exc_info is None
    assert "cannot be sent" in logged[0].getMessage()
