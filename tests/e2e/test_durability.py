"""Kill -9 at any moment loses nothing that was acknowledged (docs/architecture.md, "Durability
contract").

`alarmdesk serve` runs as a real subprocess on a SQLite file. Concurrent clients post
signals (single and batch) with unique idempotency keys and remember every 202; at a
random moment the server gets SIGKILL. A new server on the same file must hold every
acknowledged signal exactly once, answer a resend with the original receipt, keep no
signal pointing at a missing incident, and go on accepting signals.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import create_test_tokens, free_port, prepare_database

pytestmark = pytest.mark.slow

CLIENTS = 8
BATCH_SIZE = 20
KILL_CYCLES = 3
SEED = 20261125
TYPE_CODES = ("ALRF", "ALRMED", "ABDOM", "NOSUCHCODE")


# -- the server as a subprocess ---------------------------------------------------------------


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    intake: dict[str, str]  # headers of a machine that submits signals
    operator: dict[str, str]  # headers of an operator who reads incidents

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Servers:
    """Every server process a test started, so that ``finally`` can end them all."""

    tmp_path: Path
    database_url: str
    tokens: dict[str, str]
    started: list[ServerProcess] = field(default_factory=list)
    workers: int = 0  # `serve --workers N`: HTTP workers in front of the writer process

    def start(self) -> ServerProcess:
        port = free_port()
        log_path = self.tmp_path / f"server-{len(self.started) + 1}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMDESK_")}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "alarmdesk.cli",
                    "serve",
                    "--database-url",
                    self.database_url,
                    "--port",
                    str(port),
                    *(("--workers", str(self.workers)) if self.workers else ()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
                env=env,
            )
        server = ServerProcess(
            proc,
            f"http://127.0.0.1:{port}",
            log_path,
            intake={"Authorization": f"Bearer {self.tokens['intake']}"},
            operator={"Authorization": f"Bearer {self.tokens['operator']}"},
        )
        self.started.append(server)
        wait_until_healthy(server)
        return server

    def kill_all(self) -> None:
        for server in self.started:
            if server.proc.poll() is None:
                os.kill(server.pid, signal.SIGKILL)
            server.proc.wait(10)

    def print_logs(self) -> None:
        for server in self.started:
            print(f"--- {server.log_path.name} (pid {server.pid}) ---")
            print(server.log_path.read_text("utf-8", errors="replace"))


def wait_until_healthy(server: ServerProcess, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise AssertionError(f"the server exited with {server.proc.returncode} on start")
        try:
            if httpx.get(server.url + "/api/v1/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server was not healthy within {timeout} s")


def kill_hard(server: ServerProcess) -> None:
    os.kill(server.pid, signal.SIGKILL)
    server.proc.wait(10)


@pytest.fixture
def servers(tmp_path: Path, sqlite_url: str) -> Iterator[Servers]:
    prepare_database(sqlite_url)
    made = Servers(tmp_path, sqlite_url, create_test_tokens(sqlite_url))
    try:
        yield made
    finally:
        made.kill_all()


# -- the load ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """One request as sent, so that it can be resent byte for byte."""

    path: str
    body: dict[str, Any]
    keys: tuple[str, ...]


@dataclass
class Ledger:
    """What the clients sent and what the server acknowledged (key → receipt)."""

    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    acked_requests: list[Sent] = field(default_factory=list)
    unacked_requests: list[Sent] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def a_signal(rng: random.Random, key: str, *, record_only: bool = False) -> dict[str, Any]:
    occurred = datetime.now(UTC) - timedelta(seconds=rng.randint(0, 600))
    kind = rng.choice(["call", "duty", "equipment", "feed"])
    if record_only:  # a periodic test: stored, no incident
        return {
            "source_kind": "equipment",
            "source_id": f"panel-{rng.randint(1, 40)}",
            "type_code": "EQTEST",
            "occurred_at": occurred.isoformat(),
            "idempotency_key": key,
            "record_only": True,
        }
    return {
        "source_kind": kind,
        "source_id": f"{kind}-{rng.randint(1, 40)}",
        "type_code": rng.choice(TYPE_CODES),
        "occurred_at": occurred.isoformat(),
        "location": {
            "lat": round(rng.uniform(41, 59), 5),
            "lon": round(rng.uniform(-9, 9), 5),
            "zone": str(rng.randint(1, 9)),
        },
        "summary": f"durability load {key}",
        "idempotency_key": key,
        "payload": {"n": rng.randint(0, 10**6)},
    }


def some_signal(rng: random.Random, key: str) -> dict[str, Any]:
    return a_signal(rng, key, record_only=rng.random() < 0.05)


def client_loop(
    server: ServerProcess, cycle: int, client: int, seed: int, ledger: Ledger, stop: threading.Event
) -> None:
    rng = random.Random(seed)
    n = 0
    with httpx.Client(base_url=server.url, headers=server.intake, timeout=10.0) as http:
        while not stop.is_set():
            if rng.random() < 0.5:
                key = f"c{cycle}-t{client}-{n}"
                n += 1
                sent = Sent("/api/v1/signals", some_signal(rng, key), (key,))
            else:
                keys = tuple(f"c{cycle}-t{client}-{n + i}" for i in range(BATCH_SIZE))
                n += BATCH_SIZE
                sent = Sent(
                    "/api/v1/signals/batch", {"signals": [some_signal(rng, k) for k in keys]}, keys
                )
            try:
                response = http.post(sent.path, json=sent.body)
            except httpx.TransportError:
                with ledger.lock:  # in flight when the server died: maybe stored, maybe not
                    ledger.unacked_requests.append(sent)
                return
            if response.status_code == 503 and "writer_stopped" in response.text:
                with ledger.lock:  # an HTTP worker whose writer process died: the same
                    ledger.unacked_requests.append(sent)
                return
            if response.status_code != 202:
                with ledger.lock:
                    ledger.unexpected.append(
                        f"{sent.path} → {response.status_code} {response.text[:300]}"
                    )
                return
            body = response.json()
            receipts = body.get("receipts", [body])
            with ledger.lock:
                ledger.acked_requests.append(sent)
                for key, receipt in zip(sent.keys, receipts, strict=True):
                    assert receipt["idempotency_key"] == key
                    ledger.acked[key] = receipt


def load_then_kill(server: ServerProcess, cycle: int, rng: random.Random) -> Ledger:
    """Runs the clients until a random moment, then kills the server with SIGKILL."""
    ledger = Ledger()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=client_loop,
            name=f"client-{cycle}-{i}",
            args=(server, cycle, i, rng.randrange(2**32), ledger, stop),
        )
        for i in range(CLIENTS)
    ]
    kill_after = rng.uniform(0.3, 1.5)
    for th in threads:
        th.start()
    time.sleep(kill_after)
    kill_hard(server)
    stop.set()
    for th in threads:
        th.join(15)
        assert not th.is_alive(), f"{th.name} still runs after the server died"
    print(
        f"cycle {cycle}: killed after {kill_after:.2f} s; {len(ledger.acked)} signals "
        f"acknowledged, {len(ledger.unacked_requests)} requests in flight"
    )
    return ledger


# -- the checks -------------------------------------------------------------------------------


def stored_keys(engine: sa.Engine) -> dict[str, list[tuple[int, int]]]:
    """idempotency_key → [(signal id, incident id), …] as the file holds them."""
    found: dict[str, list[tuple[int, int]]] = {}
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT idempotency_key, id, incident_id FROM signals"))
        for key, sid, iid in rows:
            found.setdefault(key, []).append((sid, iid))
    return found


def orphan_signals(engine: sa.Engine) -> list[tuple[int, int]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text(
                    "SELECT s.id, s.incident_id FROM signals s "
                    "LEFT JOIN incidents i ON i.id = s.incident_id "
                    "WHERE s.incident_id IS NOT NULL AND i.id IS NULL"
                )
            )
        ]


def resend(server: ServerProcess, requests: list[Sent]) -> dict[str, dict[str, Any]]:
    """Sends the requests again, as a client retrying would; returns key → receipt."""
    receipts: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def worker(part: list[Sent]) -> None:
        with httpx.Client(base_url=server.url, headers=server.intake, timeout=10.0) as http:
            for sent in part:
                response = http.post(sent.path, json=sent.body)
                if response.status_code != 202:
                    with lock:
                        errors.append(
                            f"{sent.path} {sent.keys[0]}… → {response.status_code} "
                            f"{response.text[:300]}"
                        )
                    continue
                body = response.json()
                got = body.get("receipts", [body])
                with lock:
                    receipts.update(zip(sent.keys, got, strict=True))

    threads = [
        threading.Thread(target=worker, args=(requests[i::CLIENTS],)) for i in range(CLIENTS)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, "resends were refused:\n" + "\n".join(errors[:10])
    return receipts


# -- the test ---------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "http-workers"])
def test_a_server_killed_at_random_moments_keeps_every_acknowledged_signal_exactly_once(
    servers: Servers, tmp_path: Path, workers: int
) -> None:
    servers.workers = workers  # with workers, SIGKILL goes to the writer process
    rng = random.Random(SEED)
    engine = sa.create_engine(servers.database_url)
    started = time.monotonic()
    try:
        server = servers.start()
        all_acked: dict[str, dict[str, Any]] = {}
        for cycle in range(1, KILL_CYCLES + 1):
            ledger = load_then_kill(server, cycle, rng)
            assert not ledger.unexpected, "\n".join(ledger.unexpected[:10])
            assert ledger.acked, "no signal was acknowledged before the kill; load too short"
            all_acked.update(ledger.acked)

            server = servers.start()  # a new process on the same file

            # (a) every acknowledged key is stored exactly once, with the id of its receipt.
            stored = stored_keys(engine)
            missing = [k for k in all_acked if k not in stored]
            assert not missing, f"{len(missing)} acknowledged signals were lost: {missing[:10]}"
            twice = {k: v for k, v in stored.items() if len(v) != 1}
            assert not twice, f"keys stored more than once: {list(twice.items())[:10]}"
            wrong = {
                k: (stored[k][0], r["signal_id"], r["incident_id"])
                for k, r in all_acked.items()
                if stored[k][0] != (r["signal_id"], r["incident_id"])
            }
            assert not wrong, (
                f"stored ≠ receipt (stored, signal_id, incident_id): {list(wrong.items())[:10]}"
            )

            # (b) a resend after the crash gets the original receipt, and stores nothing new.
            before = sum(len(v) for v in stored.values())
            again = resend(server, ledger.acked_requests)
            changed = {
                k: (all_acked[k]["signal_id"], r["signal_id"])
                for k, r in again.items()
                if r["signal_id"] != all_acked[k]["signal_id"]
            }
            assert not changed, f"resends got new signal ids: {list(changed.items())[:10]}"
            assert sum(len(v) for v in stored_keys(engine).values()) == before

            # Requests cut off by the kill may or may not have been stored; resent, each
            # key ends up stored once either way.
            retried = resend(server, ledger.unacked_requests)
            stored = stored_keys(engine)
            for key, receipt in retried.items():
                assert [(receipt["signal_id"], receipt["incident_id"])] == stored[key], key
            all_acked.update(retried)

            # (c) no signal points at a missing incident, and new signals are accepted.
            assert orphan_signals(engine) == []
            fresh_key = f"after-restart-{cycle}"
            response = httpx.post(
                server.url + "/api/v1/signals",
                json=a_signal(rng, fresh_key),
                headers=server.intake,
                timeout=10.0,
            )
            assert response.status_code == 202, response.text
            assert response.json()["signal_id"] > max(sid for v in stored.values() for sid, _ in v)
            found = httpx.get(
                f"{server.url}/api/v1/incidents/{response.json()['incident_id']}",
                headers=server.operator,
                timeout=10.0,
            )
            assert found.status_code == 200, found.text
            assert fresh_key in [s["idempotency_key"] for s in found.json()["signals"]]
        print(f"{KILL_CYCLES} kill cycles in {time.monotonic() - started:.1f} s")
    except BaseException:
        servers.print_logs()
        raise
    finally:
        engine.dispose()
        servers.kill_all()
