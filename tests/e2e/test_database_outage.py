"""PostgreSQL stopped for some seconds under load, in distributed mode (issue 12): intake
keeps answering 202 "queued" (JetStream holds the signals), readiness says the store is
away, and when the database returns every queued signal is stored, once.

The database is a private PostgreSQL cluster this test starts (initdb, pg_ctl, on a port of
its own), never the machine's, so stopping it disturbs nothing else.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.conftest import IN_CI, create_test_tokens, free_port, prepare_database
from tests.e2e.nodes import Cluster, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own: started, stopped and started again."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not found:
            if IN_CI:
                pytest.fail("PostgreSQL's server binaries are not installed, and CI needs them")
            pytest.skip("PostgreSQL's server binaries are not installed")
        self.bin = Path(found[-1]).parent
        # as root, the server runs as the postgres user, which must reach its directory
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.dir = Path(tempfile.mkdtemp(prefix="alarmdesk-pg-"))
        self.dir.chmod(0o755)
        self.data = self.dir / "data"
        self.port = free_port()
        if self.as_user:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            cwd=self.dir,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir}"
        log = str(self.dir / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
             "stop"],
            capture_output=True,
        )  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()


def test_intake_goes_on_while_the_database_is_down_and_nothing_is_lost(
    private_postgres: PrivatePostgres, tmp_path: Path, nats_url: str
) -> None:
    url = private_postgres.url
    prepare_database(url)
    tokens = create_test_tokens(url)
    cluster = Cluster(tmp_path, url, nats_url)
    acked: dict[str, float] = {}  # marker → when its 202 came
    lock = threading.Lock()
    stop = threading.Event()
    try:
        node = cluster.start()
        now = datetime.now(UTC).isoformat()

        def client(c: int) -> None:
            n = 0
            headers = {"Authorization": f"Bearer {tokens['intake']}"}
            with httpx.Client(headers=headers, timeout=10) as http:
                while not stop.is_set():
                    n += 1
                    marker = f"c{c}-{n}"
                    body: dict[str, Any] = {
                        "source_kind": "equipment",
                        "source_id": f"panel-{n % 5}",
                        "type_code": "ALRF",
                        "occurred_at": now,
                        "summary": marker,
                        "location": {"zone": str(c)},
                        "idempotency_key": f"outage-{marker}",
                    }
                    try:
                        r = http.post(node.url + "/api/v1/signals", json=body)
                    except httpx.TransportError:
                        continue
                    if r.status_code == 202:
                        with lock:
                            acked[marker] = time.monotonic()
                    else:
                        assert r.status_code == 503, r.text
                    time.sleep(0.02)

        threads = [threading.Thread(target=client, args=(c,)) for c in range(3)]
        for th in threads:
            th.start()
        time.sleep(2)
        private_postgres.stop()
        down_at = time.monotonic()
        time.sleep(1)
        ready = httpx.get(node.url + "/readyz", timeout=5)
        assert ready.status_code == 200, ready.text  # intake goes on…
        assert ready.json()["status"] == "degraded" and ready.json()["store"] is False  # …said
        time.sleep(12)  # longer than the credential cache: intake still opens
        up_at = time.monotonic()
        private_postgres.start()
        time.sleep(3)
        stop.set()
        for th in threads:
            th.join(30)
        during = [m for m, at in acked.items() if down_at < at < up_at]
        assert len(during) > 20, cluster.logs()  # 202s while the database was down
        wait_until_ready(node)
        assert httpx.get(node.url + "/readyz", timeout=5).json()["status"] == "ready"
        engine = make_engine(url)
        try:
            deadline = time.monotonic() + 60
            while True:
                with engine.connect() as conn:
                    summaries = list(conn.execute(sa.select(t.signals.c.summary)).scalars())
                if set(acked) <= set(summaries) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        finally:
            engine.dispose()
        missing = set(acked) - set(summaries)
        assert not missing, f"{len(missing)} never stored\n{cluster.logs()}"
        assert len(summaries) == len(set(summaries)), "a signal stored twice"
    finally:
        stop.set()
        cluster.kill_all()
        cluster.delete_stream()
