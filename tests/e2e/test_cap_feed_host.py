"""The public CAP Atom feed is not poisoned by the request's Host header: with ``[cap]
public_url`` set, its id and links are built from it whatever Host says; without it they are
built from the request, and the answer says so to caches (``Vary: Host``, ``Cache-Control:
no-cache``), so a shared cache or CDN never hands one Host's links to another's readers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from alarmdesk.intake import cap
from tests.conftest import LiveServer, serve_live
from tests.conftest import test_config as config_for

pytestmark = pytest.mark.slow  # serves alarmdesk

PUBLIC = "https://warnings.centre.example.org/alarmdesk"


def publish(live: LiveServer) -> str:
    incident_id = live.post_signal(
        {
            "source_kind": "call",
            "source_id": "ct",
            "type_code": "HAZMAT",
            "occurred_at": datetime.now(UTC).isoformat(),
            "location": {"lat": 51.5, "lon": -0.12, "address": "Dock road 4"},
        }
    ).json()["incident_id"]
    with live.client("supervisor") as sup:
        made = sup.post(
            "/api/v1/cap/alerts",
            json={"incident_id": incident_id, "event": "Chemical release", "headline": "Stay in"},
        )
    assert made.status_code == 201, made.text
    return str(made.json()["identifier"])


def feed(live: LiveServer, host: str | None = None) -> httpx.Response:
    headers = {"Host": host} if host else {}
    answer = httpx.get(f"{live.url}/api/v1/cap/feed.atom", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer


@pytest.fixture
def configured(sqlite_url: str) -> Iterator[LiveServer]:
    cfg = config_for(sqlite_url)
    cfg.cap.public_url = PUBLIC + "/"  # a trailing slash is dropped
    with serve_live(sqlite_url, cfg) as server:
        yield server


def test_with_a_public_url_the_host_header_changes_nothing(configured: LiveServer) -> None:
    identifier = publish(configured)
    honest, forged = feed(configured), feed(configured, "evil.example")
    assert honest.content == forged.content
    assert b"evil.example" not in forged.content
    assert f"<id>{PUBLIC}/api/v1/cap/feed.atom</id>".encode() in forged.content
    assert f'href="{PUBLIC}/api/v1/cap/feed.atom"'.encode() in forged.content
    [entry] = cap.parse_feed(forged.content)
    assert entry.link == f"{PUBLIC}/api/v1/cap/alerts/{identifier}.xml"
    assert "no-cache" in forged.headers.get("cache-control", "")


def test_without_one_the_feed_tells_caches_it_varies_by_host(live_server: LiveServer) -> None:
    identifier = publish(live_server)
    answer = feed(live_server)
    [entry] = cap.parse_feed(answer.content)
    assert entry.link == f"{live_server.url}/api/v1/cap/alerts/{identifier}.xml"
    assert "host" in answer.headers.get("vary", "").lower()
    assert "no-cache" in answer.headers.get("cache-control", "")
    forged = feed(live_server, "evil.example")
    assert "host" in forged.headers.get("vary", "").lower()


def test_a_public_url_that_is_not_an_http_url_is_a_configuration_error(tmp_path) -> None:
    from alarmdesk import config
    from alarmdesk.domain.errors import ConfigError

    path = tmp_path / "alarmdesk.toml"
    for bad in ["ftp://x.example", "warnings.example.org", "https://x.example/a b", "https://"]:
        path.write_text(f'[cap]\npublic_url = "{bad}"\n')
        with pytest.raises(ConfigError):
            config.load(path, {})
    path.write_text(f'[cap]\npublic_url = "{PUBLIC}"\n')
    assert config.load(path, {}).cap.public_url == PUBLIC
