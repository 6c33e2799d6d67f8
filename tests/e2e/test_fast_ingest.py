"""The ingest routes' raw-ASGI path (web/fast_ingest.py) answers exactly as Litestar did.

Two servers over two fresh databases: one with the raw path in front (as ``alarmdesk serve``
runs), one with Litestar alone (``create_app(fast_ingest=False)``). Each request is sent to
both, and the status, the error body and the response headers must be the same. A test also
checks that the raw path did answer the requests it should (else the comparison would prove
nothing), and that a revoked token stops working there as it does through Litestar.
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from alarmdesk.store import accounts
from alarmdesk.web import auth
from alarmdesk.web.fast_ingest import FastIngest
from tests.conftest import LiveServer, serve_live
from tests.conftest import test_config as config_for
from tests.e2e.test_bad_input import a_signal as valid_signal

pytestmark = pytest.mark.slow

_keys = itertools.count(1)
HEADERS_COMPARED = ("content-type", "content-length", "connection", "retry-after")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, LiveServer]]:
    tmp: Path = tmp_path_factory.mktemp("fast-ingest")
    with (
        serve_live(f"sqlite:///{tmp / 'fast.db'}") as fast,
        serve_live(f"sqlite:///{tmp / 'litestar.db'}", fast_ingest=False) as slow,
    ):
        assert isinstance(fast.app.asgi_handler, FastIngest)
        assert not isinstance(slow.app.asgi_handler, FastIngest)
        yield fast, slow


def a_signal(**changes: Any) -> dict[str, Any]:
    """test_bad_input's valid signal, with a key of its own (``None`` removes a field)."""
    return valid_signal(0, **{"idempotency_key": f"fast-{next(_keys)}", **changes})


def send(
    server: LiveServer,
    path: str,
    content: bytes | Iterator[bytes],
    who: str | None = "intake",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    h = {"content-type": "application/json", **(headers or {})}
    if who is not None:
        h.update(server.headers(who))
    return httpx.post(server.url + path, content=content, headers=h, timeout=30)


def both(
    pair: tuple[LiveServer, LiveServer], path: str, body: bytes, **kw: Any
) -> tuple[httpx.Response, httpx.Response]:
    fast, slow = pair
    return send(fast, path, body, **kw), send(slow, path, body, **kw)


def assert_same(a: httpx.Response, b: httpx.Response) -> None:
    assert a.status_code == b.status_code, (a.text, b.text)
    for name in HEADERS_COMPARED:
        if name == "content-length" and a.status_code == 202:
            continue  # ids and times in a receipt may differ in length between the servers
        assert a.headers.get(name) == b.headers.get(name), name
    assert a.headers.get("x-request-id") and b.headers.get("x-request-id")
    if a.status_code == 202:
        strip = ("signal_id", "incident_id", "received_at")
        ja, jb = a.json(), b.json()
        for receipt_a, receipt_b in zip(
            ja.get("receipts", [ja]), jb.get("receipts", [jb]), strict=True
        ):
            assert {k: v for k, v in receipt_a.items() if k not in strip} == {
                k: v for k, v in receipt_b.items() if k not in strip
            }
    else:
        assert a.json() == b.json()


def enc(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_a_good_signal_and_batch_are_answered_by_the_raw_path_as_by_litestar(pair) -> None:
    fast = pair[0].app.asgi_handler
    before = fast.answered
    assert_same(*both(pair, "/api/v1/signals", enc(a_signal())))
    batch = {"signals": [a_signal(), a_signal(source_id="caller-2")]}
    assert_same(*both(pair, "/api/v1/signals/batch", enc(batch)))
    key = f"hdr-{next(_keys)}"
    assert_same(
        *both(
            pair,
            "/api/v1/signals",
            enc(a_signal(idempotency_key=None)),
            headers={"Idempotency-Key": key},
        )
    )
    assert fast.answered == before + 3


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/api/v1/signals", b"{", id="bad JSON"),
        pytest.param("/api/v1/signals", b"", id="empty body"),
        pytest.param("/api/v1/signals", b"\xff\xfe\x00", id="not UTF-8"),
        pytest.param(
            "/api/v1/signals", enc(a_signal(summary="smoke\u0000here")), id="NUL in a text"
        ),
        pytest.param("/api/v1/signals", enc(a_signal(type_code=None)), id="missing field"),
        pytest.param("/api/v1/signals", enc([a_signal()]), id="an array, not an object"),
        pytest.param(
            "/api/v1/signals/batch",
            enc({"signals": [a_signal(), a_signal(location={"lat": 91, "lon": 0})]}),
            id="batch with one bad signal",
        ),
        pytest.param("/api/v1/signals/batch", enc({"signals": []}), id="empty batch"),
        pytest.param("/api/v1/signals/batch", enc(a_signal()), id="batch without signals"),
    ],
)
def test_bad_bodies_get_litestars_answer(pair, path: str, body: bytes) -> None:
    fast = pair[0].app.asgi_handler
    before = fast.answered
    assert_same(*both(pair, path, body))
    assert fast.answered == before  # handed to Litestar, not answered by the raw path


def test_an_oversize_body_gets_413_by_length_and_when_chunked(pair) -> None:
    big = enc(a_signal(payload={"x": "y" * 70_000}))
    assert_same(*both(pair, "/api/v1/signals", big))

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    fast, slow = pair
    a = send(fast, "/api/v1/signals", chunks())
    b = send(slow, "/api/v1/signals", chunks())
    assert a.status_code == 413
    assert_same(a, b)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/xml"]
)
def test_a_wrong_content_type_is_treated_as_litestar_treats_it(pair, content_type: str) -> None:
    body = enc(a_signal())
    fast, slow = pair
    a = send(fast, "/api/v1/signals", body, headers={"content-type": content_type})
    b = send(slow, "/api/v1/signals", body, headers={"content-type": content_type})
    assert_same(a, b)


