"""Webhooks over HTTP: a URL whose host no HTTP client can encode is refused with 422
invalid_value naming ``url`` (it was accepted, then looped on a traceback at delivery), and
each delivered event is a disclosure naming its recipient, which the transparency report
counts by."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer

import pytest

from tests.conftest import LiveServer, serve_live
from tests.conftest import test_config as config_for
from tests.e2e.test_webhooks import Receiver, cursor_of, events, signal, until

pytestmark = pytest.mark.slow  # serves alarmdesk and a receiver


@pytest.fixture
def live(sqlite_url: str) -> Iterator[LiveServer]:
    cfg = config_for(sqlite_url)
    cfg.webhooks.backoff_seconds = 0.05
    cfg.webhooks.poll_seconds = 0.05
    with serve_live(sqlite_url, cfg) as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), got.handler())
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alarmdesk?key=abc"
    yield got
    server.shutdown()
    server.server_close()


def test_a_url_whose_host_cannot_be_encoded_is_refused_naming_url(live: LiveServer) -> None:
    with live.client("admin") as admin:
        for bad in [
            "http://xn--zz.example/x",
            "https://xn--a.example/hook",
            "http://exa\u200bmple.org/",
        ]:
            answer = admin.post("/api/v1/webhooks", json={"url": bad, "description": "probe"})
            assert answer.status_code == 422, (bad, answer.text)
            error = answer.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_value", "url"), answer.text
        assert admin.get("/api/v1/webhooks").json() == []
        ok = admin.post("/api/v1/webhooks", json={"url": "https://münchen.example/hook"})
        assert ok.status_code == 201, ok.text


def test_the_transparency_report_names_who_received_each_delivery(
    live: LiveServer, receiver: Receiver
) -> None:
    with live.client("admin") as admin:
        made = admin.post("/api/v1/webhooks", json={"url": receiver.url, "description": "CAD"})
        assert made.status_code == 201, made.text
    for i in range(3):
        live.post_signal(signal(i, west=True))
    last = max(e["id"] for e in events(live))
    until(lambda: cursor_of(live, made.json()["id"]) >= last)
    day = datetime.now(UTC).date().isoformat()
    with live.client("auditor") as auditor:
        report = auditor.get("/api/v1/reports/transparency", params={"from": day, "to": day})
    assert report.status_code == 200, report.text
    by_recipient = report.json()["sharing"]["disclosures_by_recipient"]
    assert "CAD (127.0.0.1)" in by_recipient, by_recipient
    assert "incident" not in by_recipient  # no longer counted under the object type
