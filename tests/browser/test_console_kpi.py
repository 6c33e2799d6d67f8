"""Response times for supervisors: the KPI report drawn as a chart (Chart.js, served by
alarmdesk under its Content-Security-Policy) and as tables, from the centre's own incidents."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import screenshot, signal, wait_until


def test_a_supervisor_sees_the_response_times_of_the_centre_s_incidents(
    console, sign_in, artifacts
) -> None:
    with console.client("intake") as intake, console.client("operator") as op:
        inc = intake.post("/api/v1/signals", json=signal(lon=-0.3)).json()["incident_id"]
        for action, body in [
            ("acknowledge", {}),
            ("dispatch", {"units": ["E4"]}),
            ("resolve", {"disposition": "handled"}),
        ]:
            r = op.post(f"/api/v1/incidents/{inc}/{action}", json=body)
            assert r.is_success, r.text
    desk = sign_in("chief1")
    page = desk.page
    violations: list[Any] = []
    page.on(
        "console", lambda m: violations.append(m.text) if "Content Security" in m.text else None
    )
    desk.goto("/kpi")
    page.select_option("#kpi-by", "unit_kind")
    page.click("#kpi-run")
    page.wait_for_selector("#kpi-body tr td:text('engine')")
    assert "incidents of this centre" in page.inner_text("#kpi-summary")
    drawn = wait_until(
        page, "window.Chart.getChart(document.getElementById('kpi-chart'))?.data.labels"
    )
    assert "engine" in drawn
    assert "NFPA 1710" in page.inner_text("#kpi-compliance-title")
    screenshot(page, artifacts, "kpi")
    assert violations == []
    # Operators do not see it.
    other = sign_in("westop")
    assert other.goto("/kpi").status == 403
