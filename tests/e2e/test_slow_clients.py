"""Raw sockets against a real server built as ``alarmdesk serve`` builds it
(``web/server.py``).

Slow and half-sent requests: a client that connects and says nothing, sends half its headers
or half its body, or idles after a response is disconnected within the ``[server]``
timeouts; a client that is merely slow, or a stream that stays open, is not. And every
answer reaches the client as one TCP segment, head and body together (``HeadWithBody``),
counted by the client's own kernel."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from alarmdesk.bootstrap import build_services
from alarmdesk.web.app import create_app
from alarmdesk.web.server import uvicorn_server
from tests.conftest import create_test_tokens, free_port, prepare_database
from tests.conftest import test_config as config_for
from tests.e2e.test_bad_input import a_signal as valid_signal

pytestmark = pytest.mark.slow  # every test here starts a server

TIMEOUT = 0.6  # every [server] timeout of the test server, in seconds
GRACE = 2.0  # how much later than its timeout a disconnection may come


@dataclass
class Server:
    port: int
    tokens: dict[str, str]

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.settimeout(TIMEOUT + GRACE + 3)
        return sock


@pytest.fixture
def server(sqlite_url: str) -> Iterator[Server]:
    prepare_database(sqlite_url)
    tokens = create_test_tokens(sqlite_url)
    cfg = config_for(sqlite_url)
    cfg.server.port = free_port()
    cfg.server.header_timeout_seconds = TIMEOUT
    cfg.server.body_timeout_seconds = TIMEOUT
    cfg.server.keep_alive_seconds = TIMEOUT
    server = uvicorn_server(create_app(svc=build_services(cfg)), cfg, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield Server(cfg.server.port, tokens)
    server.should_exit = True
    thread.join(10)


def read_until_closed(sock: socket.socket) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed."""
    start = time.monotonic()
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received, time.monotonic() - start


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def error_code(response: bytes) -> str:
    body = response.split(b"\r\n\r\n", 1)[1]
    return str(json.loads(body)["error"]["code"])


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(server) -> None:
    with server.connect() as sock:
        _, after = read_until_closed(sock)
    assert after < TIMEOUT + GRACE


def test_half_sent_headers_get_408_and_the_connection_is_closed(server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: alarmdesk\r\nAccept: app")
        response, after = read_until_closed(sock)
    assert after < TIMEOUT + GRACE
    assert status_of(response) == 408, response
    assert error_code(response) == "request_timeout"


def test_headers_dripped_a_byte_at_a_time_are_cut_off_at_the_header_timeout(server) -> None:
    request = b"GET /api/v1/health HTTP/1.1\r\nHost: alarmdesk\r\n" + b"X-Slow: " + b"a" * 200
    start = time.monotonic()
    with server.connect() as sock:
        try:
            for byte in request:  # never idle for long, but never done either
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        response, _ = read_until_closed(sock)
    assert time.monotonic() - start < TIMEOUT + GRACE + 1
    assert response == b"" or status_of(response) == 408, response


def test_a_half_sent_body_gets_408_and_the_connection_is_closed(server) -> None:
    head = (
        "POST /api/v1/signals HTTP/1.1\r\nHost: alarmdesk\r\n"
        f"Authorization: Bearer {server.tokens['intake']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 400\r\n\r\n"
    ).encode()
    with server.connect() as sock:
        sock.sendall(head + b'{"source_kind": "call", ')
        response, after = read_until_closed(sock)
    assert after < TIMEOUT + GRACE
    assert status_of(response) == 408, response
    assert error_code(response) == "request_timeout"
    assert b"connection: close" in response.lower()


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(server) -> None:
    with server.connect() as sock:
        sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: alarmdesk\r\n\r\n")
        response, after = read_until_closed(sock)
    assert status_of(response) == 200, response
    assert after < TIMEOUT + GRACE


def test_a_slow_but_complete_request_is_answered(server) -> None:
    with server.connect() as sock:
        for part in (b"GET /api/v1/health HTTP/1.1\r\n", b"Host: alarmdesk\r\n", b"\r\n"):
            sock.sendall(part)
            time.sleep(TIMEOUT / 4)
        response = sock.recv(65536)
    assert status_of(response) == 200, response


def test_an_open_event_stream_outlives_every_timeout(server) -> None:
    with server.connect() as sock:
        sock.sendall(
            b"GET /api/v1/stream HTTP/1.1\r\nHost: alarmdesk\r\n"
            + f"Authorization: Bearer {server.tokens['operator']}\r\n\r\n".encode()
        )
        time.sleep(3 * TIMEOUT)
        received = b""
        deadline = time.monotonic() + 3
        while b": keep-alive" not in received and time.monotonic() < deadline:
            received += sock.recv(65536)
    assert status_of(received) == 200, received
    assert b": keep-alive" in received  # still open, still beating


def data_segments_in(sock: socket.socket) -> int:
    """Segments carrying data this socket has received (Linux ``tcpi_data_segs_in``)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    assert len(info) >= 156, "this kernel's TCP_INFO has no tcpi_data_segs_in (Linux >= 4.6)"
    return int(struct.unpack_from("I", info, 152)[0])


def read_answer(sock: socket.socket) -> bytes:
    """One whole answer with a Content-Length body."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_every_answer_is_one_segment_head_and_body_together(server) -> None:
    signal = json.dumps(valid_signal(0, summary="<b>smoke</b> in the stairwell"))
    auth = f"Authorization: Bearer {server.tokens['intake']}\r\n"
    requests = {
        "health": "GET /api/v1/health HTTP/1.1\r\nHost: alarmdesk\r\n\r\n",
        "a stored signal (the raw route)": (
            f"POST /api/v1/signals HTTP/1.1\r\nHost: alarmdesk\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {len(signal)}\r\n\r\n{signal}"
        ),
        "a refused signal (Litestar)": (
            f"POST /api/v1/signals HTTP/1.1\r\nHost: alarmdesk\r\n{auth}"
            'Content-Type: application/json\r\nContent-Length: 4\r\n\r\n{"a"'
        ),
        "no such route": "GET /api/v1/nothing-here HTTP/1.1\r\nHost: alarmdesk\r\n\r\n",
    }
    with server.connect() as sock:
        statuses = {}
        for name, request in requests.items():
            before = data_segments_in(sock)
            sock.sendall(request.encode())
            answer = read_answer(sock)
            time.sleep(0.1)  # anything sent apart from the rest has arrived by now
            statuses[name] = status_of(answer)
            assert data_segments_in(sock) - before == 1, (name, answer)
    assert statuses == {
        "health": 200,
        "a stored signal (the raw route)": 202,
        "a refused signal (Litestar)": 400,
        "no such route": 404,
    }
