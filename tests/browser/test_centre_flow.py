"""A centre's shift through the console, in Chromium: ``alarmdesk serve`` with its DC-09
receiver, on a database of its own, set up from YAML files by ``alarmdesk config apply``; an
encrypted fire alarm from a registered panel reaches the fire desk's queue, escalates to the
supervisor when nobody acknowledges it, is acknowledged, dispatched as the response plan
recommends, followed by its units' own reports (en route, on scene) on the incident page and the
unit board, and resolved once the procedure's required steps are ticked; then a second zone of an
intruder panel confirms its first one. The same flow as tests/integration/test_centre_flow.py,
asserted on what the people at the desks see."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from alarmdesk.domain.taxonomy import default_types
from alarmdesk.store import accounts
from alarmdesk.store import repository as repo
from alarmdesk.store.database import make_engine, upgrade
from tests.browser.conftest import Desk, open_desk, screenshot
from tests.conftest import TEST_PASSWORD, free_port
from tests.integration.test_centre_flow import KEY, cid_frame
from tests.integration.test_dc09_receiver import Panel

pytestmark = pytest.mark.slow  # alarmdesk serve, a DC-09 receiver, Chromium

ESCALATE_AFTER = 5  # seconds: the shortest first step a policy may have (domain/escalation.py)
LIVE = "#live[data-state='live']"
INTRUDER = "7B02"

# The centre's set-up, one file per concern as a centre would keep them. The fire panel sends
# encrypted frames (its AES key is the one the receiver tests use); the intruder panel plain ones.
AREA = (
    "{type: Polygon, coordinates: "
    "[[[-0.4, 51.3], [0.1, 51.3], [0.1, 51.7], [-0.4, 51.7], [-0.4, 51.3]]]}"
)
SETUP = {
    "desks.yaml": f"""\
desks:
  - {{id: fire, name: Fire desk, categories: [fire], jurisdiction: {AREA}}}
  - {{id: alarms, name: Intruder alarms, categories: [property], jurisdiction: {AREA}}}
  - {{id: sup, name: Supervisor, jurisdiction: {AREA}}}
""",
    "units.yaml": """\
stations:
  - {id: S1, name: Station 1, lat: 51.500, lon: -0.120}
  - {id: S2, name: Station 2, lat: 51.560, lon: -0.200}
units:
  - {id: E1, kind: engine, station: S1, capabilities: [fire]}
  - {id: E2, kind: engine, station: S2, capabilities: [fire]}
  - {id: L1, kind: truck, station: S1, capabilities: [fire, rescue]}
  - {id: P1, kind: patrol, station: S1, capabilities: [keyholding]}
""",
    "panels.yaml": f"""\
panels:
  - account: 7A01
    site: Riverside warehouse
    address: 1 River Road
    lat: 51.505
    lon: -0.125
    key_hex: '{KEY}'
    zones: {{1: Smoke detector hall}}
  - account: {INTRUDER}
    site: Corner shop
    address: 9 Market Street
    lat: 51.520
    lon: -0.140
    zones: {{1: Front door, 2: Store PIR}}
""",
    "rules.yaml": f"""\
routing:
  - {{id: fire-rule, match: {{categories: [fire], within_desk: fire}}, desks: [fire]}}
  - {{id: intruder-rule, match: {{categories: [property], sources: [equipment]}}, desks: [alarms]}}
escalation:
  - id: fire-ack
    match: {{desks: [fire]}}
    steps:
      - {{after_seconds: {ESCALATE_AFTER}, add_desks: [sup]}}
    on_scene_minutes: 15
response_plans:
  - {{id: fire-alarm, types: [ALRF], units: [{{kind: engine, count: 1}}, {{kind: truck}}]}}
""",
    # The centre's own fire-alarm procedure, with required steps ("!").
    "procedures.yaml": """\
procedures:
  - type: ALRF
    steps: ["!Call the premises", Dispatch nearest engine company, "!Call keyholder"]
