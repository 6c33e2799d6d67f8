"""Fixtures shared by every test scope.

Services: PostgreSQL runs on 127.0.0.1:5432 on the development and CI machines. A test that
needs it skips when it is absent on a developer's machine, but fails under CI (CI=true):
in CI a missing service is a failure, never a silent skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import structlog
from litestar import Litestar

from alarmdesk import logs
from alarmdesk.bootstrap import Services, build_services
from alarmdesk.bus.jetstream import IntakeLog, LogSettings
from alarmdesk.config import Config
from alarmdesk.domain import commands
from alarmdesk.domain.signal import Location, SignalIn, SourceKind
from alarmdesk.domain.taxonomy import default_types
from alarmdesk.domain.units import Unit
from alarmdesk.safeguards.audit import Actor
from alarmdesk.store import repository as repo
from alarmdesk.store.database import make_engine, upgrade
from alarmdesk.web.app import create_app

# A test run keeps structlog's own set-up (alarmdesk.logs.configure is for entrypoints), but
# with tracebacks shown without their locals, as alarmdesk shows them to a person.
structlog.configure(
    processors=[
        *structlog.get_config()["processors"][:-1],
        logs.console_renderer(colors=sys.stderr.isatty()),
    ]
)

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures"  # samples from the field, with their sources
BUILD_INPUTS = REPO_ROOT / "scripts" / "data"  # the demo city's inputs and the APCO type list
PG_ADMIN_URL = os.environ.get("ALARMDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(what: str) -> None:
    """Skips on a developer's machine, fails in CI."""
    if IN_CI:
        pytest.fail(f"{what} is not reachable, and CI requires it")
    pytest.skip(f"{what} is not reachable")


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# -- tests that start a process or a server are marked slow ---------------------------------

# Fixtures that start one (a server in a thread, a receiver on a port, a private broker, a
# browser, `alarmdesk serve`): every test that uses one is marked slow. A test that starts one
# itself carries an explicit ``pytest.mark.slow``.
SERVER_FIXTURES = frozenset(
    {
        "live_server",
        "console",
        "browser",
        "start_receiver",
        "live_receiver",
        "private_broker",
        "servers",
    }
)
# What starting one looks like from inside Python (sys.addaudithook events).
_STARTS = frozenset(
    {
        "subprocess.Popen",
        "os.posix_spawn",
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.spawn",
        "os.system",
        "socket.bind",
    }
)
_unmarked: list[str] = []  # the node id of the running test when it is not marked slow


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def _refuse_unmarked_starts(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.bind" and args[1] == ("", 0):
        return  # a client's source address (paho's default), not a server
    if _unmarked and event in _STARTS:
        raise RuntimeError(
            f"{_unmarked[0]} starts a process or a server ({event}) but is not marked slow: "
            "mark it, or use a fixture listed in tests.conftest.SERVER_FIXTURES"
        )


sys.addaudithook(_refuse_unmarked_starts)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    """While a test that is not marked slow runs (set-up and teardown included), starting a
    process or binding a socket raises: so `-m "not slow"` runs none that does."""
    if item.get_closest_marker("slow") is None:
        _unmarked.append(item.nodeid)
    try:
        return (yield)
    finally:
        _unmarked.clear()


# -- databases -------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'alarmdesk.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database with a random name, dropped afterwards."""
    if not port_open("127.0.0.1", 5432):
        service_missing("PostgreSQL on 127.0.0.1:5432")
    name = f"alarmdesk_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def nats_url() -> str:
    """NATS with JetStream on 127.0.0.1:4222 (tests make streams of their own names)."""
    if not port_open("127.0.0.1", 4222):
        service_missing("NATS on 127.0.0.1:4222")
    return "nats://127.0.0.1:4222"


@pytest.fixture
async def intake(nats_url: str) -> AsyncIterator[IntakeLog]:
    """An intake log on a stream of the test's own (4 partitions), deleted after."""
    log = IntakeLog(LogSettings(nats_url, f"TEST_{uuid.uuid4().hex[:10]}", partitions=4))
    await log.connect()
    await log.ensure_stream()
    try:
        yield log
    finally:
        await log.delete_stream()
        await log.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Runs the test on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


# A small city for tests: two desks split at longitude 0, an alarm desk for equipment.
TEST_DESKS: list[dict[str, Any]] = [
    {
        "id": "west",
        "name": "West",
        "categories": ["*"],
        "jurisdiction": {
            "type": "Polygon",
            "coordinates": [[[-10, 40], [0, 40], [0, 60], [-10, 60], [-10, 40]]],
        },
    },
    {
        "id": "east",
        "name": "East",
        "categories": ["*"],
        "jurisdiction": {
            "type": "Polygon",
            "coordinates": [[[0, 40], [10, 40], [10, 60], [0, 60], [0, 40]]],
        },
    },
    {
        "id": "alarms",
        "name": "Alarm monitoring",
        "categories": ["fire", "property", "violence"],
        "sources": ["equipment"],
    },
]
TEST_UNITS = [
    Unit(id=f"E{i}", kind="engine", capabilities=("fire", "medical")) for i in range(1, 6)
]


def prepare_database(url: str) -> None:
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        repo.upsert_types(conn, default_types())
        repo.upsert_desks(conn, TEST_DESKS)
        repo.upsert_units(conn, TEST_UNITS)
    engine.dispose()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> datetime:
        self.now += timedelta(**kw)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Files of this run that no fixture's tmp_path holds (signing keys, the offline app's database),
