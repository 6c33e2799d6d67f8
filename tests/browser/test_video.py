"""Video verification in the console: the incident page shows the camera's snapshot, served
by alarmdesk from a Frigate stand-in, and the operator marks the alarm verified."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.conftest import place, screenshot, wait_until
from tests.e2e.test_video import PNG, FrigateStandIn, camera_alarm

pytestmark = pytest.mark.slow


def test_the_incident_page_shows_the_snapshot_and_the_operator_marks_it_verified(
    console, sign_in, artifacts
) -> None:
    intake = console.services.config.intake
    lon, lat = place(west=True)
    with FrigateStandIn() as frigate:
        intake.frigate_url, intake.frigate_snapshot = frigate.url, "snapshot-clean.png"
        try:
            incident_id = camera_alarm(console, lat=lat, lon=lon)
            page = sign_in("westop").page
            page.goto(f"{console.url}/incidents/{incident_id}")
            page.wait_for_selector("#panel .media img")
            wait_until(page, "document.querySelector('#panel .media img').naturalWidth === 8")
            assert page.is_visible("#panel .media video")
            assert page.get_attribute("#panel .media img", "src") == (
                f"/api/v1/incidents/{incident_id}/media/1"
            )
            screenshot(page, artifacts, "incident-video")
            page.click("#panel button[data-verdict='verified']")
            wait_until(
                page,
                "(document.querySelector('#inc-verdict') || {}).textContent === 'video verified'",
            )
            wait_until(
                page, "document.querySelector('#timeline').textContent.includes('Video verdict')"
            )
            asked = [path for path, _ in frigate.asked]
        finally:
            intake.frigate_url, intake.frigate_snapshot = None, "snapshot.jpg"
    assert asked[0].endswith("/snapshot-clean.png")
    assert all(query == {} for _, query in frigate.asked)
    stored = httpx.get(
        f"{console.url}/api/v1/incidents/{incident_id}", headers=console.headers()
    ).json()
    assert stored["verification"]["verdict"] == "verified"
    assert stored["verification"]["by"] == "westop"
    assert stored["confirmed"] is True
    assert PNG  # what the stand-in served, decoded by the browser above