@pytest.mark.parametrize(
    ("who", "headers"),
    [
        pytest.param(None, {}, id="no credentials"),
        pytest.param(None, {"Authorization": "Bearer nope"}, id="unknown token"),
        pytest.param(None, {"Authorization": "Basic abc"}, id="not a bearer"),
        pytest.param("auditor", {}, id="a role that may not submit"),
    ],
)
def test_refused_credentials_get_litestars_answer(pair, who, headers) -> None:
    assert_same(*both(pair, "/api/v1/signals", enc(a_signal()), who=who, headers=headers))


def test_idempotency_rules_hold_on_the_raw_path(pair) -> None:
    body = a_signal()
    # header and body keys that differ; a header key too long
    for headers in ({"Idempotency-Key": "other"}, {"Idempotency-Key": "k" * 201}):
        assert_same(*both(pair, "/api/v1/signals", enc(body), headers=headers))
    # a repeat returns the first receipt; the same key with other content is a 409
    fast, slow = pair
    for server in (fast, slow):
        first = send(server, "/api/v1/signals", enc(body))
        again = send(server, "/api/v1/signals", enc(body))
        assert first.status_code == again.status_code == 202
        assert first.json() == again.json()
    changed = enc({**body, "summary": "something else"})
    before = fast.app.asgi_handler.answered
    a, b = send(fast, "/api/v1/signals", changed), send(slow, "/api/v1/signals", changed)
    assert a.status_code == 409
    assert_same(a, b)
    assert fast.app.asgi_handler.answered == before + 1  # the writer's refusal, answered raw


def test_a_token_revoked_mid_run_stops_working_on_the_raw_path(
    pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "CACHE_SECONDS", 0.3)
    answers = {}
    for server in pair:
        engine = server.services.engine
        with engine.begin() as conn:
            token_id, secret = accounts.create_token(
                conn, f"revoked-{next(_keys)}", "intake", [], datetime.now(UTC)
            )
        h = {"Authorization": f"Bearer {secret}", "content-type": "application/json"}
        url = server.url + "/api/v1/signals"
        assert httpx.post(url, content=enc(a_signal()), headers=h).status_code == 202
        with engine.begin() as conn:
            assert accounts.revoke_token(conn, token_id, datetime.now(UTC))
        deadline = time.monotonic() + 5
        while True:  # signals keep coming; the cache lets the token live at most 0.3 s more
            r = httpx.post(url, content=enc(a_signal()), headers=h)
            if r.status_code != 202 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        answers[server.url] = r
    a, b = answers.values()
    assert a.status_code == 401
    assert_same(a, b)


def test_a_half_sent_body_gets_the_same_408(tmp_path: Path) -> None:
    def half_sent(server: LiveServer) -> tuple[int, dict[str, str], Any]:
        port = int(server.url.rsplit(":", 1)[1])
        head = (
            "POST /api/v1/signals HTTP/1.1\r\nHost: alarmdesk\r\n"
            f"Authorization: Bearer {server.tokens['intake']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(head + b'{"source_kind": "call", ')
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        head_part, body = received.split(b"\r\n\r\n", 1)
        lines = head_part.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        return int(lines[0].split(" ")[1]), headers, json.loads(body)

    answers = []
    for name, fast in (("fast", True), ("litestar", False)):
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
        cfg = config_for(url)
        cfg.server.body_timeout_seconds = 0.5
        with serve_live(url, cfg, fast_ingest=fast) as server:
            answers.append(half_sent(server))
    (s1, h1, b1), (s2, h2, b2) = answers
    assert s1 == s2 == 408
    assert b1 == b2 and b1["error"]["code"] == "request_timeout"
    for name in ("content-type", "connection"):
        assert h1.get(name) == h2.get(name), name
    assert h1.get("x-request-id") and h2.get("x-request-id")
