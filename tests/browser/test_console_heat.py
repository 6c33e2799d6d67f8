"""The heat layer on the supervisors' response-time page: the San Francisco week, imported,
drawn as H3 cells over the offline basemap, shaded by calls with a legend, the cells whose p90
from call to on scene exceeds 480 s outlined red, a popup per cell; no CSP violation. And the
live map's overlay of the last 30 days, for supervisors only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from alarmdesk.bootstrap import audit_chain
from alarmdesk.domain.history import load_mapping
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service.history import import_calls
from tests.browser.conftest import screenshot, signal, wait_until
from tests.integration.test_history_import import MAPPING, NOW, SF_WEEK, TEN_YEARS

SOURCE = "sf-heat"  # the console's database is shared: an import of this test's own


def test_a_supervisor_sees_the_calls_per_cell_on_the_map(console, sign_in, artifacts) -> None:
    svc = console.services
    import_calls(
        svc.engine,
        audit_chain(svc.config),
        SF_WEEK,
        load_mapping(MAPPING),
        source=SOURCE,
        actor=Actor("user:test", "supervisor"),
        policy=TEN_YEARS,
        now=NOW,
    )
    query = f"from=2016-12-31&to=2017-01-07&source={SOURCE}&resolution=7"
    with console.client("supervisor") as sup:
        expected = sup.get(f"/api/v1/reports/heat?{query}").json()
    cells = expected["features"]
    over = [f for f in cells if (f["properties"]["p90"] or 0) > 480]
    assert len(cells) > 5 and over, "the week has cells on both sides of the target"

    desk = sign_in("chief1")
    page = desk.page
    violations: list[Any] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    desk.goto("/kpi")
    page.wait_for_selector("#heat-map[data-shown='true']")  # the centre's own, at first
    page.fill("#kpi-from", "2016-12-31")
    page.fill("#kpi-to", "2017-01-07")
    page.select_option("#kpi-own", "false")
    page.fill("#kpi-source", SOURCE)
    page.select_option("#kpi-resolution", "7")
    page.click("#kpi-run")
    wait_until(page, f"document.getElementById('heat-map').dataset.heatCells === '{len(cells)}'")
    assert page.locator("#heat-map path.heat-cell").count() == len(cells)
    assert page.locator("#heat-map path.heat-cell.over-target").count() == len(over)
    legend = page.inner_text("#heat-legend")
    assert "calls per H3 cell (resolution 7)" in legend
    assert "call to on scene p90 over 480 s" in legend
    busiest = cells[0]["properties"]
    assert str(busiest["calls"]) in legend  # the top of the scale
    summary = page.inner_text("#heat-summary")
    assert f"in {len(cells)} cells of resolution 7" in summary and SOURCE in summary
    wait_until(page, "document.getElementById('heat-map').dataset.basemap")
    # The busiest cell's popup: its index, calls and p90, as text.
    page.click(f"#heat-map path[data-cell='{busiest['cell']}']")
    popup = page.wait_for_selector(".leaflet-popup-content .heat-popup")
    text = popup.inner_text()
    assert busiest["cell"] in text and f"{busiest['calls']} calls" in text
    assert "call to on scene p90" in text
    screenshot(page, artifacts, "kpi-heat")
    assert violations == []


def test_the_live_map_offers_supervisors_a_heat_overlay_of_30_days(console, sign_in) -> None:
    with console.client("intake") as intake, console.client("operator") as op:
        inc = intake.post("/api/v1/signals", json=signal()).json()["incident_id"]
        for action, body in [("acknowledge", {}), ("resolve", {"disposition": "handled"})]:
            r = op.post(f"/api/v1/incidents/{inc}/{action}", json=body)
            assert r.is_success, r.text
    today = datetime.now(UTC).date()
    query = f"from={today - timedelta(days=29)}&to={today}&own=true&resolution=8"
    with console.client("supervisor") as sup:
        expected = sup.get(f"/api/v1/reports/heat?{query}").json()
    assert expected["features"], "the resolved incident is in a cell"
    desk = sign_in("chief1")
    page = desk.page
    desk.goto("/map")
    toggle = page.locator(".leaflet-control-layers label:has-text('Heat (H3)') input")
    assert not toggle.is_checked()  # off until asked for
    assert page.locator("#heat-legend").count() == 0
    toggle.check()
    wait_until(
        page,
        f"document.getElementById('map').dataset.heatCells === '{len(expected['features'])}'",
    )
    assert page.locator("#map path.heat-cell").count() == len(expected["features"])
    assert "calls per H3 cell (resolution 8)" in page.inner_text("#heat-legend")
    toggle.uncheck()
    page.wait_for_selector("#heat-legend", state="detached")
    assert page.locator("#map path.heat-cell").count() == 0
    # Operators have no such overlay: it reads a supervisors' report.
    other = sign_in("westop")
    other.goto("/map")
    other.page.wait_for_selector(".leaflet-control-layers label:has-text('Incidents')")
    assert other.page.locator(".leaflet-control-layers label:has-text('Heat')").count() == 0


def test_a_supervisor_saves_the_options_and_runs_them_again(console, sign_in) -> None:
    """Saved reports on the page: save the form's options by name (a description with markup
    stays text), run it from the list; a name that targets people exercising rights is
    refused with the server's message, and nothing is listed for it."""
    page = sign_in("chief1").page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(console.url + "/kpi")
    page.wait_for_selector("#kpi-saved-form[data-loaded='true']")
    page.fill("#kpi-from", "2026-11-01")
    page.fill("#kpi-to", "2026-11-07")
    page.select_option("#kpi-by", "unit_kind")
    page.fill("#kpi-save-name", "protest-watch")
    page.click("#kpi-save")
    wait_until(page, "document.getElementById('kpi-saved-status').textContent !== 'Saving…'")
    refused = page.inner_text("#kpi-saved-status")
    assert "protected" in refused.lower() or "rights" in refused.lower(), refused
    page.fill("#kpi-save-name", "units-weekly")
    page.fill("#kpi-save-description", "<img src=x onerror=alert(1)>weekly units")
    page.click("#kpi-save")
    wait_until(page, "document.getElementById('kpi-saved').value === 'units-weekly'")
    assert "the last 7 days" in page.inner_text("#kpi-saved-status")
    options = page.locator("#kpi-saved option").all_inner_texts()
    assert options == ["—", "units-weekly"]
    page.click("#kpi-saved-run")
    wait_until(
        page, "document.getElementById('kpi-summary').textContent.startsWith('Saved report')"
    )
    assert "units-weekly" in page.inner_text("#kpi-summary")
    assert page.locator("#kpi-head th").first.inner_text() == "unit_kind"
    assert page.locator("img[src='x']").count() == 0 and dialogs == []
    with console.client("supervisor") as sup:
        (saved,) = [
            r for r in sup.get("/api/v1/reports/saved").json() if r["name"] == "units-weekly"
        ]
    assert saved["spec"]["days"] == 7 and saved["spec"]["by"] == ["unit_kind"]
    assert saved["spec"]["description"] == "<img src=x onerror=alert(1)>weekly units"
