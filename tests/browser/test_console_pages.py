"""The console's pages over plain HTTP (no browser needed): every page checks the caller's
role and desks on the server, the sign-in form is CSRF-protected, and the committed
browser assets are the ones package-lock.json pins."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import msgspec
import pytest
import sqlalchemy as sa

from alarmdesk.bus.jetstream import QueuedSignal
from alarmdesk.domain.signal import SignalIn
from alarmdesk.safeguards.access import Permission
from alarmdesk.store import parked as parked_store
from alarmdesk.store import tables as t
from alarmdesk.web.console.settings import DEMO_STREETS, DEMO_STREETS_ATTRIBUTION
from tests.browser.conftest import place, signal
from tests.conftest import REPO_ROOT, TEST_PASSWORD, offline_app

PAGES = ["/", "/map", "/calls/new", "/reports/new"]


def form_token(html: str) -> str:
    m = re.search(r'name="form_token" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


@contextmanager
def signed_in(url: str, name: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=5) as c:
        page = c.get("/login")
        r = c.post(
            "/login",
            data={"name": name, "password": TEST_PASSWORD, "form_token": form_token(page.text)},
        )
        assert r.status_code == 303, r.text[:500]
        yield c


def csrf_of(client: httpx.Client) -> str:
    m = re.search(r'<meta name="csrf-token" content="([^"]*)"', client.get("/calls/new").text)
    assert m
    return m.group(1)


def test_every_console_route_names_a_permission_or_is_public() -> None:
    app = offline_app()
    for route in app.routes:
        if route.path.startswith("/api/"):
            continue
        for handler in route.route_handlers:  # type: ignore[attr-defined]
            if set(handler.http_methods) <= {"HEAD", "OPTIONS"}:
                continue
            opt = handler.opt
            assert opt.get("public") or isinstance(opt.get("permission"), Permission), route.path


@pytest.mark.parametrize("path", [*PAGES, "/incidents/1"])
def test_without_a_session_a_page_sends_you_to_sign_in(console, path) -> None:
    r = httpx.get(console.url + path)
    assert r.status_code == 302
    assert r.headers["location"] == "/login?next=" + path


def test_static_files_and_the_sign_in_page_are_public(console) -> None:
    assert httpx.get(console.url + "/login").status_code == 200
    r = httpx.get(console.url + "/static/vendor/htmx.org/htmx.min.js")
    assert r.status_code == 200 and "htmx" in r.text[:2000]


def test_a_role_without_the_permission_gets_a_403_page(console) -> None:
    with signed_in(console.url, "auditor1") as c:
        for path in PAGES:
            r = c.get(path)
            assert r.status_code == 403, path
            assert "text/html" in r.headers["content-type"]
            assert "auditor" in r.text and "Not allowed" in r.text


def test_a_call_taker_may_take_calls_but_not_act(console) -> None:
    with signed_in(console.url, "calltaker") as c:
        for path in PAGES:
            assert c.get(path).status_code == 200, path
        queue = c.get("/").text
        assert 'id="dlg-dispatch"' not in queue  # no action dialogs for a role that cannot act
        incident_id = console.post_signal(signal()).json()["incident_id"]
        page = c.get(f"/incidents/{incident_id}").text
        assert 'data-action="acknowledge"' not in page
        r = c.post(
            f"/api/v1/incidents/{incident_id}/acknowledge",
            json={},
            headers={"X-CSRF-Token": csrf_of(c)},
        )
        assert r.status_code == 403


def test_an_operator_only_sees_incidents_of_their_desks(console) -> None:
    lon, lat = place(west=False)
    east_id = console.post_signal(signal(lon=lon, lat=lat)).json()["incident_id"]
    west_id = console.post_signal(signal()).json()["incident_id"]
    with signed_in(console.url, "westop") as c:
        r = c.get(f"/incidents/{east_id}")
        assert r.status_code == 403 and "not routed to your desks" in r.text
        assert c.get(f"/incidents/{west_id}").status_code == 200
        assert c.get(f"/incidents/{west_id}/panel").status_code == 200
        queue = c.get("/").text
        boot = re.search(r'<script type="application/json" id="boot">(.*?)</script>', queue, re.S)
        assert boot
        ids = {item["id"] for item in json.loads(boot.group(1))["items"]}
        assert west_id in ids and east_id not in ids
        assert c.get("/", params={"desk": "east"}).status_code == 403


def test_the_incident_stream_carries_only_that_incident(console) -> None:
    first = console.post_signal(signal()).json()["incident_id"]
    other = console.post_signal(signal()).json()["incident_id"]
    assert other != first
    with console.client() as api:  # the other incident changes, then the first one: the
        for incident in (other, first):  # first one's note is the last event of the stream
            path = f"/api/v1/incidents/{incident}/notes"
            assert api.post(path, json={"text": "checked"}).status_code == 200
    events: list[str] = []
    with (
        signed_in(console.url, "westop") as c,
        c.stream("GET", f"/incidents/{first}/events", params={"last_event_id": 0}) as r,
    ):
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("event: "):
                assert line == "event: changed", line
            elif line.startswith("data: "):
                events.append(line.removeprefix("data: "))
                if events[-1] == "incident.noted":
                    break
    # Every event of the live stream until the first one's note went by: only its own came.
    assert events == ["incident.opened", "incident.noted"]


def test_the_sign_in_form_needs_its_own_token(console) -> None:
    with httpx.Client(base_url=console.url) as c:
        creds = {"name": "westop", "password": TEST_PASSWORD}
        r = c.post("/login", data={**creds, "form_token": "forged"})
        assert r.status_code == 403 and "alarmdesk_session" not in r.cookies
        token = form_token(c.get("/login").text)
        c.cookies.set("alarmdesk_login", "another-nonce", path="/login")
        r = c.post("/login", data={**creds, "form_token": token})
        assert r.status_code == 403, "a token for another cookie is refused"
        c.cookies.clear()
        token = form_token(c.get("/login").text)
        r = c.post("/login", data={**creds, "form_token": token, "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/", "no open redirect"
        assert "alarmdesk_session" in r.cookies


def test_the_forms_need_the_csrf_header_and_their_permission(console) -> None:
    lon, lat = place()
    body = {"type": "FSTRU", "coords": f"{lat}, {lon}", "form_key": "abcdefgh12345678"}
    with signed_in(console.url, "calltaker") as c:
        assert c.post("/calls", data=body).status_code == 403  # no X-CSRF-Token
        r = c.post("/calls", data=body, headers={"X-CSRF-Token": csrf_of(c), "HX-Request": "true"})
        assert r.status_code == 200 and 'id="intake-ok"' in r.text
        again = c.post(
            "/calls", data=body, headers={"X-CSRF-Token": csrf_of(c), "HX-Request": "true"}
        )
        incident = re.search(r'data-incident="(\d+)"', r.text)
        assert incident and f'data-incident="{incident.group(1)}"' in again.text
    with signed_in(console.url, "auditor1") as c:
        r = c.post("/calls", data=body, headers={"X-CSRF-Token": "x"})
        assert r.status_code == 403


def test_a_call_form_joins_only_an_incident_of_the_call_takers_desks(console) -> None:
    """The form's choice of incident is kept as the API's ``join`` is: an incident of another
    desk is not joined (the call opens its own, never lost)."""
    lon, lat = place(west=False)
    east = console.post_signal(signal(type_code="FSTRU", lon=lon, lat=lat)).json()["incident_id"]
    lon, lat = place(west=True)
    body = {"type": "FSTRU", "coords": f"{lat}, {lon}", "form_key": "joinjoin12345678"}
    with signed_in(console.url, "westop") as c:
        headers = {"X-CSRF-Token": csrf_of(c), "HX-Request": "true"}
        r = c.post("/calls", data={**body, "choice": str(east)}, headers=headers)
        assert r.status_code == 200 and 'id="intake-ok"' in r.text, r.text[:500]
        opened = re.search(r'data-incident="(\d+)"', r.text)
        assert opened and int(opened.group(1)) != east


def test_the_committed_browser_assets_match_the_lock() -> None:
    spec = importlib.util.spec_from_file_location(
        "build_assets", REPO_ROOT / "scripts" / "build_assets.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.check() == []


def map_boot(client: httpx.Client) -> dict:
    page = client.get("/map").text
    boot = re.search(r'<script type="application/json" id="boot">(.*?)</script>', page, re.S)
    assert boot
    return json.loads(boot.group(1))["map"]


def test_without_a_background_configured_the_map_draws_the_demo_streets(console) -> None:
    data = DEMO_STREETS.read_bytes()
    with signed_in(console.url, "westop") as c:
        cfg = map_boot(c)
        assert cfg["tile_url"] is None and cfg["pmtiles"] is None
        assert cfg["streets"].startswith("/console/tiles.pmtiles?v=")
        assert cfg["streets_attribution"] == DEMO_STREETS_ATTRIBUTION
        # the archive's reader asks for byte ranges: the header first, then directories, tiles
        r = c.get(cfg["streets"], headers={"Range": "bytes=0-126"})
        assert r.status_code == 206 and r.content == data[:127]
        assert r.content.startswith(b"PMTiles\x03")
        assert r.headers["content-range"] == f"bytes 0-126/{len(data)}"
        assert r.headers["accept-ranges"] == "bytes"
        r = c.get(cfg["streets"], headers={"Range": f"bytes={len(data) - 100}-"})
        assert r.status_code == 206 and r.content == data[-100:]
        r = c.get(cfg["streets"], headers={"Range": f"bytes={len(data)}-"})
        assert r.status_code == 416
    assert httpx.get(console.url + cfg["streets"]).status_code == 302  # sign in first


def test_a_deployment_can_bring_its_own_map_background(console, monkeypatch, tmp_path) -> None:
    archive = tmp_path / "city.pmtiles"
    archive.write_bytes(bytes(range(256)) * 4)
    city = tmp_path / "city.geojson"
    city.write_text('{"type": "FeatureCollection", "features": []}')
    monkeypatch.setenv("ALARMDESK_PMTILES", str(archive))
    monkeypatch.setenv("ALARMDESK_BASEMAP_GEOJSON", str(city))
    monkeypatch.setenv("ALARMDESK_TILE_ATTRIBUTION", "© Our City")
    with signed_in(console.url, "westop") as c:
        page = c.get("/map").text
        boot = re.search(r'<script type="application/json" id="boot">(.*?)</script>', page, re.S)
        assert boot
        cfg = json.loads(boot.group(1))["map"]
        assert cfg["pmtiles"] == "/console/tiles.pmtiles"
        assert cfg["basemap"] == "/console/basemap.geojson"
        assert cfg["streets"] is None  # its own background: no demo city streets
        assert cfg["tile_attribution"] == "© Our City"
        r = c.get("/console/tiles.pmtiles", headers={"Range": "bytes=16-31"})
        assert r.status_code == 206 and r.content == bytes(range(16, 32))
        assert r.headers["content-range"] == "bytes 16-31/1024"
        assert c.get("/console/basemap.geojson").json()["type"] == "FeatureCollection"
        monkeypatch.setenv("ALARMDESK_TILE_URL", "https://tiles.example.org/{z}/{x}/{y}.png")
        monkeypatch.delenv("ALARMDESK_PMTILES")
        page = c.get("/map").text
        assert "https://tiles.example.org/{z}/{x}/{y}.png" in page
    assert httpx.get(console.url + "/console/tiles.pmtiles").status_code == 302  # sign in first


CSP_NEEDS = {
    "default-src": "'self'",
    "script-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
}


def csp_of(response: httpx.Response) -> dict[str, str]:
    header = response.headers.get("content-security-policy", "")
    return {
        part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()
    }


def test_every_html_page_has_a_policy_without_inline_script(console) -> None:
    incident_id = console.post_signal(signal()).json()["incident_id"]
    pages = []
    with httpx.Client(base_url=console.url) as anonymous:
        pages.append(anonymous.get("/login"))
    with signed_in(console.url, "westop") as c:
        pages += [c.get(path) for path in [*PAGES, f"/incidents/{incident_id}"]]
        pages.append(c.get(f"/incidents/{incident_id}/panel"))
        pages.append(c.get("/incidents/999999"))  # an error page
    with signed_in(console.url, "auditor1") as c:
        pages.append(c.get("/map"))  # a 403 page
    for r in pages:
        assert "text/html" in r.headers["content-type"], r.url
        csp = csp_of(r)
        for directive, value in CSP_NEEDS.items():
            assert csp.get(directive) == value, (r.url, directive, csp)
        assert "'unsafe-inline'" not in csp.get("style-src", "'self'")
        assert "unsafe-eval" not in r.headers["content-security-policy"]
        # Scripts are files; the only inline <script> elements are JSON data blocks.
        for attrs in re.findall(r"<script\b([^>]*)>", r.text):
            assert "src=" in attrs or 'type="application/json"' in attrs, (r.url, attrs)
        assert not re.search(r"<[^>]+\s(?:on[a-z]+|hx-on[:\-\w]*)\s*=", r.text), r.url
        assert not re.search(r"<[^>]+\sstyle\s*=", r.text), r.url


def test_the_event_stream_of_another_desks_incident_is_refused(console) -> None:
    lon, lat = place(west=False)
    east_id = console.post_signal(signal(lon=lon, lat=lat)).json()["incident_id"]
    with signed_in(console.url, "westop") as c:
        sse = {"Accept": "text/event-stream"}
        with c.stream("GET", f"/incidents/{east_id}/events", headers=sse) as r:
            assert r.status_code == 403  # not an open stream
            assert json.loads(r.read())["error"]["code"] == "forbidden"
        with c.stream("GET", "/incidents/99999999/events", headers=sse) as r:
            assert r.status_code == 404


def test_a_duty_report_takes_a_radio_channel_as_its_callback(console) -> None:
    lon, lat = place()
    body = {"type": "FSTRU", "coords": f"{lat}, {lon}", "callback": "radio ch 4"}
    with signed_in(console.url, "calltaker") as c:
        page = c.get("/reports/new").text
        assert "(radio channel, phone" in page
        headers = {"X-CSRF-Token": csrf_of(c), "HX-Request": "true"}
        r = c.post("/reports", data={**body, "form_key": "duty-radio-1234"}, headers=headers)
        assert r.status_code == 200 and 'id="intake-ok"' in r.text, r.text
        incident = re.search(r'data-incident="(\d+)"', r.text)
        assert incident
        assert "radio ch 4" in c.get(f"/incidents/{incident.group(1)}").text
        r = c.post(
            "/reports",
            data={**body, "callback": "ch\x074", "form_key": "duty-radio-5678"},
            headers=headers,
        )
        assert r.status_code == 422 and "callback" in r.text


@pytest.mark.parametrize(
    ("name", "start", "shows"),
    [
        ("westop", "/", "Incident queue"),
        ("auditor1", "/audit", "Export the log"),
        ("rights1", "/transparency", "Custom types awaiting approval"),
        ("admin1", "/accounts", "auditor1"),
    ],
)
def test_each_role_lands_on_a_page_of_its_own(console, name, start, shows) -> None:
    with httpx.Client(base_url=console.url, timeout=5) as c:
        token = form_token(c.get("/login").text)
        r = c.post("/login", data={"name": name, "password": TEST_PASSWORD, "form_token": token})
        assert r.status_code == 303 and r.headers["location"] == start
        page = c.get(start)
        assert page.status_code == 200, page.text[:500]
        assert shows in page.text
        assert f'class="brand" href="{start}"' in page.text
        assert csp_of(page)["script-src"] == "'self'"
    with httpx.Client(base_url=console.url, timeout=5) as c:
        # Asked for a page by name, sign-in still goes there.
        token = form_token(c.get("/login").text)
        r = c.post(
            "/login",
            data={"name": name, "password": TEST_PASSWORD, "form_token": token, "next": "/map"},
        )
        assert r.headers["location"] == "/map"


def test_the_transparency_report_is_in_the_navigation_of_those_who_may_read_it(console) -> None:
    for name, linked in (("auditor1", True), ("rights1", True), ("westop", False)):
        with signed_in(console.url, name) as c:
            page = c.get("/login", follow_redirects=True).text
            assert ('href="/transparency"' in page) is linked, name
    with signed_in(console.url, "auditor1") as c:
        form = c.get("/transparency").text
        assert 'action="/api/v1/reports/transparency"' in form
        assert "Custom types awaiting approval" not in form  # an auditor approves nothing
        r = c.get("/api/v1/reports/transparency", params={"format": "html", "period": "2026"})
        assert r.status_code == 200


def test_a_rights_officer_approves_a_pending_type_from_the_start_page(console) -> None:
    body = {
        "code": "LANDFIRE",
        "name": "Landfill fire",
        "category": "fire",
        "priority": 2,
        "purpose": "Landfill fires smoulder for days and need heavy plant",
        "legal_basis": "Fire and Rescue Services Act, s.7",
    }
    with console.client("supervisor") as c:
        assert c.post("/api/v1/incident-types", json=body).status_code == 201
    with signed_in(console.url, "rights1") as c:
        page = c.get("/transparency").text
        assert 'data-code="LANDFIRE"' in page and 'data-approve="LANDFIRE"' in page
        assert "Landfill fire" in page
    for path in ("/audit", "/accounts"):
        with signed_in(console.url, "rights1") as c:
            assert c.get(path).status_code == 403, path


def test_the_unit_board_shows_each_units_status_and_follows_its_reports(console, sign_in) -> None:
    with console.client() as c:  # the tests share units: free them from earlier incidents
        busy = c.get("/api/v1/incidents", params={"status": ["dispatched", "on_scene"]})
        for inc in busy.json()["items"]:
            c.post(f"/api/v1/incidents/{inc['id']}/resolve", json={"disposition": "handled"})
    desk = sign_in("westop")
    desk.goto("/units")
    page = desk.page
    page.wait_for_selector("#units-body tr[data-id='E5'].st-available")
    assert "Units" in page.inner_text("nav")
    with console.client() as c:
        assert c.post("/api/v1/units/E5/report", json={"status": "out_of_service"}).is_success
        page.wait_for_selector("#units-body tr[data-id='E5'].st-out_of_service", timeout=8000)
        assert c.post("/api/v1/units/E5/report", json={"status": "available"}).is_success
    page.wait_for_selector("#units-body tr[data-id='E5'].st-available", timeout=8000)
    assert page.locator("#units-body tr").count() >= 5


def test_an_operator_silences_a_panel_sees_what_it_held_back_and_ends_it(console, sign_in) -> None:
    desk = sign_in("westop")
    desk.goto("/silences")
    page = desk.page
    page.fill("#s-device", "0C0C")
    page.fill("#s-reason", "<b>engineer</b> on site")
    page.click("#silence-form button[type=submit]")
    page.wait_for_selector("#silences-body tr.sil-active")
    assert "<b>engineer</b> on site" in page.inner_text("#silences-body")  # text, not markup
    silence_id = page.get_attribute("#silences-body tr.sil-active", "data-id")
    held = console.post_signal(
        signal(source_kind="equipment", source_id="panel-0C0C", type_code="ALRBS")
    ).json()
    assert held["incident_id"] is None
    page.reload()
    page.click(f"#silences-body tr[data-id='{silence_id}'] button[data-show]")
    page.wait_for_selector("#held-list li")
    assert "panel-0C0C" in page.inner_text("#held-list")
    page.click(f"#silences-body tr[data-id='{silence_id}'] button[data-end]")
    page.wait_for_selector(f"#silences-body tr[data-id='{silence_id}'].sil-ended")


def test_an_administrator_edits_the_set_up_in_the_console_with_the_same_rules(
    console, sign_in
) -> None:
    page = sign_in("admin1").page
    page.goto(console.url + "/setup")
    text = page.input_value("#setup-text")
    assert "desks:" in text and "units:" in text
    page.click("#setup-plan")
    page.wait_for_selector("#setup-plan-list li:not(.placeholder), #setup-error:not([hidden])")
    assert "No changes" in page.inner_text("#setup-plan-list")
    page.fill("#setup-text", text.replace("name: West", "name: Protest watch", 1))
    page.click("#setup-apply")
    page.wait_for_selector("#setup-error:not([hidden])")
    assert "protected_purpose" in page.inner_text("#setup-error")
    assert "request:" in page.inner_text("#setup-error")


def test_a_call_sent_before_its_script_runs_puts_no_field_in_a_url(console, sign_in) -> None:
    """Enter pressed on the call-taker's form before htmx has loaded: the browser sends the
    form itself, as a POST that is refused without the session's CSRF header. The caller's
    name and words never appear in a URL, and no call is stored."""
    secret = "Caller Zebulon Quixwater at 12 Hidden Lane"
    with console.services.engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT count(*) FROM signals").scalar()
    page = sign_in("calltaker").page
    htmx = re.compile(r"/htmx\.min\.js(\?|$)")  # its URL carries a version: ?v=...
    page.route(htmx, lambda route: route.abort())
    page.goto(console.url + "/calls/new")
    assert page.get_attribute("#intake-form", "method") == "post"
    page.fill("#f-type", "STRUCTURE FIRE")
    page.fill("#f-name", secret)
    with page.expect_navigation():
        page.press("#f-name", "Enter")
    assert "Zebulon" not in page.url and "name=" not in page.url
    with console.services.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM signals").scalar() == before
    page.unroute(htmx)


def park_one(engine: Any, n: int, at: datetime) -> None:
    """Plants a parked signal (as distributed mode parks one: store/parked.py) whose text
    fields hold markup."""
    s = signal(idempotency_key=f"parked-banner-{n}", source_id="<img src=x onerror=__xss(1)>")
    queued = QueuedSignal(msgspec.convert(s, SignalIn), at, None)
    item = parked_store.Parking(
        f"parked-banner-{n}#d", 0, at, msgspec.to_builtins(queued), "E: <b>x</b>", 3
    )
    with engine.begin() as conn:
        parked_store.park(conn, [item], at)


def unpark_all(engine: Any) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(t.parked_signals))


def test_a_supervisors_queue_counts_parked_signals(console) -> None:
    """Distributed mode parks a queued signal that cannot be stored (docs/operations.md): the
    sender heard "queued", so a supervisor's queue counts them (the page's first counts and
    every recount), with the oldest's time and no content; an operator's does not."""
    engine = console.services.engine
    with signed_in(console.url, "chief1") as c:
        page = c.get("/").text
        assert 'id="parked-banner"' in page
        assert boot_of(page)["counts"]["parked"] == {"count": 0, "since": None}
    park_one(engine, 1, datetime(2026, 12, 1, 3, 4, tzinfo=UTC))
    park_one(engine, 2, datetime(2026, 12, 1, 5, 0, tzinfo=UTC))
    try:
        with signed_in(console.url, "chief1") as c:
            page = c.get("/").text
            parked = {"count": 2, "since": "2026-12-01T03:04:00+00:00"}
            assert boot_of(page)["counts"]["parked"] == parked
            assert "onerror" not in page and "<b>x</b>" not in page  # a count, no content
            again = c.get("/queue/counts", headers={"Accept": "application/json"}).json()
            assert again["parked"] == parked
        with signed_in(console.url, "westop") as c:
            page = c.get("/").text
            assert 'id="parked-banner"' not in page and "parked" not in boot_of(page)["counts"]
            again = c.get("/queue/counts", headers={"Accept": "application/json"}).json()
            assert "parked" not in again
    finally:
        unpark_all(engine)


def boot_of(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="boot">(.*?)</script>', html, re.S)
    assert m, html[:500]
    return dict(json.loads(m.group(1)))
