"""HTTP worker processes in front of the writer process (``[server] workers``;
docs/operations.md, "Several processes on one machine").

One Python process uses about one core: its event loop and its writer thread share one
interpreter lock (bench/README.md, "Alertmanager side by side"). With ``workers = N`` the
process that ``alarmdesk serve`` starts keeps the writer (and everything that runs once: the
equipment receivers, supervision, escalation timers, webhooks, retention, exports) and starts
N worker processes that serve HTTP on the configured address, each with its own socket bound
with ``SO_REUSEPORT``, so the kernel spreads connections over them. A worker hands the writer
its work over the link (bus/link.py) and streams the writer's commits to its own consoles.
Durability is unchanged: a worker answers 202 once the writer process committed.

The writer process itself serves HTTP only on a Unix socket in the pool's private directory
(for a look at its own ``/healthz`` or ``/metrics`` with ``curl --unix-socket``), and holds
the public port bound, without listening, from start-up to stop, so nothing else takes it
while a worker restarts.

A worker that stops (a crash, ``kill -9``, cut off for reading events too slowly) is started
again, after a pause that doubles up to :data:`RESTART_CAP_SECONDS` while it keeps failing;
its connections' clients reconnect (to the other workers meanwhile) and resend what had no
answer, which their idempotency keys make safe. When the writer process stops, it stops the
workers first (they finish their requests, which need the writer), and a worker whose link
ends stops by itself, so no worker outlives its writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import msgspec

from alarmdesk import logs
from alarmdesk.bootstrap import Services
from alarmdesk.bus.link import LinkServer
from alarmdesk.config import Config

__all__ = ["WorkerPool", "WorkerSpec", "listening_socket", "reserved_socket"]

log = logs.get_logger(__name__)

START_SECONDS: Final = 60.0  # for every worker to serve, at start-up
STOP_SECONDS: Final = 10.0  # for the workers to finish their requests, then SIGKILL
RESTART_CAP_SECONDS: Final = 30.0
HEALTHY_SECONDS: Final = 60.0  # a worker that ran this long restarts without a pause


DIR_PREFIX: Final = "alarmdesk-workers-"


def remove_stale_dirs(older_than: float = 3600.0) -> list[Path]:
    """Deletes the directories of this user's pools whose writer process is gone (killed, so
    it could not delete its own: they hold the workers' configuration and secret); a pool's
    is stale when nothing answers on its link socket and it is older than ``older_than``
    seconds (one starting now has not listened yet). Returns what it deleted."""
    removed = []
    for path in Path(tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        try:
            info = path.stat()
            if info.st_uid != os.getuid() or time.time() - info.st_mtime < older_than:
                continue
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(path / "link.sock"))
            continue  # a writer process listens: in use
        except (FileNotFoundError, ConnectionRefusedError):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        except OSError:
            continue
    return removed


class WorkerSpec(msgspec.Struct, frozen=True):
    """What a worker reads at start (``worker.json`` in the pool's private directory)."""

    config: Config
    secret: str


def _address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[object, ...]]:
    family, _, _, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    return family, address


def reserved_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT`` and not listening: it takes no
    connection, but holds the port (0: a free one) for the workers' sockets.

    Raises:
        OSError: the port is taken, by any program, another alarmdesk with workers included
            (whose sockets would otherwise share it: a first bind without ``SO_REUSEPORT``
            finds them).
    """
    family, address = _address(host, port)
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no owner
        probe.bind(address)
        address = (address[0], probe.getsockname()[1], *address[2:])
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except BaseException:
        sock.close()
        raise
    return sock


def listening_socket(host: str, port: int) -> socket.socket:
    """A worker's own listening socket on the shared port (``SO_REUSEPORT``)."""
    family, address = _address(host, port)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


