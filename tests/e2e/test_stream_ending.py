"""An open event stream ends with the credential that opened it: a token revoked (here or by
another process, the command line), a session signed out or expired. Sign-out ends it at
once; what another process does is found by the periodic re-check (``[stream]
recheck_seconds``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from alarmdesk.store import accounts
from alarmdesk.store import tables as t
from tests.conftest import REPO_ROOT, TEST_PASSWORD, LiveServer
from tests.e2e.test_stream import body

STREAM = "/api/v1/stream"


class OpenStream:
    """Reads a stream in a thread and notes when the server ends it."""

    def __init__(self, server: LiveServer, headers: dict[str, str], cookies=None) -> None:
        self.events: list[str] = []
        self.ended = threading.Event()
        self.status = 0
        self._connected = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(server.url, headers, cookies), daemon=True
        )
        self._thread.start()
        assert self._connected.wait(5), "the stream did not connect"
        assert self.status == 200, self.status

    def _run(self, url: str, headers: dict[str, str], cookies) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=60), cookies=cookies) as client,
                client.stream("GET", url + STREAM, headers=headers) as r,
            ):
                self.status = r.status_code
                self._connected.set()
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        self.events.append(line[7:])
        except httpx.HTTPError:
            pass
        finally:
            self._connected.set()
            self.ended.set()

    def wait_for_event(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.events:
            assert time.monotonic() < deadline, "no event arrived"
            time.sleep(0.02)


def a_token(server: LiveServer, role: str = "operator") -> tuple[int, str]:
    with server.services.engine.begin() as conn:
        return accounts.create_token(conn, f"stream-{role}", role, ["*"], datetime.now(UTC))


def a_user(server: LiveServer, name: str = "olga") -> None:
    with server.services.engine.begin() as conn:
        accounts.create_user(conn, name, TEST_PASSWORD, "operator", ["*"], datetime.now(UTC))


def signed_in(server: LiveServer, name: str = "olga") -> tuple[httpx.Cookies, str]:
    r = httpx.post(server.url + "/api/v1/session", json={"name": name, "password": TEST_PASSWORD})
    assert r.status_code == 200, r.text
    return r.cookies, r.json()["csrf_token"]


def revoke_from_the_command_line(server: LiveServer, token_id: int, tmp_path: Path) -> None:
    cfg = server.services.config
    toml = tmp_path / "alarmdesk.toml"
    toml.write_text(
        f'[database]\nurl = "{cfg.database.url}"\n[audit]\nkey_file = "{cfg.audit.key_file}"\n'
    )
    env = {
        **os.environ,
        "ALARMDESK_CONFIG": str(toml),
        "PYTHONPATH": str(REPO_ROOT / "src"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", "tokens", "revoke", str(token_id)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_a_token_revoked_from_the_command_line_ends_its_open_stream_within_the_recheck(
    live_server: LiveServer, tmp_path: Path
) -> None:
    live_server.services.config.stream.recheck_seconds = 0.5
    token_id, secret = a_token(live_server)
    revoked = OpenStream(live_server, {"Authorization": f"Bearer {secret}"})
    other = OpenStream(live_server, live_server.headers("operator"))
    revoke_from_the_command_line(live_server, token_id, tmp_path)
    assert revoked.ended.wait(3), "the revoked token's stream is still open"
    assert live_server.post_signal(body("after-revoke")).status_code == 202
    other.wait_for_event()
    assert not other.ended.is_set(), "another credential's stream ended too"
    assert revoked.events == []


def test_signing_out_ends_the_sessions_open_stream_at_once(live_server: LiveServer) -> None:
    live_server.services.config.stream.recheck_seconds = 600  # the hub ends it, not the recheck
    a_user(live_server)
    cookies, csrf = signed_in(live_server)
    second_cookies, _ = signed_in(live_server)  # the same person at another console
    stream = OpenStream(live_server, {}, cookies)
    other = OpenStream(live_server, {}, second_cookies)
    r = httpx.delete(
        live_server.url + "/api/v1/session", cookies=cookies, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 200, r.text
    assert stream.ended.wait(1), "the signed-out session's stream is still open"
    assert live_server.post_signal(body("after-sign-out")).status_code == 202
    other.wait_for_event()
    assert not other.ended.is_set(), "the person's other session lost its stream"
    assert stream.events == []


def test_a_session_that_expires_ends_its_open_stream_within_the_recheck(
    live_server: LiveServer,
) -> None:
    live_server.services.config.stream.recheck_seconds = 0.5
    a_user(live_server)
    cookies, _ = signed_in(live_server)
    stream = OpenStream(live_server, {}, cookies)
    with live_server.services.engine.begin() as conn:
        conn.execute(
            sa.update(t.sessions).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert stream.ended.wait(3), "the expired session's stream is still open"


def test_a_stream_whose_credential_holds_stays_open_past_the_recheck(
    live_server: LiveServer,
) -> None:
    live_server.services.config.stream.recheck_seconds = 0.2
    stream = OpenStream(live_server, live_server.headers("operator"))
    time.sleep(1.0)
    assert live_server.post_signal(body("still-open")).status_code == 202
    stream.wait_for_event()
    assert not stream.ended.is_set()


def test_signing_out_ends_the_consoles_incident_stream_too(live_server: LiveServer) -> None:
    live_server.services.config.stream.recheck_seconds = 600
    incident = live_server.post_signal(body("console-stream")).json()["incident_id"]
    a_user(live_server)
    cookies, csrf = signed_in(live_server)
    ended = threading.Event()
    connected = threading.Event()

    def read() -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=60), cookies=cookies) as client,
                client.stream("GET", f"{live_server.url}/incidents/{incident}/events") as r,
            ):
                assert r.status_code == 200
                connected.set()
                for _ in r.iter_bytes():
                    pass
        finally:
            connected.set()
            ended.set()

    threading.Thread(target=read, daemon=True).start()
    assert connected.wait(5)
    time.sleep(0.2)
    r = httpx.delete(
        live_server.url + "/api/v1/session", cookies=cookies, headers={"X-CSRF-Token": csrf}
    )
    assert r.status_code == 200, r.text
    assert ended.wait(1), "the console's incident stream outlived the sign-out"
