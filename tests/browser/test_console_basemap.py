"""The map's default background in a real browser: with nothing configured, the demo city's
streets (static/basemap/demo-city.pmtiles, docs/basemap.md) come from alarmdesk itself, in byte
ranges, and are drawn; no request leaves the server the console came from."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from alarmdesk.web.console.settings import DEMO_STREETS_ATTRIBUTION
from tests.browser.conftest import screenshot, signal, wait_until

pytestmark = pytest.mark.slow

MARKET_AND_10TH = (-122.4177, 37.7765)  # San Francisco, in the demo city's streets

# Canvases of the streets' pane with at least one painted pixel (the layer has no background
# colour: a tile without roads or labels stays transparent).
PAINTED_TILES = """() => [...document.querySelectorAll('.leaflet-streets-pane canvas')]
  .filter((c) => {
    if (!c.width || !c.height) return false;
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
    return false;
  }).length"""


def test_the_demo_streets_are_drawn_from_alarmdesk_alone(console, sign_in, artifacts) -> None:
    lon, lat = MARKET_AND_10TH
    body = signal(lon=lon, lat=lat, address="1400 Block of MARKET ST")
    incident_id = console.post_signal(body).json()["incident_id"]  # the fallback desk: west
    page = sign_in("westop").page
    requests: list = []
    page.on("request", lambda r: requests.append(r))
    page.goto(f"{console.url}/incidents/{incident_id}")  # the map centres on the incident
    page.wait_for_selector("#map[data-basemap='streets']")
    wait_until(page, "Number(document.getElementById('map').dataset.streetTiles || 0) >= 4")
    assert wait_until(page, PAINTED_TILES) >= 1
    assert DEMO_STREETS_ATTRIBUTION in page.inner_text(".leaflet-control-attribution")
    screenshot(page, artifacts, "incident-streets")

    here = urlsplit(console.url).netloc
    elsewhere = [
        r.url for r in requests if urlsplit(r.url).scheme in {"http", "https", "ws", "wss"}
    ]
    assert elsewhere and all(urlsplit(u).netloc == here for u in elsewhere), elsewhere
    archive = [r for r in requests if urlsplit(r.url).path == "/console/tiles.pmtiles"]
    assert archive, "the streets come from alarmdesk's archive route"
    assert all(r.headers.get("range", "").startswith("bytes=") for r in archive)
