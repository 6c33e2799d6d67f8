"""The heat layer over the API: supervisors only; the centre's own finished incidents per H3
cell as GeoJSON, those without a location counted apart; bad options refused with the option
named (422, never a 500); each reading logged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import h3
import sqlalchemy as sa

from alarmdesk.store import tables as t

PLACES = [(51.5, -0.1), (51.5001, -0.1001), (51.53, -0.2)]  # two in one cell at 8, one apart


def finish(live_server, location: dict[str, Any], n: int) -> int:
    signal = {
        "source_kind": "call",
        "source_id": "ct-1",
        "type_code": "FSTRU",
        "occurred_at": datetime.now(UTC).isoformat(),
        "location": location,
        "summary": f"smoke {n}",
        "idempotency_key": f"heat-{n}",
    }
    inc: int = live_server.post_signal(signal).json()["incident_id"]
    with live_server.client("operator") as op:
        for action, body in [
            ("acknowledge", {}),
            ("dispatch", {"units": ["E1"]}),
            ("resolve", {"disposition": "handled"}),
        ]:
            r = op.post(f"/api/v1/incidents/{inc}/{action}", json=body)
            assert r.is_success, r.text
    return inc


def heat_entries(live_server) -> list[dict[str, Any]]:
    with live_server.services.engine.connect() as conn:
        return [
            json.loads(r.entry)
            for r in conn.execute(sa.select(t.audit_entries.c.entry))
            if '"report.heat"' in r.entry
        ]


def test_a_supervisor_reads_the_centre_s_incidents_per_cell(live_server) -> None:
    for n, (lat, lon) in enumerate(PLACES):
        # each resolved before the next comes: none folds into another
        finish(live_server, {"lat": lat, "lon": lon, "address": f"{n} High St"}, n)
    finish(live_server, {"address": "Somewhere without coordinates"}, 9)
    today = datetime.now(UTC).date().isoformat()
    url = f"/api/v1/reports/heat?from={today}&to={today}&own=true"
    with live_server.client("operator") as op:
        r = op.get(url)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    with live_server.client("supervisor") as sup:
        r = sup.get(url)
        assert r.status_code == 200, r.text
        body = r.json()
    assert body["type"] == "FeatureCollection"
    assert body["own"] is True and body["resolution"] == 8 and body["from"] == today
    assert body["interval"] == "call_to_on_scene" and body["target_seconds"] == 480
    with live_server.services.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(t.incidents)).scalar()
    assert body["calls"] == stored  # every finished incident, located or not
    located = [h3.latlng_to_cell(lat, lon, 8) for lat, lon in PLACES]
    want = {c: located.count(c) for c in located}
    got = {f["properties"]["cell"]: f["properties"]["calls"] for f in body["features"]}
    assert got == want and len(want) == 2
    assert body["unlocated"] == 1 and body["calls"] == 4
    for f in body["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
        ring = f["geometry"]["coordinates"][0]
        assert ring[0] == ring[-1]
        props = f["properties"]
        assert set(props) == {"cell", "calls", "count", "p50", "p90"}
        assert props["count"] == 0 and props["p90"] is None  # no unit reported on scene
    (entry,) = heat_entries(live_server)
    assert entry["op"] == "combine" and entry["detail"]["own"] is True
    assert entry["detail"]["resolution"] == 8


def test_resolution_interval_cell_and_target_are_echoed(live_server) -> None:
    finish(live_server, {"lat": 51.5, "lon": -0.1}, 1)
    today = datetime.now(UTC).date().isoformat()
    district = h3.latlng_to_cell(51.5, -0.1, 5)
    url = (
        f"/api/v1/reports/heat?from={today}&to={today}&own=true&resolution=10"
        f"&interval=call_to_dispatch&cell={district.upper()}&target=300&timezone=Europe/London"
    )
    with live_server.client("supervisor") as sup:
        body = sup.get(url).json()
    assert (body["resolution"], body["interval"], body["area"]) == (
        10,
        "call_to_dispatch",
        district,
    )
    assert body["target_seconds"] == 300 and body["timezone"] == "Europe/London"
    (feature,) = body["features"]
    assert feature["properties"]["cell"] == h3.latlng_to_cell(51.5, -0.1, 10)
    assert feature["properties"]["count"] == 1  # dispatched after it was received
    assert feature["properties"]["p50"] == feature["properties"]["p90"] >= 0


def test_bad_options_are_refused_with_the_option_named(live_server) -> None:
    day = "2026-12-01"
    base = f"/api/v1/reports/heat?from={day}&to={day}"
    cell9 = h3.latlng_to_cell(51.5, -0.1, 9)
    cases = [
        ("&resolution=4", "resolution", "invalid_value"),
        ("&resolution=11", "resolution", "invalid_value"),
        ("&resolution=eight", "resolution", "invalid_value"),
        ("&resolution=8%00", "resolution", "invalid_value"),
        ("&interval=lunch", "interval", "invalid_value"),
        ("&interval=travel%00", "interval", "invalid_value"),
        ("&cell=8828308280fffff", "cell", "invalid_value"),  # not a valid index
        ("&cell=%3Cscript%3Ealert(1)%3C/script%3E", "cell", "invalid_value"),
        (f"&cell={cell9}", "cell", "invalid_value"),  # finer than the cells
        ("&cell=88%0028308280fff", "cell", "invalid_value"),
        ("&timezone=Mars/Base", "timezone", "invalid_value"),
        ("&timezone=UTC%00", "timezone", "invalid_value"),
        ("&source=%3Cimg%20src=x%3E%00", "source", "invalid_value"),
        ("&source=old-cad&own=true", "source", "invalid_value"),
        ("&target=0", "target", "invalid_value"),
    ]
    with live_server.client("supervisor") as sup:
        for extra, field, code in cases:
            r = sup.get(base + extra)
            assert r.status_code == 422, (extra, r.text)
            assert r.json()["error"]["code"] == code, (extra, r.text)
            assert r.json()["error"]["field"] == field, (extra, r.text)
        for span in ("from=2026-12-02&to=2026-12-01", "from=2026-13-01&to=2026-12-01"):
            r = sup.get(f"/api/v1/reports/heat?{span}")
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_date", r.text
        r = sup.get("/api/v1/reports/heat?from=2026-12-01%00&to=2026-12-01")
        assert r.status_code == 422 and r.json()["error"]["field"] == "from", r.text
        r = sup.get(f"{base}&source=protest%20watch")
        assert r.status_code == 422 and r.json()["error"]["code"] == "protected_purpose"
        # markup in a source name is a name like any other: echoed as JSON text, no match
        r = sup.get(base + "&source=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["source"] == "<img src=x onerror=alert(1)>"
        assert r.json()["features"] == [] and r.json()["calls"] == 0
    assert [e["detail"]["source"] for e in heat_entries(live_server)] == [
        "<img src=x onerror=alert(1)>"
    ]  # refused readings compute nothing and are not logged as readings