class WorkerPool:
    """The HTTP workers of one writer process.

    Args:
        cfg: the configuration; ``server.workers`` is how many, ``server.port`` is set to
            the port actually reserved (a port of 0 becomes a free one).
    """

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.count = cfg.server.workers
        remove_stale_dirs()
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))  # mode 0700
        self.http_socket = self.dir / "writer-http.sock"  # the writer process's own HTTP
        self.secret = secrets.token_urlsafe(32)
        self.link: LinkServer | None = None
        self.reserved: socket.socket | None = None
        self.procs: dict[int, asyncio.subprocess.Process] = {}  # slot -> its process
        self._ready: dict[int, asyncio.Event] = {}  # pid -> said it serves
        self._slots: list[asyncio.Task[None]] = []
        self.stopping = False  # set once: a worker that stops then is not started again

    def reserve_port(self) -> None:
        """Binds the public port (raises ``OSError`` when it is taken)."""
        if self.reserved is None:
            server = self.cfg.server
            self.reserved = reserved_socket(server.host, server.port)
            server.port = self.reserved.getsockname()[1]

    async def start(self, svc: Services) -> None:
        """Starts the link and the workers; returns once every worker serves.

        Raises:
            RuntimeError: a worker stopped, or did not serve within :data:`START_SECONDS`.
        """
        self.reserve_port()
        spec = self.dir / "worker.json"
        spec.touch(0o600)
        spec.write_bytes(msgspec.json.encode(WorkerSpec(self.cfg, self.secret)))
        w = svc.writer
        self.link = LinkServer(
            self.dir / "link.sock",
            self.secret,
            w.side(same_machine=True),
            svc.hub,
            on_ready=self._on_ready,
            backlog=lambda: w.backlog,
        )
        await self.link.start()
        first = [asyncio.get_running_loop().create_future() for _ in range(self.count)]
        self._slots = [
            asyncio.create_task(self._keep(slot, first[slot]), name=f"http-worker-{slot}")
            for slot in range(self.count)
        ]
        try:
            async with asyncio.timeout(START_SECONDS):
                await asyncio.gather(*first)
        except TimeoutError:
            raise RuntimeError(
                f"the HTTP workers did not serve within {START_SECONDS:g} s; see their log lines"
            ) from None
        server = self.cfg.server
        log.info(
            "serving HTTP with workers",
            workers=self.count,
            url=f"http://{server.host}:{server.port}",
            writer_http=str(self.http_socket),
        )

    def _stopped(self) -> bool:
        return self.stopping

    def _on_ready(self, pid: int) -> None:
        self._ready.setdefault(pid, asyncio.Event()).set()

    async def _spawn(self) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "alarmdesk.web.worker", str(self.dir)
        )

    async def _keep(self, slot: int, first: asyncio.Future[None]) -> None:
        """Runs one worker and starts it again whenever it stops, until the pool stops. The
        first start's outcome goes to ``first`` (served, or the error that stopped it)."""
        pause = 0.5
        while not self.stopping:
            try:
                proc = await self._spawn()
            except OSError as exc:  # no process could be made (memory, a limit): again later
                if not first.done():
                    first.set_exception(RuntimeError(f"HTTP worker {slot} not started: {exc}"))
                    return
                log.error("an HTTP worker could not be started", slot=slot, error=str(exc))
                await asyncio.sleep(pause)
                pause = min(pause * 2, RESTART_CAP_SECONDS)
                continue
            self.procs[slot] = proc
            began = time.monotonic()
            ready = self._ready.setdefault(proc.pid, asyncio.Event())
            waits = [asyncio.ensure_future(ready.wait()), asyncio.ensure_future(proc.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            if not first.done():
                if ready.is_set():
                    first.set_result(None)
                else:
                    first.set_exception(
                        RuntimeError(
                            f"HTTP worker {slot} stopped at start-up (exit code "
                            f"{proc.returncode}); see its log lines"
                        )
                    )
                    return
            code = await proc.wait()
            self._ready.pop(proc.pid, None)
            if self._stopped():  # (a method: the loop's test does not hold across the awaits)
                return
            pause = 0.5 if time.monotonic() - began > HEALTHY_SECONDS else pause
            log.error("an HTTP worker stopped; starting again", slot=slot, code=code, pause=pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESTART_CAP_SECONDS)

    async def stop(self) -> None:
        """Stops the workers (each finishes its requests in flight), then the link."""
        self.stopping = True
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        waits = [proc.wait() for proc in self.procs.values()]
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=STOP_SECONDS)
            for proc in self.procs.values():
                if proc.returncode is None:
                    log.warning("an HTTP worker did not stop in time; killed", pid=proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
            codes = {proc.pid: proc.returncode for proc in self.procs.values()}
            log.info("HTTP workers stopped", exit_codes=codes)
        for task in self._slots:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await task
        if self.link is not None:
            await self.link.close()
        self.remove()

    def remove(self) -> None:
        """Gives the port back and deletes the pool's directory."""
        if self.reserved is not None:
            self.reserved.close()
            self.reserved = None
        shutil.rmtree(self.dir, ignore_errors=True)
