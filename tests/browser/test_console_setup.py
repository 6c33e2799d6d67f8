"""The set-up's admin pages in Chromium: lists of units and devices, a page per item, forms
with a field per setting (Enter saves), a key kept when its field is left empty, a refused
name shown next to its field with the rule, removal after a confirmation; administrators
only. The tests share the browser tests' server: each works on items of its own."""

from __future__ import annotations

import re

import httpx

from alarmdesk.store.centre import read_records
from tests.browser.conftest import screenshot, wait_until
from tests.browser.test_console_pages import signed_in

KEY = "0123456789ABCDEF0123456789ABCDEF"


def put(console, path: str, item: dict) -> httpx.Response:
    with console.client("admin") as admin:
        r = admin.put(f"/api/v1/setup/{path}", json=item)
    assert r.status_code == 200, r.text
    return r


def stored(console, kind: str, item_id: str) -> dict:
    with console.services.engine.connect() as conn:
        return dict(read_records(conn)[kind][item_id])


def test_an_administrator_lists_devices_and_sees_whether_a_key_is_set_never_the_key(
    console, sign_in
) -> None:
    put(console, "panels/panel-B701", {"account": "B701", "site": "Depot B7", "key_hex": KEY})
    topic = {"topic": "b7/cellar/flood", "type": "ALRWTR", "zone_path": "zone"}
    put(console, "sensors/flood-b7", {"id": "flood-b7", "site": "Depot B7 cellar", "topic": topic})
    sensor_before = stored(console, "sensors", "flood-b7")
    page = sign_in("admin1").page
    page.goto(console.url + "/accounts")  # the administrator's start page links the lists
    page.click("#admin-setup-links a[href='/setup/panels']")
    row = page.wait_for_selector("#setup-items tr[data-id='panel-B701']")
    assert "Depot B7" in row.inner_text() and "set" in row.inner_text()
    assert KEY not in page.content()
    page.click("#setup-items tr[data-id='panel-B701'] a")
    page.wait_for_selector("#setup-facts")
    assert "set (write-only" in page.inner_text("#setup-key")
    assert KEY not in page.content()
    page.click("#setup-edit")
    page.wait_for_selector("#setup-item-form")
    assert page.input_value("#f-key_hex") == "" and KEY not in page.content()
    page.goto(console.url + "/setup/sensors?q=cellar")
    page.wait_for_selector("#setup-items tr[data-id='flood-b7']")
    assert page.locator("#setup-items tbody tr").count() >= 1
    # a setting the form does not show (a sensor's own MQTT topic) is kept when it is saved
    page.goto(console.url + "/setup/sensors/flood-b7")
    assert "b7/cellar/flood" in page.inner_text("#setup-topic")
    with page.expect_navigation():  # the edit page loaded, its htmx too: Enter is htmx's
        page.click("#setup-edit")
    page.fill("#f-site", "Depot B7, cellar")
    page.press("#f-site", "Enter")
    page.wait_for_url("**/setup/sensors/flood-b7")
    record = stored(console, "sensors", "flood-b7")
    assert record["site"] == "Depot B7, cellar"
    assert stored(console, "sensors", "flood-b7") == {**sensor_before, "site": "Depot B7, cellar"}


def test_an_administrator_creates_and_edits_a_unit_in_a_form(console, sign_in) -> None:
    put(console, "stations/ST-B7", {"id": "ST-B7", "name": "Station B7", "lat": 45, "lon": -3})
    page = sign_in("admin1").page
    page.goto(console.url + "/setup/units")
    with page.expect_navigation():  # the form's page loaded, its htmx too
        page.click("#setup-new")
    page.wait_for_selector("#setup-item-form")
    page.fill("#f-id", "B7-LADDER")
    page.fill("#f-kind", "ladder")
    page.select_option("#f-station", "ST-B7")
    page.fill("#f-capabilities", "height, rescue")
    page.press("#f-capabilities", "Enter")  # Enter saves
    page.wait_for_url("**/setup/units/B7-LADDER")
    assert "height, rescue" in page.inner_text("#setup-facts")
    with page.expect_navigation():
        page.click("#setup-edit")
    page.wait_for_selector("#setup-item-form")
    assert page.input_value("#f-capabilities") == "height, rescue"
    page.fill("#f-capabilities", "height")
    page.click("#setup-save")
    page.wait_for_url("**/setup/units/B7-LADDER")
    assert stored(console, "units", "B7-LADDER")["capabilities"] == ["height"]
    assert stored(console, "units", "B7-LADDER")["station_id"] == "ST-B7"


