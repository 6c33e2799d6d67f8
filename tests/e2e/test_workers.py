"""`alarmdesk serve --workers N`: HTTP worker processes in front of the writer process
(web/workers.py, bus/link.py), as real processes on a SQLite file.

What a centre must be able to count on: every route works through any worker; a 202 still
means committed; every console, on whichever worker, gets every event; a worker that dies is
started again and a writer that dies takes its workers down with it; a port already taken
(by another alarmdesk with workers too) fails start-up with a message.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import create_test_tokens, free_port, prepare_database
from tests.e2e.test_stream import SSEReader, body

pytestmark = pytest.mark.slow

WORKERS = 2


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(what: str, check: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


@dataclass
class Pool:
    """`alarmdesk serve --workers 2` and what it was given."""

    tmp_path: Path
    database_url: str
    tokens: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    seen: set[int] = field(default_factory=set)  # every worker pid, to be sure none is left
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def headers(self, who: str = "operator") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMDESK_")}
        self.starts += 1
        with (self.tmp_path / "serve.log").open("ab") as log:
            self.proc = self._popen(log, env, extra)
        wait_for("the workers serve", self._healthy, 40)
        return self.proc

    def _popen(self, log: Any, env: dict[str, str], extra: tuple[str, ...]) -> Any:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "alarmdesk.cli", "serve"),
                *("--database-url", self.database_url, "--port", str(self.port)),
                *("--workers", str(WORKERS), *extra),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp_path,
            env=env,
        )

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.log()}")
        try:
            ok = httpx.get(self.url + "/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False
        # ... and the writer process heard every worker say it serves (its start-up is over)
        started = self.log().count("serving HTTP with workers") == self.starts
        return ok and started and len(self.workers()) == WORKERS

    def workers(self) -> list[int]:
        assert self.proc is not None
        pids = [p for p in children(self.proc.pid) if alive(p)]
        self.seen.update(pids)
        return pids

    def log(self) -> str:
        return (self.tmp_path / "serve.log").read_text("utf-8", errors="replace")

    def kill_all(self) -> None:
        if self.proc is not None:
            self.workers()
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
        for pid in self.seen:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)

    def rows(self, sql: str) -> Any:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return conn.exec_driver_sql(sql).scalar()
        finally:
            engine.dispose()


@pytest.fixture
def pool(tmp_path: Path, sqlite_url: str) -> Iterator[Pool]:
    prepare_database(sqlite_url)
    made = Pool(tmp_path, sqlite_url, create_test_tokens(sqlite_url))
    try:
        yield made
    finally:
        made.kill_all()


def post(pool: Pool, key: str, **fields: Any) -> httpx.Response:
    return send(pool, {**body(key), **fields})


def send(pool: Pool, signal: dict[str, Any]) -> httpx.Response:
    return httpx.post(pool.url + "/api/v1/signals", json=signal, headers=pool.headers("intake"))


def test_every_route_works_through_the_workers_and_every_console_gets_every_event(
    pool: Pool,
) -> None:
    pool.start()
    # Consoles on every worker: the kernel spreads connections by their address, so with 12
    # the chance that one worker has none is 2 in 4,096.
    consoles = [SSEReader(pool, who="supervisor") for _ in range(12)]
    receipts, sent = [], []
    for i in range(30):  # a new connection each: they land on both workers
        sent.append({**body(f"w-{i}"), "summary": '<img src=x onerror="alert(1)">'})
        r = send(pool, sent[-1])
        assert r.status_code == 202, r.text
        receipts.append(r.json())
    batch = [body(f"wb-{i}", lat=51.0, lon=6.0 + i / 100) for i in range(20)]
    r = httpx.post(
        pool.url + "/api/v1/signals/batch", json={"signals": batch}, headers=pool.headers("intake")
    )
    assert r.status_code == 202, r.text
    receipts += r.json()["receipts"]
    signal_ids = {rc["signal_id"] for rc in receipts}
    assert len(signal_ids) == 50
    # A 202 is a committed row, on the writer process's database.
    assert pool.rows("SELECT count(*) FROM signals WHERE idempotency_key LIKE 'w%'") == 50
    # A resend answers the original receipt; bad input the one error shape, storing nothing.
    again = send(pool, sent[0])
    assert again.status_code == 202 and again.json() == receipts[0]
    bad = httpx.post(
        pool.url + "/api/v1/signals",
        json={**body("w-nul"), "summary": "a\x00b"},
        headers=pool.headers("intake"),
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "summary"
    reused = post(pool, "w-1", summary="other content under the same key")
    assert reused.status_code == 409, reused.text
    assert pool.rows("SELECT count(*) FROM signals WHERE idempotency_key LIKE 'w%'") == 50

    # Every console, on either worker, heard every signal (its event names the signal).
    for console in consoles:
        heard: set[int] = set()
        deadline = time.monotonic() + 10
        while not signal_ids <= heard and time.monotonic() < deadline:
            for _, _, data in console.take(1, timeout=max(0.01, deadline - time.monotonic())):
                if "signal_id" in data.get("detail", {}):
                    heard.add(data["detail"]["signal_id"])
        assert signal_ids <= heard, f"{len(signal_ids - heard)} signals not heard"
        console.close()

    # An operator's command through a worker: applied by the writer, its answer and its
    # refusal (a stale version) come back as they would from one process.
    incident = receipts[0]["incident_id"]
    with httpx.Client(base_url=pool.url, headers=pool.headers("operator")) as op:
        seen = op.get(f"/api/v1/incidents/{incident}")
        assert seen.status_code == 200
        assert seen.json()["summary"] == '<img src=x onerror="alert(1)">'  # text, as sent
        version = seen.json()["version"]
        acked = op.post(
            f"/api/v1/incidents/{incident}/acknowledge", json={"expected_version": version}
        )
        assert acked.status_code == 200, acked.text
        assert acked.json()["status"] == "acknowledged"
        stale = op.post(
            f"/api/v1/incidents/{incident}/notes", json={"expected_version": version, "text": "x"}
        )
        assert stale.status_code == 409, stale.text
        assert stale.json()["error"]["code"] == "version_conflict"
    # The reading was audited, through the writer's transaction.
    consulted = pool.rows(
        "SELECT count(*) FROM audit_entries WHERE json_extract(entry, '$.op') = 'consult' "
        "AND json_extract(entry, '$.object_type') = 'incident' "
        f"AND json_extract(entry, '$.object_id') = '{incident}'"
    )
    assert consulted >= 1


def test_a_killed_worker_is_started_again_and_a_killed_writer_takes_its_workers_down(
    pool: Pool,
) -> None:
    proc = pool.start()
    first = pool.workers()
    victim = first[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(
        "a new worker in its place",
        lambda: len(pool.workers()) == WORKERS and victim not in pool.workers(),
    )
    acked = []
    sent = [body(f"k-{i}") for i in range(20)]
    for signal_ in sent:  # served again by both (a client resends what got no answer)
        for _ in range(50):
            try:
                r = send(pool, signal_)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.status_code == 202, r.text
        acked.append(r.json()["signal_id"])
    assert "an HTTP worker stopped; starting again" in pool.log()

    workers = pool.workers()
    proc.kill()  # the writer process, without a chance to stop anything
    proc.wait(10)
    wait_for("no worker outlives its writer", lambda: not any(alive(p) for p in workers))
    with pytest.raises(httpx.TransportError):
        httpx.get(pool.url + "/healthz", timeout=1)
    # Started again on the same file: everything acknowledged is there.
    pool.start()
    assert pool.rows("SELECT count(*) FROM signals WHERE idempotency_key LIKE 'k-%'") == 20
    assert send(pool, sent[3]).json()["signal_id"] == acked[3]


def test_sigterm_stops_workers_then_writer_and_a_taken_port_fails_start_up(pool: Pool) -> None:
    proc = pool.start()
    workers = pool.workers()
    pool_dirs = set(Path("/tmp").glob("alarmdesk-workers-*"))
    # A second server on the same port, with workers too: refused, not sharing the port.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMDESK_")}
    second = subprocess.run(
        [
            *(sys.executable, "-m", "alarmdesk.cli", "serve"),
            *("--database-url", pool.database_url, "--port", str(pool.port), "--workers", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=pool.tmp_path,
        env=env,
    )
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{pool.port}" in second.stderr + second.stdout
    assert not set(Path("/tmp").glob("alarmdesk-workers-*")) - pool_dirs  # it left none

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) in (0, -signal.SIGTERM)  # uvicorn ends by raising the signal again
    assert not any(alive(p) for p in workers)
    assert "HTTP workers stopped" in pool.log()  # before the writer, each by its own SIGTERM
    assert "did not stop in time" not in pool.log()
    mine = [d for d in pool_dirs if not d.exists()]
    assert mine, "the pool's directory (its sockets, the workers' secret) was not removed"


def test_workers_are_refused_in_distributed_mode(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMDESK_")}
    env["ALARMDESK_NATS_URL"] = "nats://127.0.0.1:4222"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "alarmdesk.cli", "serve", "--workers", "2"),
            *("--database-url", "postgresql://postgres@127.0.0.1:5432/postgres"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode != 0
    assert "[server] workers is for one machine" in done.stderr + done.stdout


def test_types_approved_through_a_worker_are_in_force_for_the_writer(pool: Pool) -> None:
    """The types in force live in the writer process's pipeline: an approval on a worker
    commits there and then has the writer take the types up; the screening of protected
    purposes is the same on a worker."""
    from datetime import UTC, datetime

    from alarmdesk.store import accounts
    from tests.conftest import TEST_PASSWORD
    from tests.e2e.test_custom_types import BATTERY, signal

    engine = sa.create_engine(pool.database_url)
    with engine.begin() as conn:
        for name, role in (
            ("sam", "supervisor"),
            ("sue", "supervisor"),
            ("rita", "rights_officer"),
        ):
            accounts.create_user(conn, name, TEST_PASSWORD, role, ["*"], datetime.now(UTC))
    engine.dispose()
    pool.start()
    people = {}
    for name in ("sam", "sue", "rita"):
        c = httpx.Client(base_url=pool.url)
        csrf = c.post("/api/v1/session", json={"name": name, "password": TEST_PASSWORD}).json()
        c.headers["X-CSRF-Token"] = csrf["csrf_token"]
        people[name] = c
    try:
        refused = people["sam"].post(
            "/api/v1/incident-types", json={**BATTERY, "code": "DEMO", "name": "Protest march"}
        )
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "protected_purpose"
        assert people["sam"].post("/api/v1/incident-types", json=BATTERY).status_code == 201
        assert people["sue"].post("/api/v1/incident-types/LIBFIRE/approve").status_code == 200
        r = people["rita"].post("/api/v1/incident-types/LIBFIRE/approve")
        assert r.status_code == 200 and r.json()["status"] == "active", r.text
        for i in range(6):  # new connections: through either worker, the writer classifies it
            got = send(pool, signal("LIBFIRE", f"t-{i}"))
            assert got.status_code == 202, got.text
            incident = got.json()["incident_id"]
            seen = httpx.get(f"{pool.url}/api/v1/incidents/{incident}", headers=pool.headers())
            assert seen.json()["type_code"] == "LIBFIRE"
    finally:
        for c in people.values():
            c.close()
