"""Browser tests: Playwright driving Debian's Chromium (/usr/bin/chromium) against a live
server on 127.0.0.1. No browser is downloaded. Without Chromium or the playwright package the
tests skip on a developer's machine and fail in CI (tests.conftest.service_missing).

Screenshots go to $ALARMDESK_TEST_ARTIFACTS/browser/ when that is set, else to browser/ in
pytest's temporary directory of the run (kept for the last three runs); never into the working
tree unless asked. The path is printed at the end of the run (docs/testing.md).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    TEST_PASSWORD,
    LiveServer,
    create_test_tokens,
    free_port,
    prepare_database,
    service_missing,
    test_config,
)

CHROMIUM = os.environ.get("ALARMDESK_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1366, "height": 768}
# name → (role, desks); everyone's password is TEST_PASSWORD
USERS = {
    "westop": ("operator", ["west"]),
    "eastop": ("operator", ["east"]),
    "calltaker": ("call_taker", ["west", "east"]),
    "auditor1": ("auditor", ["*"]),
    "rights1": ("rights_officer", ["*"]),
    "admin1": ("admin", ["*"]),
    "chief1": ("supervisor", ["*"]),
}
_keys = itertools.count()
_places = itertools.count()
_saved: list[Path] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _saved:
        terminalreporter.write_line(f"browser screenshots in {_saved[0].parent}:")
        for path in _saved:
            terminalreporter.write_line(f"  {path.name}")


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $ALARMDESK_TEST_ARTIFACTS/browser, else the run's temporary
    directory."""
    chosen = os.environ.get("ALARMDESK_TEST_ARTIFACTS")
    where = Path(chosen) if chosen else tmp_path_factory.getbasetemp()
    return where / "browser"


@pytest.fixture(scope="package")  # sync Playwright holds an event loop: end it with tests/browser
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file():
        service_missing(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("the playwright Python package (pip install playwright)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server for the browser tests (like tests.conftest.live_server, but started
    once: the suite stays fast), with the browser tests' users. Tests share its database, so
    each works on incidents of its own, at places of its own (see ``signal``)."""
    import uvicorn

    from alarmdesk.bootstrap import build_services
    from alarmdesk.store import accounts
    from alarmdesk.web.app import create_app

    url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'alarmdesk.db'}"
    prepare_database(url)
    tokens = create_test_tokens(url)
    svc = build_services(test_config(url))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(svc=svc),
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
    with svc.engine.begin() as conn:
        for name, (role, desks) in USERS.items():
            accounts.create_user(conn, name, TEST_PASSWORD, role, desks, datetime.now(UTC))
    yield LiveServer(f"http://127.0.0.1:{port}", svc, tokens)
    server.should_exit = True
    thread.join(10)


@dataclass
class Desk:
    """One signed-in browser: a context of its own (own cookies) and one page."""

    context: Any
    page: Any
    url: str

    def goto(self, path: str) -> Any:
        return self.page.goto(self.url + path)


def open_desk(browser: Any, url: str, name: str) -> Desk:
    """A new browser context signed in as ``name`` (password TEST_PASSWORD) on the server at
    ``url``; the caller closes ``desk.context``."""
    context = browser.new_context(viewport=VIEWPORT, base_url=url)
    context.set_default_timeout(5000)
    page = context.new_page()
    page.goto(url + "/login")
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', TEST_PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state("domcontentloaded")
    assert "/login" not in page.url, page.content()[:2000]
    return Desk(context, page, url)


@pytest.fixture
def sign_in(browser: Any, console: LiveServer) -> Iterator[Callable[[str], Desk]]:
    desks: list[Desk] = []

    def open_as(name: str) -> Desk:
        desks.append(open_desk(browser, console.url, name))
        return desks[-1]

    yield open_as
    for d in desks:
        d.context.close()


def place(west: bool = True) -> tuple[float, float]:
    """(lon, lat) of a fresh place, kilometres from any other: calls close together in
    space and time fold into one incident, and the tests share one database."""
    n = next(_places)
    lon = -1.0 - (n % 8) - 0.05 * (n // 8)
    return (lon if west else -lon), 45.0 + 0.05 * (n % 97)


def signal(
    lon: float | None = None, lat: float | None = None, type_code: str = "FSTRU", **kw: Any
) -> dict:
    """A call-type signal; lon < 0 is the west desk, lon > 0 the east desk."""
    if lon is None or lat is None:
        lon, lat = place()
    return {
        "source_kind": "call",
        "source_id": "browser-test",
        "type_code": type_code,
        "occurred_at": datetime.now(UTC).isoformat(),
        "idempotency_key": f"browser-{next(_keys)}-{os.getpid()}",
        "location": {"lat": lat, "lon": lon, "address": kw.pop("address", "1 Test Street")},
        "summary": kw.pop("summary", "smoke seen from the street"),
        **kw,
    }


def screenshot(page: Any, artifacts: Path, name: str) -> Path:
    artifacts.mkdir(parents=True, exist_ok=True)
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path))
    _saved.append(path)
    return path


def wait_until(page: Any, expression: str, timeout: float = 5.0) -> Any:
    """Polls a JS expression from outside the page until it is truthy (Playwright's
    wait_for_function evaluates strings inside the page, which the console's
    Content-Security-Policy forbids: no eval)."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)
