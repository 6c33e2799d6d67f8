"""Alarmdesk nodes as real processes (`alarmdesk serve` in distributed mode) on one
PostgreSQL database and a JetStream stream of their own: what the distributed tests start,
kill and watch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx

from alarmdesk.bus.jetstream import IntakeLog, LogSettings
from tests.conftest import free_port


class Node:
    def __init__(
        self, proc: subprocess.Popen[bytes], url: str, log_path: Path, dc09_port: int | None
    ) -> None:
        self.proc, self.url, self.log_path, self.dc09_port = proc, url, log_path, dc09_port


class Cluster:
    """The node processes a test started, on one database and one stream of its own."""

    def __init__(self, tmp_path: Path, database_url: str, nats_url: str) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.nats_url = nats_url
        self.stream = f"TEST_{uuid.uuid4().hex[:10]}"
        self.config = tmp_path / "alarmdesk.toml"
        self.config.write_text(
            f'[nats]\nstream = "{self.stream}"\npartitions = 8\nlease_seconds = 10.0\n'
        )
        self.nodes: list[Node] = []
        self.extra_env: dict[str, str] = {}  # more of the nodes' environment

    def env(self) -> dict[str, str]:
        """The nodes' environment (and their working directory's audit key: ``cwd``)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMDESK_")}
        env |= {"ALARMDESK_NATS_URL": self.nats_url, "ALARMDESK_CONFIG": str(self.config)}
        return env | self.extra_env

    def start(
        self, *, database_url: str | None = None, wait: bool = True, dc09: bool = False
    ) -> Node:
        port = free_port()
        log_path = self.tmp_path / f"node-{len(self.nodes) + 1}.log"
        env = self.env()
        dc09_port = free_port() if dc09 else None
        if dc09_port is not None:
            env["ALARMDESK_DC09_PORT"] = str(dc09_port)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "alarmdesk.cli", "serve"),
                    *("--database-url", database_url or self.database_url, "--port", str(port)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.tmp_path,
                env=env,
            )
        node = Node(proc, f"http://127.0.0.1:{port}", log_path, dc09_port)
        self.nodes.append(node)
        if wait:
            wait_until_ready(node)
        return node

    def kill_all(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                os.kill(node.proc.pid, signal.SIGKILL)
            node.proc.wait(10)

    def logs(self) -> str:
        return "\n".join(
            f"--- {n.log_path.name} ---\n{n.log_path.read_text('utf-8', errors='replace')}"
            for n in self.nodes
        )

    def delete_stream(self) -> None:
        async def delete() -> None:
            log = IntakeLog(LogSettings(self.nats_url, self.stream))
            await log.connect()
            await log.delete_stream()
            await log.close()

        asyncio.run(delete())


def wait_until_ready(node: Node, timeout: float = 30.0, role: str = "writer") -> None:
    """Until the node's /readyz says ready in ``role`` (a standby is ready for intake at
    once; it writes once it holds the writer lease)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise AssertionError(f"the node exited with {node.proc.returncode} on start")
        try:
            r = httpx.get(node.url + "/readyz", timeout=2.0)
            if r.status_code == 200 and r.json()["role"] == role:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"the node was not ready as {role} within {timeout} s")


def watch(url: str, token: str, seen: list[int], stop: threading.Event) -> None:
    """A console's live stream on ``url``: the event ids it receives, until ``stop``."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    try:
        with httpx.stream("GET", url + "/api/v1/stream", headers=headers, timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith("id: "):
                    seen.append(int(line[4:]))
                if stop.is_set():
                    return
    except httpx.HTTPError:
        return  # the node went away