# removed when the run ends. Nothing a test writes goes into the working tree (docs/testing.md).
_SCRATCH = tempfile.TemporaryDirectory(prefix="alarmdesk-tests-")


def test_config(url: str) -> Config:
    cfg = Config()
    cfg.database.url = url
    cfg.audit.key_file = str(Path(tempfile.mkdtemp(prefix="key-", dir=_SCRATCH.name)) / "audit.key")
    cfg.analytics.dir = tempfile.mkdtemp(prefix="analytics-", dir=_SCRATCH.name)
    cfg.stream.heartbeat_seconds = 0.5
    cfg.routing.fallback_desk = "west"
    # No scheduled purge on the wall clock: a live server of the tests would otherwise erase,
    # a minute after it starts, what a test imported of years past (the San Francisco week),
    # while that test reads it. The schedule itself is tested through retention_loop.
    cfg.retention.schedule_hours = 0
    return cfg


def offline_app() -> Litestar:
    """The web app, never served: for its routes and OpenAPI document. ``create_app()`` with
    the default configuration would create ``var/`` and a signing key in the working tree."""
    return create_app(test_config(f"sqlite:///{Path(_SCRATCH.name) / 'offline.db'}"))


@pytest.fixture
def services_factory() -> Iterator[Callable[..., Services]]:
    """Builds started Services on a prepared database; stops them after the test."""
    made: list[Services] = []
    loops: list[asyncio.AbstractEventLoop] = []

    def make(
        url: str,
        *,
        clock: Callable[[], datetime] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        prepare: bool = True,
    ) -> Services:
        if prepare:
            prepare_database(url)
        svc = build_services(test_config(url), **({"clock": clock} if clock else {}))
        if loop is None:
            loop = asyncio.new_event_loop()
            loops.append(loop)
        svc.start(loop)
        made.append(svc)
        return svc

    yield make
    for svc in made:
        if svc.started:
            svc.stop()
        # again: a test may read through the engine after it stopped the services, and the
        # pool it opened then would be left to the collector, which warns in a later test
        svc.engine.dispose()
    for loop in loops:
        loop.close()