def test_a_panel_edited_in_the_form_keeps_its_key_and_its_zones(
    console, sign_in, artifacts
) -> None:
    put(console, "cameras/cam-b7", {"id": "cam-b7", "site": "Bakery B7 yard"})
    oven = {"description": "Oven", "lat": 45.1, "lon": -3.1, "camera": "cam-b7"}
    put(
        console,
        "panels/panel-B702",
        {
            "account": "B702",
            "site": "Bakery B7",
            "key_hex": KEY,
            "zones": {"1": "Front door", "015": oven},
            "timestamp_window": [-20, 40],
        },
    )
    page = sign_in("admin1").page
    page.goto(console.url + "/setup/panels/panel-B702/edit")
    page.wait_for_selector("#setup-item-form")
    assert page.input_value("#f-zones") == "1: Front door\n015: Oven | 45.1, -3.1 |  | cam-b7"
    assert page.input_value("#f-timestamp_window") == "-20, 40"
    screenshot(page, artifacts, "setup-panel-form")
    page.fill("#f-site", "Bakery B7, Market Street")
    page.fill("#f-zones", "1: Front door\n015: Oven | 45.1, -3.1 |  | cam-b7\n2: Back door")
    page.press("#f-site", "Enter")
    page.wait_for_url("**/setup/panels/panel-B702")
    record = stored(console, "panels", "panel-B702")
    assert record["site"] == "Bakery B7, Market Street"
    assert record["settings"]["key_hex"] == KEY  # left empty: kept
    assert record["zones"]["2"] == "Back door" and record["zones"]["015"] == oven
    assert record["settings"]["timestamp_window"] == [-20, 40]
    # a new key replaces it; the box removes it
    page.goto(console.url + "/setup/panels/panel-B702/edit")
    page.fill("#f-key_hex", "F" * 32)
    page.press("#f-key_hex", "Enter")
    page.wait_for_url("**/setup/panels/panel-B702")
    assert stored(console, "panels", "panel-B702")["settings"]["key_hex"] == "F" * 32
    page.goto(console.url + "/setup/panels/panel-B702/edit")
    page.check("#f-clear_key")
    page.click("#setup-save")
    page.wait_for_url("**/setup/panels/panel-B702")
    assert "key_hex" not in stored(console, "panels", "panel-B702")["settings"]
    assert "none" in page.inner_text("#setup-key")


def test_a_refused_name_is_shown_next_to_its_field_with_the_rule(
    console, sign_in, artifacts
) -> None:
    page = sign_in("admin1").page
    page.goto(console.url + "/setup/new/units")
    page.fill("#f-id", "B7-WATCH")
    page.fill("#f-kind", "protest watch")
    page.press("#f-kind", "Enter")
    page.wait_for_selector("#err-kind:not([hidden])")
    assert "protest" in page.inner_text("#err-kind")
    screenshot(page, artifacts, "setup-unit-refused")
    assert page.inner_text("#setup-rule").startswith("assembly.")
    assert page.get_attribute("#f-kind", "aria-invalid") == "true"
    assert page.input_value("#f-kind") == "protest watch"  # what was typed stays
    # a reference to nothing and a malformed number, each at its field
    page.goto(console.url + "/setup/new/sensors")
    page.fill("#f-id", "b7-bad")
    page.fill("#f-site", "Depot B7")
    page.fill("#f-lat", "north")
    page.press("#f-site", "Enter")
    page.wait_for_selector("#err-lat:not([hidden])")
    page.fill("#f-lat", "45.2")
    page.press("#f-site", "Enter")
    # The first error is still shown until the answer replaces it: wait for the new one.
    wait_until(page, "document.querySelector('#err-lat').textContent.includes('lon')")
    assert not page.is_hidden("#err-lat")  # lat without lon: the spec's own rule
    with console.client("admin") as admin:
        assert admin.get("/api/v1/setup/units/B7-WATCH").status_code == 404


def test_an_administrator_removes_a_unit_after_confirming(console, sign_in) -> None:
    put(console, "units/B7-SPARE", {"id": "B7-SPARE", "kind": "engine"})
    page = sign_in("admin1").page
    page.goto(console.url + "/setup/units/B7-SPARE")
    page.click("#setup-delete summary")
    page.click("#setup-delete-confirm")
    page.wait_for_url("**/setup/units")
    page.wait_for_selector("#setup-items")
    assert page.locator("#setup-items tr[data-id='B7-SPARE']").count() == 0
    with console.client("admin") as admin:
        assert admin.get("/api/v1/setup/units/B7-SPARE").status_code == 404


def test_only_an_administrator_opens_the_set_up_pages(console) -> None:
    for who in ("westop", "auditor1", "rights1"):
        with signed_in(console.url, who) as c:
            for path in ("/setup/units", "/setup/units/E1", "/setup/new/panels"):
                assert c.get(path).status_code == 403, (who, path)
    with signed_in(console.url, "admin1") as c:
        assert c.get("/setup/units").status_code == 200
        assert c.get("/setup/routing").status_code == 404
        assert c.get("/setup/units/NO-SUCH").status_code == 404


def test_a_form_sent_before_its_script_runs_puts_no_field_in_a_url(console, sign_in) -> None:
    """Enter pressed before htmx has loaded (at once, or on a slow link): the browser sends
    the form itself. It is a POST, refused without the session's CSRF header, so nothing is
    stored and the panel's key never appears in a URL (history, proxies, access logs)."""
    put(console, "panels/panel-B703", {"account": "B703", "site": "Depot B7 annex"})
    before = stored(console, "panels", "panel-B703")
    desk = sign_in("admin1")
    page = desk.page
    htmx = re.compile(r"/htmx\.min\.js(\?|$)")  # its URL carries a version: ?v=...
    page.route(htmx, lambda route: route.abort())  # as if it never arrived
    page.goto(console.url + "/setup/panels/panel-B703/edit")
    action = page.get_attribute("#setup-item-form", "action")
    assert action and page.get_attribute("#setup-item-form", "method") == "post"
    page.fill("#f-key_hex", KEY)
    with page.expect_navigation():
        page.press("#f-key_hex", "Enter")
    assert KEY not in page.url and "key_hex" not in page.url
    assert page.url == console.url + action  # sent to the form's action, by POST
    assert stored(console, "panels", "panel-B703") == before
    page.unroute(htmx)