""",
}
# name → (role, desks)
PEOPLE = {
    "fireop": ("operator", ["fire"]),
    "alarmop": ("operator", ["alarms"]),
    "chief": ("supervisor", ["sup"]),
}


@dataclass
class Centre:
    url: str
    dc09: tuple[str, int]
    avl_token: str  # an AVL feed's intake token: units report their own status
    log: Path

    def report(self, unit: str, status: str) -> None:
        r = httpx.post(
            f"{self.url}/api/v1/units/{unit}/report",
            json={"status": status},
            headers={"Authorization": f"Bearer {self.avl_token}"},
        )
        assert r.status_code == 200, r.text


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("ALARMDESK_")},
    )


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[Centre]:
    """``alarmdesk serve`` with a DC-09 receiver, on a database set up from files."""
    url = f"sqlite:///{tmp_path / 'centre.db'}"
    port, dc09 = free_port(), free_port()
    config = tmp_path / "alarmdesk.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n'
        f"[server]\nport = {port}\n"
        f'[audit]\nkey_file = "{tmp_path / "audit.key"}"\n'
        "[stream]\nheartbeat_seconds = 0.5\n"
        f'[intake]\ndc09_port = {dc09}\ndc09_host = "127.0.0.1"\n'
    )
    upgrade(url)  # what `alarmdesk db upgrade` does: the schema and the default types
    engine = make_engine(url)
    with engine.begin() as conn:
        repo.upsert_types(conn, default_types())
    folder = tmp_path / "centre"
    folder.mkdir()
    for name, text in SETUP.items():
        (folder / name).write_text(text)
    applied = cli("config", "apply", str(folder), "--config", str(config), cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "fire-ack" in applied.stdout and "7A01" in applied.stdout
    now = datetime.now(UTC)
    with engine.begin() as conn:
        for name, (role, desks) in PEOPLE.items():
            accounts.create_user(conn, name, TEST_PASSWORD, role, desks, now)
        avl = accounts.create_token(conn, "avl-feed", "intake", [], now)[1]
    engine.dispose()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "alarmdesk.cli", "serve", "--config", str(config)],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("ALARMDESK_")},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a loaded machine starts slowly
        while True:
            try:
                if httpx.get(base + "/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("alarmdesk serve did not start:\n" + log.read_text())
            time.sleep(0.1)
        yield Centre(base, ("127.0.0.1", dc09), avl, log)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def desks(browser: Any, centre: Centre) -> Iterator[dict[str, Desk]]:
    """Everyone signed in, in a browser context of their own."""
    signed = {name: open_desk(browser, centre.url, name) for name in PEOPLE}
    yield signed
    for d in signed.values():
        d.context.close()


def send(centre: Centre, frame: bytes) -> None:
    """A panel's frame over TCP; the receiver acknowledges it once it is stored."""
    panel = Panel(centre.dc09)
    try:
        panel.send(frame)
        (reply,) = panel.read(1)
    finally:
        panel.close()
    assert reply.token == "ACK", reply


def now() -> datetime:
    """The panel's clock: DC-09 timestamps have whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


def timeline(page: Any) -> list[str]:
    """The incident page's timeline, one "What: Detail" line per event."""
    rows = page.locator("#timeline tbody tr")
    return [
        f"{rows.nth(i).locator('td').nth(1).inner_text()}: "
        + " ".join(rows.nth(i).locator("td").nth(3).inner_text().split())
        for i in range(rows.count())
    ]


def row(incident_id: int | str) -> str:
    return f"#queue-body tr[data-id='{incident_id}']"


