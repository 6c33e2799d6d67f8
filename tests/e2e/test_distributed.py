"""`alarmdesk serve` in distributed mode, as real processes on real PostgreSQL and NATS.

Clients post signals (single and batch, keyed and keyless, with resends) to both nodes and
remember every 202; the second node is a standby while the first holds the writer lease: it
takes intake into the log and refuses what needs the writer; the first is killed with
SIGKILL mid-load and the second takes over on the same database and stream. Every signal
that was answered 202 "queued", by either node, must end in PostgreSQL exactly once. Also:
/readyz reports the intake log and the node's role; distributed mode on SQLite is refused.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from alarmdesk.store import accounts
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.conftest import create_test_tokens
from tests.e2e.nodes import Cluster, wait_until_ready, watch

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_every_queued_signal_is_stored_exactly_once_across_a_kill(cluster: Cluster) -> None:
    tokens = create_test_tokens(cluster.database_url)
    headers = {"Authorization": f"Bearer {tokens['intake']}"}
    first = cluster.start()
    ready = httpx.get(first.url + "/readyz", timeout=5).json()
    assert ready["intake_log"] is True and ready["status"] == "ready"
    assert ready["role"] == "writer" and ready["writer"] is True

    acked: dict[str, str] = {}  # marker (the summary) → idempotency key answered
    lock = threading.Lock()
    node_url = [first.url, first.url]  # clients 0 and 2 post to the first, 1 and 3 to this
    stop = threading.Event()
    now_ = datetime.now(UTC)
    now = now_.isoformat()

    def body(marker: str, source: str, keyed: bool) -> dict[str, Any]:
        b: dict[str, Any] = {
            "source_kind": "equipment",
            "source_id": source,
            "type_code": "ALRF",
            "occurred_at": now,
            "summary": marker,
            "location": {"zone": "1"},
        }
        if keyed:
            b["idempotency_key"] = f"key-{marker}"
        return b

    def client(c: int) -> None:
        n = 0
        with httpx.Client(headers=headers, timeout=10) as http:
            while not stop.is_set():
                n += 1
                batch = n % 3 == 0
                markers = [f"c{c}-{n}-{i}" for i in range(10 if batch else 1)]
                bodies = [
                    body(m, f"panel-{(c + i) % 7}", keyed=(n + i) % 2 == 0)
                    for i, m in enumerate(markers)
                ]
                try:
                    if batch:
                        r = http.post(
                            node_url[c % 2] + "/api/v1/signals/batch", json={"signals": bodies}
                        )
                    else:
                        r = http.post(node_url[c % 2] + "/api/v1/signals", json=bodies[0])
                    if (
                        (n % 5 == 0)
                        and r.status_code == 202
                        and not batch
                        and "idempotency_key" in bodies[0]
                    ):
                        # a resend of a keyed signal: stored once however often it is sent
                        r = http.post(node_url[c % 2] + "/api/v1/signals", json=bodies[0])
                except httpx.TransportError:
                    time.sleep(0.05)  # the node is down: this request was not answered
                    continue
                if r.status_code != 202:
                    assert r.status_code == 503, r.text  # the only refusal allowed here
                    continue
                out = r.json()
                assert out["status"] == "queued"
                answered = out["queued"] if batch else [out]
                with lock:
                    for m, q in zip(markers, answered, strict=True):
                        acked[m] = q["idempotency_key"]

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    try:
        for th in threads:
            th.start()
        # a second node is a standby while the first holds the writer lease: it takes intake
        # into the log at once (half the clients post to it), stores nothing itself, and
        # refuses what needs the writer, however long it waits
        second = cluster.start(wait=False)
        wait_until_ready(second, role="standby")
        assert httpx.get(second.url + "/healthz", timeout=2).json()["status"] == "standby"
        # a console on the standby sees what the writer node commits (bus/relay.py)
        seen: list[int] = []
        watching = threading.Thread(
            target=watch, args=(second.url, tokens["operator"], seen, stop), daemon=True
        )
        watching.start()
        node_url[1] = second.url
        time.sleep(11)  # longer than the lease's 10 s: the first renews it
        standby = httpx.get(second.url + "/readyz", timeout=2).json()
        assert (standby["role"], standby["writer"], standby["status"]) == (
            "standby",
            False,
            "ready",
        )
        # a balancer that must reach the node that writes asks
        assert httpx.get(second.url + "/readyz?role=writer", timeout=2).status_code == 503
        assert httpx.get(first.url + "/readyz?role=writer", timeout=2).status_code == 200
        assert httpx.get(second.url + "/readyz?role=standby", timeout=2).status_code == 200
        assert httpx.get(first.url + "/readyz?role=standby", timeout=2).status_code == 503
        engine = make_engine(cluster.database_url)
        with engine.connect() as conn:
            incident = conn.execute(sa.select(sa.func.min(t.incidents.c.id))).scalar()
        engine.dispose()
        assert incident is not None  # stored by the writer node, from either node's intake
        # an operator on the standby acts: the writer node applies it and answers through it
        operator = {"Authorization": f"Bearer {tokens['operator']}"}
        url = f"{second.url}/api/v1/incidents/{incident}/acknowledge"
        acted = httpx.post(url, headers=operator, json={}, timeout=15)
        assert acted.status_code == 200, acted.text
        assert acted.json()["status"] == "acknowledged"
        refused = httpx.post(url, headers=operator, json={}, timeout=15)  # as the writer refused
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "invalid_transition"
        note = "<script>alert(1)</script>\u0000"  # a NUL: refused on the standby, never sent
        bad = httpx.post(
            f"{second.url}/api/v1/incidents/{incident}/notes",
            headers=operator,
            json={"text": note},
            timeout=15,
        )
        assert bad.status_code == 422, bad.text
        # a person signs in on the standby (a session of their own, audited there)
        users = make_engine(cluster.database_url)
        with users.begin() as conn:
            accounts.create_user(conn, "night1", "correct horse battery", "operator", ["*"], now_)
        users.dispose()
        with httpx.Client(base_url=second.url, timeout=15) as person:
            signed = person.post(
                "/api/v1/session", json={"name": "night1", "password": "correct horse battery"}
            )
            assert signed.status_code == 200, signed.text
            assert person.get(f"/api/v1/incidents/{incident}").status_code == 200
        assert seen and seen == sorted(set(seen)), cluster.logs()  # live, in commit order
        os.kill(first.proc.pid, signal.SIGKILL)  # mid-load: batches in hand, acks unsent
        first.proc.wait(10)
        node_url[0] = second.url
        wait_until_ready(second)  # the writer, once the dead node's writer lease expired
        time.sleep(3)
    finally:
        stop.set()
        for th in threads:
            th.join(30)
    assert len(acked) > 100, cluster.logs()
    watching.join(5)

    engine = make_engine(cluster.database_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(t.signals.c.summary, t.signals.c.idempotency_key)
                ).all()
            stored = {r.summary for r in rows}
            if set(acked) <= stored or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        missing = set(acked) - stored
        assert not missing, f"{len(missing)} queued signals never stored\n{cluster.logs()}"
        summaries = [r.summary for r in rows]
        doubles = {s for s in summaries if summaries.count(s) > 1}
        assert not doubles, f"stored twice: {sorted(doubles)[:10]}"
        keys = {r.summary: r.idempotency_key for r in rows}
        assert all(keys[m] == k for m, k in acked.items())  # under the key the 202 named
        # and every intake was audited: a collect entry per transaction and sender
        with engine.connect() as conn:
            entries = [
                json.loads(e) for e in conn.execute(sa.select(t.audit_entries.c.entry)).scalars()
            ]
        collected = [e for e in entries if e["op"] == "collect"]
        assert collected and all(e["actor"].startswith("token:") for e in collected)
        with engine.connect() as conn:
            committed = set(conn.execute(sa.select(t.events.c.id)).scalars())
        assert set(seen) <= committed  # the standby's console saw committed events only
    finally:
        engine.dispose()


def test_distributed_mode_on_sqlite_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.start(database_url=f"sqlite:///{tmp_path / 'one.db'}", wait=False)
    assert node.proc.wait(30) == 2
    out = node.log_path.read_text()
    assert "needs PostgreSQL" in out


def test_a_standby_started_after_commits_streams_after_the_newest_stored_event(
    cluster: Cluster,
) -> None:
    """A console opened on a standby that has heard no commit yet continues after the events
    stored before it started (not from event 0: the whole table), and hears the next one."""
    tokens = create_test_tokens(cluster.database_url)
    intake = {"Authorization": f"Bearer {tokens['intake']}"}
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    writer = cluster.start()

    def post(url: str, n: int) -> None:
        body = {
            "source_kind": "equipment",
            "source_id": f"late-{n}",
            "type_code": "ALRF",
            "occurred_at": datetime.now(UTC).isoformat(),
            "summary": f"late standby {n}",
            "location": {"zone": "1"},
            "idempotency_key": f"late-{n}",
        }
        assert httpx.post(url + "/api/v1/signals", json=body, headers=intake).status_code == 202

    for n in range(3):
        post(writer.url, n)
    engine = make_engine(cluster.database_url)
    try:
        deadline = time.monotonic() + 20
        while True:
            with engine.connect() as conn:
                newest = conn.execute(sa.select(sa.func.max(t.events.c.id))).scalar()
                first = conn.execute(sa.select(sa.func.min(t.incidents.c.id))).scalar()
            if newest is not None and newest >= 3:
                break
            assert time.monotonic() < deadline, "the writer stored nothing"
            time.sleep(0.2)
        standby = cluster.start(wait=False)
        wait_until_ready(standby, role="standby")
        page = httpx.get(f"{standby.url}/incidents/{first}", headers=operator, timeout=10)
        assert page.status_code == 200
        assert f"last_event_id={newest}" in page.text
        seen: list[int] = []
        stop = threading.Event()
        follower = threading.Thread(
            target=watch, args=(standby.url, tokens["operator"], seen, stop), daemon=True
        )
        follower.start()
        time.sleep(1)  # the stream is open
        post(standby.url, 9)  # queued by the standby, committed by the writer, relayed back
        deadline = time.monotonic() + 20
        while not seen:
            assert time.monotonic() < deadline, f"nothing reached the standby\n{cluster.logs()}"
            time.sleep(0.2)
        stop.set()
        assert min(seen) == newest + 1
    finally:
        engine.dispose()