class Desk:
    """A centre driven by hand on a fake clock: calls come in, an operator acts on them and
    units report, each handed to the writer and run to its commit on the services' loop."""

    OPERATOR = Actor("user:op", "operator")

    def __init__(self, svc: Services, loop: asyncio.AbstractEventLoop, clock: FakeClock) -> None:
        self.svc, self.loop, self.clock = svc, loop, clock

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def call(
        self, key: str, *, lat: float = 51.5, lon: float = -0.1, summary: str = "smoke"
    ) -> int:
        """A call (a structure fire) at (lat, lon), now; the incident it opened or joined."""
        signal = SignalIn(
            source_kind=SourceKind.CALL,
            source_id="ct-1",
            type_code="FSTRU",
            occurred_at=self.clock(),
            location=Location(lat=lat, lon=lon),
            summary=summary,
            idempotency_key=key,
        )
        (receipt,) = self.run(self.svc.writer.submit_signals([signal]))
        return int(receipt.incident_id)

    def command(self, command: Any) -> Any:
        return self.run(self.svc.writer.submit_command(command, self.OPERATOR))

    def unit(self, unit_id: str, status: str) -> Any:
        """The unit's crew reports a status (en_route, on_scene, available…)."""
        report = commands.UnitReport(unit_id, "crew", status=status)
        return self.run(self.svc.writer.submit_unit_report(report, self.OPERATOR))


@pytest.fixture
def desk_factory(services_factory) -> Iterator[Callable[[str, FakeClock], Desk]]:
    """Started services on a prepared database (the caller prepares it), driven as a
    :class:`Desk` on the given fake clock."""
    loops: list[asyncio.AbstractEventLoop] = []

    def make(url: str, clock: FakeClock) -> Desk:
        loop = asyncio.new_event_loop()
        loops.append(loop)
        return Desk(services_factory(url, loop=loop, prepare=False, clock=clock), loop, clock)

    yield make
    for loop in loops:
        loop.close()


# -- a live server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TEST_PASSWORD = "correct horse battery"
# role → desks of the token each live server gets; "operator" sees every desk.
TEST_TOKENS = {
    "intake": [],
    "operator": ["*"],
    "west_operator": ["west"],
    "call_taker": ["*"],
    "supervisor": ["*"],
    "auditor": ["*"],
    "rights_officer": ["*"],
    "admin": ["*"],
}


def create_test_tokens(url: str) -> dict[str, str]:
    from alarmdesk.store import accounts

    engine = make_engine(url)
    now = datetime.now(UTC)
    tokens = {}
    with engine.begin() as conn:
        for name, desks in TEST_TOKENS.items():
            role = "operator" if name == "west_operator" else name
            tokens[name] = accounts.create_token(conn, name, role, desks, now)[1]
    engine.dispose()
    return tokens


@dataclass
class LiveServer:
    url: str
    services: Services
    tokens: dict[str, str]
    app: Any = None  # the Litestar app served

    def headers(self, who: str = "operator") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def client(self, who: str = "operator", **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(who), **kw)

    def post_signal(self, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + "/api/v1/signals", json=body, headers=self.headers("intake"))


@contextlib.contextmanager
def serve_live(
    url: str, cfg: Config | None = None, *, fast_ingest: bool = True
) -> Iterator[LiveServer]:
    """alarmdesk served by uvicorn in a thread, on a free port, over a fresh database (with
    ``cfg`` made by :func:`test_config` and changed by the test, when given).
    ``fast_ingest=False``: the ingest routes served by Litestar alone (web/fast_ingest.py)."""
    import uvicorn

    prepare_database(url)
    tokens = create_test_tokens(url)
    svc = build_services(cfg or test_config(url))
    app = create_app(svc=svc, fast_ingest=fast_ingest)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", svc, tokens, app)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def live_server(sqlite_url: str) -> Iterator[LiveServer]:
    """alarmdesk served by uvicorn in a thread, on a free port, over a fresh database."""
    with serve_live(sqlite_url) as live:
        yield live
