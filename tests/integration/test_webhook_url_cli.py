"""`alarmdesk webhooks add` refuses a URL whose host no HTTP client can encode (malformed
punycode, a zero-width space) with one line and exit 2, and stores nothing: the same check as
the API's (``service.webhooks.check_spec``)."""

from __future__ import annotations

import pytest

from alarmdesk.store import tables as t
from tests.integration.test_cli import run
from tests.integration.test_cli_input import refused, rows

pytestmark = pytest.mark.slow  # runs the command line as a process


@pytest.mark.parametrize(
    "bad", ["http://xn--zz.example/x", "https://xn--a.example/hook", "http://exa\u200bmple.org/x"]
)
def test_a_webhook_url_whose_host_cannot_be_encoded_is_refused(url, bad) -> None:
    err = refused(run("webhooks", "add", bad, env_url=url))
    assert "invalid_value" in err and "url" in err
    assert len(err.strip().splitlines()) == 1, err
    assert rows(url, t.webhooks) == []


def test_a_webhook_url_with_an_internationalised_host_is_accepted(url) -> None:
    r = run("webhooks", "add", "https://münchen.example/hook", env_url=url)
    assert r.returncode == 0, r.stderr
    assert [w["url"] for w in rows(url, t.webhooks)] == ["https://münchen.example/hook"]
