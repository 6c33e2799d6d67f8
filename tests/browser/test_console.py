"""The console in a real browser (Chromium via Playwright), against a live server."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import pytest

from tests.browser.conftest import place, screenshot, signal, wait_until

pytestmark = pytest.mark.slow

LIVE = "#live[data-state='live']"


def row(incident_id: int) -> str:
    return f"#queue-body tr[data-id='{incident_id}']"


def test_sign_in_and_out(console, browser) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        page.goto(console.url + "/")
        assert page.url.endswith("/login?next=/")  # not signed in: the sign-in page
        page.fill("input[name=name]", "westop")
        page.fill("input[name=password]", "not the password")
        page.click("button[type=submit]")
        assert "Wrong name or password" in page.inner_text("#login-error")
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(console.url + "/")
        assert "westop" in page.inner_text("header.top")
        page.wait_for_selector(LIVE)
        page.click("text=Sign out")
        page.wait_for_url("**/login")
        page.goto(console.url + "/")
        assert "/login" in page.url
    finally:
        context.close()


def test_a_signal_appears_in_the_queue_within_a_second_without_reload(console, sign_in) -> None:
    desk = sign_in("westop")
    page = desk.page
    page.wait_for_selector(LIVE)
    page.evaluate("window.__sameDocument = true")
    incident_id = console.post_signal(signal(type_code="FSTRU")).json()["incident_id"]
    started = time.monotonic()
    page.wait_for_selector(row(incident_id), timeout=1000)
    assert time.monotonic() - started < 1.0
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    tr = page.locator(row(incident_id))
    assert tr.get_attribute("data-status") == "new"
    assert "p1" in (tr.get_attribute("class") or "")
    assert page.is_visible("#p1-banner"), "a new P1 is announced"
    # Ages tick.
    first = tr.locator(".age").inner_text()
    wait_until(page, f'document.querySelector("{row(incident_id)} .age").textContent !== {first!r}')


def test_acknowledge_and_dispatch_from_the_keyboard(console, sign_in) -> None:
    incident_id = console.post_signal(signal(type_code="FSTRU")).json()["incident_id"]
    page = sign_in("westop").page
    page.wait_for_selector(row(incident_id))
    # The longest waiting P1 is at the top; j walks down to the new one (the newest P1).
    for _ in range(page.locator("#queue-body tr").count()):
        page.keyboard.press("j")
        if page.get_attribute(row(incident_id), "aria-selected") == "true":
            break
    assert page.get_attribute(row(incident_id), "aria-selected") == "true"
    page.keyboard.press("a")
    page.wait_for_selector(f"{row(incident_id)}[data-status='acknowledged']")
    page.keyboard.press("d")
    page.wait_for_selector("#dlg-dispatch[open]")
    units = page.locator("#dlg-dispatch input[name=units]")
    assert units.evaluate("el => el === document.activeElement")
    units.fill("E2")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"{row(incident_id)}[data-status='dispatched']")
    assert "E2" in page.inner_text(f"{row(incident_id)} .c-units")
    with console.client() as c:
        stored = c.get(f"/api/v1/incidents/{incident_id}").json()
    assert stored["status"] == "dispatched" and stored["units"] == ["E2"]
    actors = {e["actor"] for e in stored["timeline"] if e["type"] == "incident.transitioned"}
    assert actors == {"westop"}


def test_the_incident_page_shows_the_timeline_and_a_race(console, sign_in) -> None:
    incident_id = console.post_signal(signal(type_code="FSTRU")).json()["incident_id"]
    with console.client() as c:
        c.post(f"/api/v1/incidents/{incident_id}/notes", json={"text": "caller says 2nd floor"})
    page = sign_in("westop").page
    # This browser stops hearing live events, so another operator's action is news to it.
    page.route("**/incidents/*/events*", lambda route: route.abort())
    page.goto(f"{console.url}/incidents/{incident_id}")
    timeline = page.inner_text("#timeline")
    assert "Opened" in timeline and "Note" in timeline and "caller says 2nd floor" in timeline
    assert page.inner_text("#inc-status").lower() == "new"
    assert page.is_visible("#panel [data-action='acknowledge']")
    assert not page.is_visible("#panel [data-action='close']"), "invalid actions are not offered"
    with console.client() as c:  # someone else acknowledges first
        assert c.post(f"/api/v1/incidents/{incident_id}/acknowledge").status_code == 200
    page.keyboard.press("a")
    page.wait_for_selector("#race:not([hidden])")
    assert "Someone else acted first" in page.inner_text("#race")
    wait_until(page, "document.querySelector('#panel').dataset.status === 'acknowledged'")
    assert not page.is_visible("#panel [data-action='acknowledge']")
    # Acting again on the fresh state works, and lands in the timeline with who and when.
    page.keyboard.press("n")
    page.fill("#dlg-notes textarea", "units requested")
    page.keyboard.press("Enter")
    wait_until(page, "document.querySelector('#timeline').textContent.includes('units requested')")
    tl = page.locator("#timeline tbody tr")
    texts = [tl.nth(i).inner_text() for i in range(tl.count())]
    assert any("Status changed" in t and "operator" in t for t in texts)
    assert any("units requested" in t and "westop" in t for t in texts)


def test_the_incident_page_updates_live(console, sign_in) -> None:
    incident_id = console.post_signal(signal(type_code="FSTRU")).json()["incident_id"]
    page = sign_in("westop").page
    page.goto(f"{console.url}/incidents/{incident_id}")
    page.wait_for_selector(LIVE)
    with console.client() as c:
        c.post(f"/api/v1/incidents/{incident_id}/dispatch", json={"units": ["E3"]})
    wait_until(page, "document.querySelector('#panel').dataset.status === 'dispatched'")
    assert "E3" in page.inner_text("#inc-units")
    with console.client() as c:  # the reloaded panel goes on listening
        c.post(f"/api/v1/incidents/{incident_id}/arrive")
    wait_until(page, "document.querySelector('#panel').dataset.status === 'on_scene'")
    assert "On scene" in page.inner_text("#panel .times")


def test_a_call_reaches_the_queue_of_its_desk_and_no_other(console, sign_in) -> None:
    west = sign_in("westop").page
    east = sign_in("eastop").page
    taker = sign_in("calltaker").page
    for p in (west, east):
        p.wait_for_selector(LIVE)
    taker.goto(console.url + "/calls/new")
    first_key = taker.input_value("#form-key")
    taker.fill("#f-type", "FSTRU")
    lon, lat = place(west=True)
    taker.fill("#f-coords", f"{lat}, {lon}")  # inside the west desk
    taker.fill("#f-address", "12 Harbour Road")
    taker.fill("#f-name", "A. Caller")
    taker.fill("#f-callback", "+44 20 7946 0000")
    taker.fill("#f-summary", "smoke from a kitchen window")
    taker.keyboard.press("Control+Enter")
    taker.wait_for_selector("#intake-ok")
    incident_id = int(taker.get_attribute("#intake-ok", "data-incident") or 0)
    assert incident_id and "opened" in taker.inner_text("#intake-ok")
    # Ready for the next call: fields cleared, a new one-time key.
    assert taker.input_value("#f-summary") == "" and taker.input_value("#f-type") == ""
    assert taker.input_value("#form-key") not in ("", first_key)
    west.wait_for_selector(row(incident_id), timeout=2000)
    assert "12 Harbour Road" in west.inner_text(row(incident_id))
    # East's queue is live and was sent what came after the call: a later east incident is
    # there, so the call would be too, had it been routed to east.
    lon, lat = place(west=False)
    later = console.post_signal(signal(lon=lon, lat=lat)).json()["incident_id"]
    east.wait_for_selector(row(later), timeout=2000)
    assert east.locator(row(incident_id)).count() == 0
    with console.client() as c:
        stored = c.get(f"/api/v1/incidents/{incident_id}").json()
    (sig,) = stored["signals"]
    assert sig["source_kind"] == "call" and stored["desks"] == ["west"]
    assert sig["payload"] == {
        "people": [{"role": "caller", "name": "A. Caller", "callback": "+44 20 7946 0000"}]
    }
    # The east operator cannot open it either.
    r = east.goto(f"{console.url}/incidents/{incident_id}")
    assert r is not None and r.status == 403


def test_a_form_with_mistakes_names_them(console, sign_in) -> None:
    with console.client() as c:
        before = c.get("/api/v1/incidents", params={"status": "new"}).json()["items"]
    taker = sign_in("calltaker").page
    taker.goto(console.url + "/reports/new")
    taker.fill("#f-type", "NOT A TYPE")
    taker.fill("#f-coords", "somewhere")
    taker.click("button[type=submit]")
    taker.wait_for_selector("#err-type:not([hidden])")
    assert "incident type" in taker.inner_text("#err-type")
    assert "latitude, longitude" in taker.inner_text("#err-coords")
    with console.client() as c:
        after = c.get("/api/v1/incidents", params={"status": "new"}).json()["items"]
    assert after == before, "nothing was stored"


def test_screenshots_of_the_queue_and_the_map(console, sign_in, artifacts) -> None:
    examples = [
        ("FSTRU", -5.0, 50.0, "12 Harbour Road"),
        ("GASLEAK", -6.2, 51.3, "Mill Lane 4"),
        ("ALRF", -3.1, 52.9, "Station Square"),
        ("ASSAULT", -7.5, 49.2, "Market Street 20"),
        ("CARDIAC", -2.2, 47.5, "Old Town Hall"),
        ("FSTRU", -8.8, 55.0, "Quay 7"),
    ]
    ids = [
        console.post_signal(signal(type_code=t, lon=lon, lat=lat, address=a)).json()["incident_id"]
        for t, lon, lat, a in examples
    ]
    with console.client() as c:
        c.post(f"/api/v1/incidents/{ids[1]}/acknowledge")
        c.post(f"/api/v1/incidents/{ids[2]}/dispatch", json={"units": ["E1"]})
        c.post(f"/api/v1/incidents/{ids[3]}/dispatch", json={"units": ["E4"]})
        c.post(f"/api/v1/incidents/{ids[3]}/arrive")
    page = sign_in("westop").page
    page.wait_for_selector(LIVE)
    page.keyboard.press("j")
    page.keyboard.press("j")
    print("queue screenshot:", screenshot(page, artifacts, "queue"))
    page.goto(console.url + "/map")
    page.wait_for_selector(".inc-marker, .marker-cluster")
    page.wait_for_selector("#map[data-basemap='streets']")  # the default background
    page.wait_for_timeout(300)
    print("map screenshot:", screenshot(page, artifacts, "map"))
    page.goto(f"{console.url}/incidents/{ids[2]}")
    page.wait_for_timeout(300)
    screenshot(page, artifacts, "incident")
    page.goto(console.url + "/calls/new")
    page.wait_for_timeout(300)
    screenshot(page, artifacts, "call-form")
    assert httpx.get(console.url + "/static/console.css").status_code == 200


@pytest.mark.parametrize(
    ("key", "dialog", "status", "prepare"),
    [
        ("r", "resolve", "resolved", "selectOption"),
        ("x", "cancel", "cancelled", "selectOption"),
        ("r", "resolve", "resolved", "note"),
        ("n", "notes", "new", "note"),
        ("t", "reclassify", "new", "type"),
        ("d", "dispatch", "dispatched", "units"),
    ],
)
def test_enter_submits_every_dialog(console, sign_in, key, dialog, status, prepare) -> None:
    incident_id = console.post_signal(signal(type_code="FSTRU")).json()["incident_id"]
    page = sign_in("westop").page
    page.goto(f"{console.url}/incidents/{incident_id}")
    page.wait_for_selector(LIVE)
    version = page.get_attribute("#panel", "data-version")
    page.keyboard.press(key)
    page.wait_for_selector(f"#dlg-{dialog}[open]")
    form = f"#dlg-{dialog} form"
    if prepare == "selectOption":  # focus stays on the first field, a <select>
        assert page.evaluate("document.activeElement.tagName") == "SELECT"
    elif prepare == "note":  # the optional note, typed, then Enter in it
        field = "text" if dialog == "notes" else "note"
        page.focus(f"{form} textarea[name={field}]")
        page.keyboard.type("all clear")
    elif prepare == "type":
        page.fill(f"{form} input[name=type_code]", "FVEH")
    elif prepare == "units":
        page.fill(f"{form} input[name=units]", "E5")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#dlg-{dialog}:not([open])", state="attached")
    page.wait_for_selector(f"#panel:not([data-version='{version}'])")
    assert page.get_attribute("#panel", "data-status") == status


def test_a_rights_officer_lands_on_the_report_and_approves_from_there(console, sign_in) -> None:
    body = {
        "code": "SILOFIRE",
        "name": "Silo fire",
        "category": "fire",
        "priority": 2,
        "purpose": "Silo fires can explode when opened and need a specialist plan",
        "legal_basis": "Fire and Rescue Services Act, s.7",
    }
    with console.client("supervisor") as c:
        assert c.post("/api/v1/incident-types", json=body).status_code == 201
    page = sign_in("rights1").page
    assert page.url.endswith("/transparency")
    assert page.is_visible(".top nav a[href='/transparency']")
    page.click("button[data-approve='SILOFIRE']")
    page.wait_for_selector("#toasts .toast")
    assert "approval recorded" in page.inner_text("#toasts")
    page.wait_for_selector("tr[data-code='SILOFIRE'] td >> text=rights1")
    assert page.locator("button[data-approve='SILOFIRE']").count() == 0


def test_the_procedure_is_a_checklist_and_dispatch_starts_from_the_recommendation(
    console, sign_in
) -> None:
    with console.client() as c:  # the tests share units: free them from earlier tests' incidents
        for inc in c.get("/api/v1/incidents", params={"status": ["dispatched", "on_scene"]}).json()[
            "items"
        ]:
            c.post(f"/api/v1/incidents/{inc['id']}/resolve", json={"disposition": "handled"})
    incident_id = console.post_signal(signal(type_code="FSTRU")).json()["incident_id"]
    desk = sign_in("westop")
    desk.goto(f"/incidents/{incident_id}")
    page = desk.page
    steps = page.locator("#checklist li")
    assert steps.count() == 3
    page.click('#checklist button[data-step="0"]')
    page.wait_for_selector('#checklist li[data-step="0"].done')
    assert "westop" in page.inner_text('#checklist li[data-step="0"]')
    page.keyboard.press("d")
    page.wait_for_selector("#dlg-dispatch[open]")
    page.wait_for_selector("#dlg-dispatch li.recommended")
    units = page.locator("#dlg-dispatch input[name=units]")
    recommended = units.input_value()
    assert recommended.startswith("E"), recommended  # "Dispatch nearest engine company"
    page.keyboard.press("Enter")
    page.wait_for_selector("#panel[data-status='dispatched']")
    with console.client() as c:
        stored = c.get(f"/api/v1/incidents/{incident_id}").json()
    [dispatched] = [e for e in stored["timeline"] if "recommended" in (e["detail"] or {})]
    assert dispatched["detail"]["recommended"] == [recommended]
    assert dispatched["detail"]["override"] is False
    assert stored["procedure"][0]["done_by"] == "westop"


def test_a_call_near_an_open_incident_asks_whether_it_is_the_same(console, sign_in) -> None:
    lon, lat = place(west=True)
    existing = console.post_signal(signal(type_code="FSTRU", lon=lon, lat=lat)).json()
    taker = sign_in("calltaker").page
    taker.goto(console.url + "/calls/new")

    def fill_call(summary: str) -> None:
        taker.fill("#f-type", "FSTRU")
        taker.fill("#f-coords", f"{lat + 0.0003}, {lon}")
        taker.fill("#f-summary", summary)  # leaving the coordinates asks for the candidates
        taker.wait_for_selector(f"#candidates input[value='{existing['incident_id']}']")

    fill_call("another caller, same smoke")
    assert "Join #" in taker.inner_text("#candidates")
    taker.check("#candidates input[value='new']")
    taker.keyboard.press("Control+Enter")
    taker.wait_for_selector("#intake-ok")
    separate = int(taker.get_attribute("#intake-ok", "data-incident") or 0)
    assert separate and separate != existing["incident_id"]
    taker.wait_for_selector("#candidates", state="hidden")

    fill_call("a third caller: it is the same fire")
    taker.check(f"#candidates input[value='{existing['incident_id']}']")
    taker.keyboard.press("Control+Enter")
    wait_until(
        taker,
        f"document.querySelector('#intake-ok')?.dataset.incident === '{existing['incident_id']}'",
    )


def test_the_incident_map_shows_the_units_and_incidents_around_it(console, sign_in) -> None:
    lon, lat = place(west=True)
    first = console.post_signal(signal(type_code="FSTRU", lon=lon, lat=lat)).json()
    near = console.post_signal(signal(type_code="ALRF", lon=lon + 0.005, lat=lat)).json()
    with console.client() as c:  # a unit's AVL position close by
        c.post("/api/v1/units/E4/report", json={"lat": lat + 0.002, "lon": lon}).raise_for_status()
        around = c.get(
            "/api/v1/incidents/nearby", params={"lat": lat, "lon": lon, "radius_m": 2000}
        )
        assert near["incident_id"] in [i["id"] for i in around.json()], (around.text, near)
    desk = sign_in("westop")
    desk.goto(f"/incidents/{first['incident_id']}")
    page = desk.page
    page.wait_for_selector("#map .unit-marker")
    page.wait_for_selector("#map .inc-marker.near")  # the other open incident, 350 m away
    assert page.locator("#map .inc-marker.near").count() >= 1


def test_a_supervisors_queue_shows_parked_signals_without_a_reload(console, sign_in) -> None:
    """A queued signal parked while the queue is open (no incident event comes of it) shows
    in the supervisor's banner within the recheck, as text; it goes when none waits."""
    from tests.browser.test_console_pages import park_one, unpark_all

    desk = sign_in("chief1")
    page = desk.page
    page.add_init_script("window.__xss = (n) => { window.__xssRan = n; };")
    page.clock.install()  # the page's timers: the half-minute recheck without waiting for it
    desk.goto("/")
    page.wait_for_selector("#queue-counts:not(:empty)")
    banner = page.locator("#parked-banner")
    assert banner.is_hidden()
    try:
        park_one(console.services.engine, 7, datetime(2026, 12, 1, 3, 4, tzinfo=UTC))
        page.clock.run_for(31_000)
        wait_until(page, "document.getElementById('parked-banner').hidden === false")
        text = banner.inner_text()
        assert text.startswith("1 queued signal could not be stored and is parked")
        assert "alarmdesk parked list" in text
        assert page.evaluate("window.__xssRan") is None
    finally:
        unpark_all(console.services.engine)
    page.clock.run_for(31_000)
    wait_until(page, "document.getElementById('parked-banner').hidden === true")