def test_a_fire_alarm_and_an_intruder_alarm_through_the_console(
    centre: Centre, desks: dict[str, Desk], artifacts: Path
) -> None:
    operator, chief = desks["fireop"].page, desks["chief"].page
    for page in (operator, chief):
        page.wait_for_selector(LIVE)
    board = desks["fireop"].context.new_page()  # the operator's second screen
    board.goto(centre.url + "/units")
    board.wait_for_selector("#units-body tr[data-id='E1'].st-available")

    # 1. An encrypted fire alarm from the registered panel: live in the fire desk's queue.
    send(centre, cid_frame("0001", "1110 01 001", now()))
    tr = operator.wait_for_selector("#queue-body tr[data-status='new']")
    assert tr is not None
    fire = tr.get_attribute("data-id")
    assert "ALRF" in operator.inner_text(f"{row(fire)} .c-type")
    assert operator.inner_text(f"{row(fire)} .c-desks") == "fire"
    assert "Riverside warehouse" in operator.inner_text(f"{row(fire)} .c-loc")
    assert chief.locator(row(fire)).count() == 0  # not the supervisor's yet (checked below)

    # 2. Nobody acknowledges: the escalation step adds the supervisor's desk; the operator's row
    # is marked and its age turns red, and the supervisor's queue has it.
    chief.wait_for_selector(row(fire), timeout=(ESCALATE_AFTER + 10) * 1000)
    assert chief.inner_text(f"{row(fire)} .c-desks") == "fire, sup"
    operator.wait_for_selector(f"{row(fire)}.escalated .tag.esc")
    operator.wait_for_selector(f"{row(fire)} .age.age-red")
    screenshot(operator, artifacts, "flow-escalated")

    # 3. The operator acknowledges in the queue, opens the incident and dispatches the units
    # the response plan recommends.
    for _ in range(operator.locator("#queue-body tr").count()):
        operator.keyboard.press("j")
        if operator.get_attribute(row(fire), "aria-selected") == "true":
            break
    operator.keyboard.press("a")
    operator.wait_for_selector(f"{row(fire)}[data-status='acknowledged']")
    chief.wait_for_selector(f"{row(fire)}[data-status='acknowledged']")
    work = desks["fireop"].context.new_page()
    work.goto(f"{centre.url}/incidents/{fire}")
    work.wait_for_selector(LIVE)
    assert "fire-rule" in work.inner_text("#panel")  # routed by the set-up's rule
    assert "fire-ack" in work.inner_text("#inc-escalation")
    work.keyboard.press("d")
    work.wait_for_selector("#dlg-dispatch[open]")
    work.wait_for_selector("#dlg-dispatch li.recommended >> nth=1")
    picks = work.locator("#dlg-dispatch li.recommended")
    texts = [picks.nth(i).inner_text() for i in range(picks.count())]
    assert len(texts) == 2, texts
    assert texts[0].startswith("E1") and "for engine" in texts[0] and "ETA" in texts[0], texts
    assert texts[1].startswith("L1") and "for truck" in texts[1] and "ETA" in texts[1], texts
    assert work.input_value("#dlg-dispatch input[name=units]") == "E1, L1"
    work.keyboard.press("Enter")
    work.wait_for_selector("#panel[data-status='dispatched']")
    assert work.locator("#inc-units .unit").all_inner_texts() == ["E1", "L1"]
    operator.wait_for_selector(f"{row(fire)}[data-status='dispatched']")
    board.wait_for_selector("#units-body tr[data-id='E1'].st-dispatched", timeout=8000)
    assert f"#{fire}" in board.inner_text("#units-body tr[data-id='L1']")

    # 4. The crew's own reports (as an AVL feed sends them): the page and the board follow.
    centre.report("E1", "en_route")
    board.wait_for_selector("#units-body tr[data-id='E1'].st-en_route", timeout=8000)
    centre.report("E1", "on_scene")
    work.wait_for_selector("#panel[data-status='on_scene']")
    assert "En route" in work.inner_text("#panel .times")
    assert "On scene" in work.inner_text("#panel .times")
    board.wait_for_selector("#units-body tr[data-id='E1'].st-on_scene", timeout=8000)
    operator.wait_for_selector(f"{row(fire)}[data-status='on_scene']")

    # 5. Resolving is refused while a required step is open; ticked, it resolves and the
    # incident leaves the queue.
    required = work.locator("#checklist li.mandatory.open")
    assert required.count() == 2
    work.keyboard.press("r")
    work.wait_for_selector("#dlg-resolve[open]")
    work.select_option("#dlg-resolve select[name=disposition]", "handled")
    work.keyboard.press("Enter")
    error = work.wait_for_selector("#dlg-resolve [data-fill=error]:not([hidden])")
    assert error is not None
    # The open required steps, numbered as the checklist numbers them.
    assert "1. Call the premises; 3. Call keyholder" in error.inner_text(), error.inner_text()
    assert work.get_attribute("#panel", "data-status") == "on_scene"
    work.keyboard.press("Escape")
    work.wait_for_selector("#dlg-resolve:not([open])", state="attached")
    for step in (0, 2):
        work.click(f'#checklist button[data-step="{step}"]')
        work.wait_for_selector(f'#checklist li[data-step="{step}"].done')
    assert "fireop" in work.inner_text('#checklist li[data-step="2"]')
    work.keyboard.press("r")
    work.wait_for_selector("#dlg-resolve[open]")
    work.select_option("#dlg-resolve select[name=disposition]", "handled")
    work.keyboard.press("Enter")
    work.wait_for_selector("#panel[data-status='resolved']")
    assert "handled" in work.inner_text("#panel")
    operator.wait_for_selector(row(fire), state="detached")
    chief.wait_for_selector(row(fire), state="detached")
    # The timeline tells the story in words: the escalation, the dispatch as recommended, the
    # crew's report, the ticked steps.
    told = timeline(work)
    assert "Escalated: step 1 of 1 (fire-ack) · desks added: sup" in told
    assert any(t.startswith("Status changed") and "as recommended" in t for t in told), told
    assert "Unit status: E1 en route" in told
    assert "Procedure step done: 3. Call keyholder" in told
    screenshot(work, artifacts, "flow-resolved")

    # 6. An intruder panel: zone 1, then zone 2 within the confirmation window.
    alarms = desks["alarmop"].page
    alarms.wait_for_selector(LIVE)
    send(centre, cid_frame("0001", "1130 01 001", now(), INTRUDER, key=None))
    tr = alarms.wait_for_selector("#queue-body tr[data-status='new']")
    assert tr is not None
    intrusion = tr.get_attribute("data-id")
    assert alarms.inner_text(f"{row(intrusion)} .c-desks") == "alarms"
    assert alarms.inner_text(f"{row(intrusion)} .c-sig") == "1"
    alarms.goto(f"{centre.url}/incidents/{intrusion}")
    alarms.wait_for_selector(LIVE)
    assert alarms.locator("#panel .tag.confirmed").count() == 0
    priority = alarms.inner_text("#panel .inc-head .prio")
    send(centre, cid_frame("0002", "1130 01 002", now(), INTRUDER, key=None))
    alarms.wait_for_selector("#panel .tag.confirmed")
    assert alarms.inner_text("#panel .inc-head .prio") == f"P{int(priority[1:]) - 1}"
    assert "Store PIR" in alarms.inner_text("#panel .signals")
    assert any("zone 2 · confirms the alarm" in t for t in timeline(alarms)), timeline(alarms)
    alarms.goto(centre.url + "/")  # the queue marks it too
    alarms.wait_for_selector(f"{row(intrusion)} .c-type .tag.confirmed")
    screenshot(alarms, artifacts, "flow-confirmed")
