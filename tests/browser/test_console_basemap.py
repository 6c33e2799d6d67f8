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

# The streets pane's tiles: [painted pixels, transparent pixels] of each. The layer has no
# background colour, so the world outlines and the city's land show between the streets.
TILE_PIXELS = """() => [...document.querySelectorAll('.leaflet-streets-pane canvas')]
  .filter((c) => c.width && c.height)
  .map((c) => {
    const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] !== 0) painted++;
    return [painted, px.length / 4 - painted];
  })"""


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
    tiles = wait_until(page, f"({TILE_PIXELS})().filter(([p]) => p > 0)")
    assert all(clear > 0 for _, clear in tiles), tiles
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
