"""Stored XSS: markup, script and template syntax planted in every text field that reaches the
console stays text on every page — with the Content-Security-Policy enforced, and with it
bypassed (so the test proves escaping, not only the policy).

A server of its own (``live_server``): the planted incidents are alone on the map, far apart,
so each marker can be hovered, and the desk's name can be planted before the first page."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.browser.conftest import VIEWPORT
from tests.conftest import TEST_DESKS, TEST_PASSWORD

pytestmark = pytest.mark.slow

TEMPLATE = "{{7*7}}"


def payload(n: int) -> str:
    """Markup, a script, a javascript: URL and template syntax; __xss(n) names the field."""
    return (
        f'"><img src=x onerror=__xss({n})><script>__xss({n})</script>'
        f"<a href=javascript:__xss({n})>x</a>{TEMPLATE}'"
    )


def short(n: int) -> str:
    return f"<img src=x onerror=__xss({n})>{TEMPLATE}"


HOOK = """
window.__xssHits = [];
window.__xss = (n) => window.__xssHits.push(n);
window.alert = window.confirm = window.prompt = (m) => window.__xssHits.push("dialog:" + m);
"""


def planted(live_server) -> dict[str, Any]:
    """Plants the payloads through the API and the store's own setup functions; returns
    what the pages must show."""
    from alarmdesk.domain.units import Unit
    from alarmdesk.store import accounts
    from alarmdesk.store import repository as repo
    from alarmdesk.store import tables as t

    svc = live_server.services
    with svc.engine.begin() as conn:
        west = {**TEST_DESKS[0], "name": "West " + short(1)}
        repo.upsert_desks(conn, [west, *TEST_DESKS[1:]])
    # The set-up's items, through the API like an administrator's (the same rules as files).
    tag = "<img src=x onerror=__xss({})>"  # 29 characters: a unit's kind holds 32
    items = {
        "stations/ST-XSS": {"id": "ST-XSS", "name": payload(90)},
        "units/XSS-U": {
            "id": "XSS-U",
            "kind": tag.format(91),
            "station": "ST-XSS",
            "capabilities": [tag.format(92)],
        },
        "panels/panel-5A55": {
            "account": "5A55",
            "site": payload(93),
            "address": payload(94),
            "zones": {"1": short(95), "2": {"description": short(96), "address": short(97)}},
            "key_hex": "00112233445566778899AABBCCDDEEFF",
        },
        "cameras/cam-xss": {
            "id": "cam-xss",
            "site": short(98),
            "frigate_camera": short(99),
            "labels": {tag.format(100): "FSTRU"},
            "alarm_zones": [tag.format(101)],
            "zones": {"yard": short(104)},
        },
        "sensors/sensor-xss": {
            "id": "sensor-xss",
            "site": payload(102),
            "zones": {"a": short(103)},
        },
    }
    with live_server.client("admin") as c:
        for path, item in items.items():
            r = c.put(f"/api/v1/setup/{path}", json=item)
            assert r.status_code == 200, r.text
    # Set-up items come before the unit below, whose id no set-up file could hold.
    with svc.engine.begin() as conn:
        # A unit whose id and kind are payloads, beside the first incident (its map shows it).
        unit = Unit(
            id="U<img src=x onerror=__xss(82)>",
            kind="<img src=x onerror=__xss(80)>",
            capabilities=("fire",),
            lat=41.002,
            lon=-9.0,
        )
        repo.upsert_units(conn, [unit])
        for name, role in (("xop", "operator"), ("xcall", "call_taker")):
            accounts.create_user(conn, name, TEST_PASSWORD, role, ["west"], datetime.now(UTC))
        for name, role in (
            ("xrights", "rights_officer"),
            ("xadmin", "admin"),
            ("xaudit", "auditor"),
            ("xsup", "supervisor"),
        ):
            accounts.create_user(conn, name, TEST_PASSWORD, role, ["*"], datetime.now(UTC))
    # A custom type whose name is a payload, approved by two people (one a rights officer).
    body = {
        "code": "XSSFIRE",
        "name": "Battery fire " + payload(2),
        "category": "fire",
        "priority": 2,
        "purpose": "Battery fires re-ignite and need special extinguishing agents",
        "legal_basis": "Fire and Rescue Services Act, s.7",
        "sop": ["Send foam tender " + payload(3)],
    }
    with live_server.client("supervisor") as c:
        r = c.post("/api/v1/incident-types", json=body)
        assert r.status_code == 201, r.text
    for who in ("admin", "rights_officer"):
        with live_server.client(who) as c:
            assert c.post("/api/v1/incident-types/XSSFIRE/approve").status_code == 200
    # A type still waiting for approval: the rights officer's start page lists it.
    pending = {
        **body,
        "code": "XSSWAIT",
        "name": "Waiting fire " + payload(60),
        "definition": payload(61),
        "legal_basis": "Fire and Rescue Services Act, s.7 " + short(62),
    }
    with live_server.client("supervisor") as c:
        r = c.post("/api/v1/incident-types", json=pending)
        assert r.status_code == 201, r.text
    ids = []
    for n, (lon, lat, code) in enumerate(
        [(-9.0, 41.0, "XSSFIRE"), (-1.0, 58.0, "FSTRU"), (-5.0, 50.0, "FSTRU")]
    ):
        base = 10 * (n + 1)
        r = live_server.post_signal(
            {
                "source_kind": "call",
                "source_id": "src " + payload(base),
                "type_code": code,
                "occurred_at": datetime.now(UTC).isoformat(),
                "idempotency_key": f"xss-{n}-{os.getpid()}",
                "location": {
                    "lat": lat,
                    "lon": lon,
                    "address": payload(base + 1),
                    "site": payload(base + 2),
                    "zone": short(base + 3),
                },
                "summary": payload(base + 4),
                "payload": {
                    "people": [
                        {
                            "role": "caller " + short(base + 5),
                            "name": payload(base + 6),
                            "callback": payload(base + 7),
                        }
                    ]
                },
            }
        )
        assert r.status_code in (200, 201, 202), r.text
        ids.append(r.json()["incident_id"])
    # An intruder alarm confirmed by a second zone: the zone that confirmed it is in the timeline.
    for n, zone in enumerate((short(50), short(51))):
        r = live_server.post_signal(
            {
                "source_kind": "equipment",
                "source_id": "panel-xss",
                "type_code": "ALRBS",
                "occurred_at": datetime.now(UTC).isoformat(),
                "idempotency_key": f"xss-zone-{n}-{os.getpid()}",
                "location": {"lat": 44.0, "lon": -3.0, "address": payload(52), "zone": zone},
                "summary": payload(53),
            }
        )
        assert r.status_code in (200, 201, 202), r.text
    ids.append(r.json()["incident_id"])
    with live_server.client("operator") as c:
        assert c.post(f"/api/v1/incidents/{ids[0]}/notes", json={"text": payload(40)}).is_success
        r = c.post(
            f"/api/v1/incidents/{ids[1]}/resolve",
            json={"disposition": "handled", "note": payload(41)},
        )
        assert r.is_success, r.text
        r = c.post(
            f"/api/v1/incidents/{ids[2]}/notes", json={"text": "before cancel " + payload(42)}
        )
        assert r.is_success, r.text
        # The timeline's details: a ticked step's text (the type's procedure, payload 3) and a
        # dispatch against a "recommendation" the client sent. The API now refuses a
        # recommended unit that does not exist; one stored before it did is planted below.
        r = c.post(f"/api/v1/incidents/{ids[0]}/step", json={"step": 0})
        assert r.is_success, r.text
        r = c.post(
            f"/api/v1/incidents/{ids[0]}/dispatch",
            json={"units": ["E1"], "recommended": ["E2"]},
        )
        assert r.is_success, r.text
    with svc.engine.begin() as conn:
        for event_id, detail in conn.execute(
            sa.select(t.events.c.id, t.events.c.detail).where(t.events.c.incident_id == ids[0])
        ).all():
            if isinstance(detail, dict) and detail.get("recommended") == ["E2"]:
                conn.execute(
                    sa.update(t.events)
                    .where(t.events.c.id == event_id)
                    .values(detail={**detail, "recommended": [short(43)]})
                )
    with live_server.client("operator") as c:
        # A video verdict's note (the timeline shows it).
        r = c.post(
            f"/api/v1/incidents/{ids[0]}/verify", json={"verdict": "false", "note": payload(44)}
        )
        assert r.is_success, r.text
    # A silence whose reason and device pattern are payloads (the Silences page).
    with live_server.client("supervisor") as c:
        until = (datetime.now(UTC) + timedelta(days=30)).isoformat()  # one-off: 90 days at most
        r = c.post(
            "/api/v1/silences",
            json={"match": {"devices": [short(83)]}, "reason": payload(81), "ends_at": until},
        )
        assert r.status_code == 201, r.text
        # A public warning (CAP) whose headline, event and area are payloads (incident page).
        warning = {
            "incident_id": ids[0],
            "headline": payload(90),
            "event": short(91),
            "area_desc": short(92),
            "description": payload(93),
        }
        r = c.post("/api/v1/cap/alerts", json=warning)
        assert r.status_code == 201, r.text
    return {"ids": ids}


# The set-up pages an administrator opens, and the payload each must show as text.
SETUP_PAGES = [
    ("/setup/stations", "__xss(90)"),
    ("/setup/stations/ST-XSS", "__xss(90)"),
    ("/setup/stations/ST-XSS/edit", None),
    # not /setup/units: it refuses (409 setup_invalid) the unit planted into the store above
    # with an id no set-up file could hold
    ("/setup/units/XSS-U", "__xss(92)"),
    ("/setup/units/XSS-U/edit", None),
    ("/setup/panels", "__xss(93)"),
    ("/setup/panels/panel-5A55", "__xss(96)"),
    ("/setup/panels/panel-5A55/edit", "__xss(95)"),
    ("/setup/cameras", "__xss(98)"),
    ("/setup/cameras/cam-xss", "__xss(100)"),
    ("/setup/cameras/cam-xss/edit", "__xss(104)"),
    ("/setup/sensors", "__xss(102)"),
    ("/setup/sensors/sensor-xss", "__xss(103)"),
    ("/setup/sensors/sensor-xss/edit", "__xss(103)"),
    ("/setup/desks", "__xss(1)"),
    ("/setup/desks/west", "__xss(1)"),
]


@pytest.fixture
def xss_server(live_server) -> Any:
    return live_server, planted(live_server)


def sign_in_as(page: Any, url: str, name: str) -> None:
    page.goto(url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", TEST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")
    assert "/login" not in page.url


def no_script_ran(page: Any, where: str) -> None:
    hits = page.evaluate("window.__xssHits")
    assert hits == [], f"{where}: planted script ran: {hits}"
    assert page.locator("a[href^='javascript:' i]").count() == 0, where
    assert page.locator("main img[src='x']").count() == 0, where


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["csp", "no-csp"])
def test_nothing_planted_in_a_text_field_runs_on_any_page(browser, xss_server, bypass_csp) -> None:
    server, plant = xss_server
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=bypass_csp)
    context.set_default_timeout(5000)
    context.add_init_script(HOOK)
    violations: list[str] = []
    dialogs: list[str] = []
    try:
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        sign_in_as(page, server.url, "xop")
        page.wait_for_selector("#live[data-state='live']")
        # The queue: the open incidents, the desk picker, the type picker.
        page.wait_for_selector(f"#queue-body tr[data-id='{plant['ids'][0]}']")
        assert TEMPLATE in page.inner_text("#queue-body")
        no_script_ran(page, "queue")
        # Each incident page: facts, people, notes, timeline, signals, procedure.
        for incident_id in plant["ids"]:
            page.goto(f"{server.url}/incidents/{incident_id}")
            page.wait_for_selector("#panel")
            text = page.inner_text("#panel")
            assert "onerror=__xss" in text and TEMPLATE in text, "the payload shows as text"
            assert "49" not in re.sub(r"\d{2,}\.\d+|#\d+|\d+:\d+(:\d+)?", "", text).split(), text
            if incident_id == plant["ids"][0]:
                timeline = page.inner_text("#timeline")
                assert "not as recommended (<img src=x onerror=__xss(43)>" in timeline
                assert "onerror=__xss(3)" in timeline
            if incident_id == plant["ids"][3]:
                assert "zone <img src=x onerror=__xss(51)>" in page.inner_text("#timeline")
            no_script_ran(page, f"incident {incident_id}")
        # The first incident's map: the planted unit beside it, hovered; its public warning.
        page.goto(f"{server.url}/incidents/{plant['ids'][0]}")
        assert "onerror=__xss(90)" in page.inner_text("#cap-alerts")
        unit = page.wait_for_selector("#map .unit-marker")
        unit.hover()
        tip = page.wait_for_selector(".leaflet-tooltip")
        assert "onerror=__xss(80)" in tip.inner_text()
        page.mouse.move(1, 1)
        no_script_ran(page, "the incident's map")
        # The unit board and the silences.
        for path, shows, field in (
            ("/units", "#units-body tr", "__xss(80)"),
            ("/silences", "#silences-body tr", "__xss(81)"),
        ):
            page.goto(server.url + path)
            page.wait_for_selector(shows)
            assert field in page.inner_text("main"), path
            no_script_ran(page, path)
        # The map: hover every marker so each tooltip is drawn.
        page.goto(server.url + "/map")
        page.wait_for_selector(".inc-marker")
        markers = page.locator(".leaflet-marker-icon.inc-marker")
        assert markers.count() >= 2  # the resolved one is off the map
        for i in range(markers.count()):
            markers.nth(i).hover()
            tip = page.wait_for_selector(".leaflet-tooltip")
            assert "onerror=__xss" in tip.inner_text()
            page.mouse.move(1, 1)
        no_script_ran(page, "map")
        # A form and its answer (the type picker holds the custom type's name).
        # The forms, filled with payloads, and what they answer.
        for path, fields in (
            (
                "/calls/new",
                {"#f-address": payload(70), "#f-name": payload(71), "#f-summary": payload(72)},
            ),
            ("/reports/new", {"#f-callback": short(73), "#f-summary": payload(74)}),
        ):
            page.goto(server.url + path)
            page.wait_for_selector("#intake-form")
            page.fill("#f-type", "XSSFIRE")
            page.fill("#f-coords", "47.0, -2.5" if "calls" in path else "43.0, -7.5")
            for selector, text in fields.items():
                page.fill(selector, text)
            page.click("#intake-form button[type=submit]")
            page.wait_for_selector("#intake-ok a[href^='/incidents/']")
            no_script_ran(page, path)
            page.click("#intake-ok a[href^='/incidents/']")
            page.wait_for_selector("#panel")
            for text in fields.values():
                assert text in page.inner_text("#panel"), text
            no_script_ran(page, f"the incident of {path}")
        # The start pages of the other roles, each in a session of its own.
        for who, path, shows in (
            ("xrights", "/transparency", "#pending-types"),
            ("xadmin", "/accounts", "#accounts"),
            ("xaudit", "/audit", "#audit-vkey"),
        ):
            page.context.clear_cookies()
            sign_in_as(page, server.url, who)
            assert page.url.endswith(path)
            page.wait_for_selector(shows, state="attached")
            if who == "xrights":
                assert "onerror=__xss" in page.inner_text("#pending-types")
                no_script_ran(page, path)
                page.click("#report-form button[type=submit]")  # the report it links
                page.wait_for_load_state("load")
                assert "/api/v1/reports/transparency" in page.url
                assert "onerror=__xss" in page.inner_text("body")
            no_script_ran(page, page.url)
        # The set-up's pages: lists, items, forms (values in inputs and text areas).
        page.context.clear_cookies()
        sign_in_as(page, server.url, "xadmin")
        for path, shows in SETUP_PAGES:
            page.goto(server.url + path)
            page.wait_for_selector("#setup-items, #setup-facts, #setup-item-form")
            if shows and "/edit" not in path:
                assert shows in page.inner_text("main"), path
            if shows and "/edit" in path:
                assert shows in page.input_value("#f-zones"), path
            if path == "/setup/sensors/sensor-xss/edit":
                assert page.input_value("#f-site") == payload(102)  # the value, as typed
            no_script_ran(page, path)
        # Response times and the heat layer of an import named by a payload: the name comes
        # back in both reports and is shown as text.
        page.context.clear_cookies()
        sign_in_as(page, server.url, "xsup")
        page.goto(server.url + "/kpi")
        page.wait_for_selector("#heat-map[data-shown='true']")
        page.select_option("#kpi-own", "false")
        page.fill("#kpi-source", short(110))
        page.click("#kpi-run")
        page.wait_for_selector("#heat-summary:has-text('__xss(110)')")
        page.wait_for_selector("#kpi-summary:has-text('__xss(110)')")
        assert short(110) in page.inner_text("#heat-summary")
        assert short(110) in page.inner_text("#kpi-summary")
        no_script_ran(page, "/kpi")
        # A saved report's description (its name is a slug): listed, run, shown as text.
        page.fill("#kpi-save-name", "xss-saved")
        page.fill("#kpi-save-description", payload(111))
        page.click("#kpi-save")
        page.wait_for_selector("#kpi-saved option[value='xss-saved']", state="attached")
        assert page.get_attribute("#kpi-saved option[value='xss-saved']", "title") == payload(111)
        page.click("#kpi-saved-run")
        page.wait_for_selector("#kpi-summary:has-text('xss-saved')")
        no_script_ran(page, "/kpi saved")
    finally:
        context.close()
    assert dialogs == []
    assert violations == [], "the policy must not break the console itself"


PROBE_MAPS = """async (text) => {
  // The console's own modules, as its pages import them.
  const base = [...document.scripts].map((s) => s.src).find((s) => /\\/js\\/[a-z]+\\.js/.test(s));
  const { makeMap } = await import(new URL("basemap.js", base));
  const { heatLayer } = await import(new URL("heat.js", base));
  const el = document.createElement("div");
  el.style.width = "480px";
  el.style.height = "360px";
  document.body.append(el);
  const cfg = {
    tile_url: "/planted/tiles/{z}/{x}/{y}.png", basemap: "/planted/city.geojson", desks: [],
  };
  const { map, ready } = makeMap(el, cfg);
  await ready;
  const shown = [];
  map.eachLayer((l) => {
    if (l.getTooltip && l.getTooltip()) {
      l.openTooltip();
      shown.push(["station tooltip", l.getTooltip().getElement().innerText]);
    }
  });
  const heat = heatLayer(map, el, { fit: true });
  heat.layer.addTo(map);
  const ring = [
    [-122.42, 37.77], [-122.42, 37.78], [-122.41, 37.78], [-122.41, 37.77], [-122.42, 37.77],
  ];
  heat.draw({
    features: [{ type: "Feature", geometry: { type: "Polygon", coordinates: [ring] },
                 properties: { cell: text, calls: 3, p90: 900, p50: 400, count: 3 } }],
    interval: text, target_seconds: 480, resolution: 7, unlocated: 0, calls: 3,
  });
  heat.layer.eachLayer((c) => {
    c.openTooltip();
    shown.push(["heat tooltip", c.getTooltip().getElement().innerText]);
    c.openPopup();
    shown.push(["heat popup", c.getPopup().getElement().innerText]);
  });
  const legend = heat.legend.onAdd();  // the legend's box, not added to this map
  shown.push(["legend", legend.innerText || legend.textContent]);
  const tags = "img[src='x'], script, a[href^='javascript:' i]";  // not the map's own tiles
  const planted = el.querySelectorAll(tags).length + legend.querySelectorAll(tags).length;
  shown.push(["markup", String(planted)]);
  return shown;
}"""


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["csp", "no-csp"])
def test_map_tooltips_and_popups_show_markup_as_text(browser, xss_server, bypass_csp) -> None:
    """Leaflet puts a tooltip's or popup's content into the page as HTML when it is a
    string. The console gives it DOM nodes (``lib.js`` ``textNode`` and ``h``). The planted
    fields the test above hovers are incidents and units; here the rest: a basemap station's
    name and id (from a centre's own GeoJSON file) and a heat cell's tooltip, popup and
    legend (cell id and interval name planted in the report as the page receives it)."""
    server, _plant = xss_server
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=bypass_csp)
    context.set_default_timeout(5000)
    context.add_init_script(HOOK)
    city = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [-122.415, 37.775]},
                "properties": {"kind": "station", "name": short(130), "id": short(131)},
            }
        ],
    }
    try:
        page = context.new_page()
        page.route("**/planted/city.geojson", lambda r: r.fulfill(json=city))
        page.route("**/planted/tiles/**", lambda r: r.fulfill(status=404))
        sign_in_as(page, server.url, "xsup")
        page.goto(server.url + "/kpi")
        page.wait_for_selector("#heat-map[data-shown='true']")
        shown = dict(page.evaluate(PROBE_MAPS, short(132)))
        no_script_ran(page, "map tooltips and popups")
    finally:
        context.close()
    assert shown["station tooltip"] == f"{short(130)} ({short(131)})"
    assert shown["heat tooltip"] == "3 calls, p90 900 s"
    assert short(132) in shown["heat popup"]
    # the interval's name, as text (its underscores shown as spaces, as for every interval)
    assert short(132).replace("_", " ") in shown["legend"]
    assert shown["markup"] == "0"


def test_the_pages_send_every_planted_payload_as_text(xss_server) -> None:
    """The same, without a browser: no page's HTML holds a planted tag, only its escaped
    text (and JSON data blocks escape ``<`` too)."""
    from tests.browser.test_console_pages import signed_in

    server, plant = xss_server
    paths = ["/", "/map", "/calls/new", "/reports/new"]
    paths += [f"/incidents/{i}" for i in plant["ids"]]
    paths += [f"/incidents/{i}/panel" for i in plant["ids"]]
    seen = 0
    for who in ("xop", "xcall"):
        with signed_in(server.url, who) as c:
            for path in paths:
                r = c.get(path)
                if r.status_code == 403:
                    continue
                assert r.status_code == 200, (who, path, r.status_code)
                seen += 1
                assert "<img src=x" not in r.text, (who, path)
                assert "<script>__xss" not in r.text, (who, path)
                assert not re.search(r"<a\b[^>]*href\s*=\s*[\"']?javascript:", r.text), path
                assert "49" not in re.findall(r"Battery fire[^<]{0,120}", r.text), path
    assert seen >= len(paths)
    with signed_in(server.url, "xadmin") as c:
        for path, _ in SETUP_PAGES:
            r = c.get(path)
            assert r.status_code == 200, (path, r.status_code)
            assert "<img src=x" not in r.text and "<script>__xss" not in r.text, path
            assert "00112233445566778899AABBCCDDEEFF" not in r.text, path
    for who, path in (
        ("xrights", "/transparency"),
        ("xadmin", "/accounts"),
        ("xaudit", "/audit"),
        ("xsup", "/kpi"),  # its map's desks, the planted desk name among them
    ):
        with signed_in(server.url, who) as c:
            r = c.get(path)
            assert r.status_code == 200, (who, path)
            assert "<img src=x" not in r.text and "<script>__xss" not in r.text, path
    with signed_in(server.url, "xrights") as c:
        year = datetime.now(UTC).year
        r = c.get("/api/v1/reports/transparency", params={"format": "html", "period": year})
        assert r.status_code == 200 and "onerror=__xss" in r.text  # the type's name, as text
        assert "<img src=x" not in r.text and "<script>__xss" not in r.text
    with httpx.Client(base_url=server.url) as c:
        assert "<img src=x" not in c.get("/login").text
