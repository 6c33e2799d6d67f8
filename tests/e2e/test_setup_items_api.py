"""The set-up item by item over HTTP (``/api/v1/setup/{kind}/{id}``): the same rules, codes,
apply and audit as a whole set-up; keys written, never read; a change made against an old
revision refused; nobody but an administrator."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
import sqlalchemy as sa

from alarmdesk.store import tables as t
from alarmdesk.store.centre import read_records

KEY = "00112233445566778899AABBCCDDEEFF"
PANEL = {
    "account": "7A01",
    "site": "Bakery Market Street 3",
    "address": "Market Street 3",
    "lat": 45.1,
    "lon": -2.1,
    "zones": {"1": "Front door", "015": {"description": "Oven room", "lat": 45.1, "lon": -2.1}},
    "checkin_seconds": 3600,
    "timestamp_window": [-30, 30],
}


def audit_entries(live_server, since: int = 0) -> list[dict]:
    with live_server.services.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.audit_entries.c.entry).where(t.audit_entries.c.seq > since)
        ).scalars()
        return [json.loads(r) for r in rows if r]


def last_seq(live_server) -> int:
    with live_server.services.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(t.audit_entries.c.seq))).scalar() or 0)


def stored_key(live_server, panel_id: str) -> str | None:
    with live_server.services.engine.connect() as conn:
        return read_records(conn)["panels"][panel_id]["settings"].get("key_hex")


def test_an_administrator_lists_reads_creates_replaces_and_removes_items(live_server) -> None:
    with live_server.client("admin") as admin:
        units = admin.get("/api/v1/setup/units")
        assert units.status_code == 200, units.text
        assert [u["id"] for u in units.json()["items"]] == ["E1", "E2", "E3", "E4", "E5"]
        assert units.headers["etag"] == f'"{units.json()["revision"]}"'
        station = admin.put(
            "/api/v1/setup/stations/S1", json={"id": "S1", "name": "North", "lat": 45, "lon": -2}
        )
        assert station.status_code == 200, station.text
        assert station.json()["changes"]["added"] == [
            {"kind": "stations", "id": "S1", "fields": []}
        ]
        created = admin.put(
            "/api/v1/setup/units/L7",
            json={"id": "L7", "kind": "ladder", "station": "S1", "capabilities": ["height"]},
        )
        assert created.status_code == 200, created.text
        assert created.json()["changes"]["counts"] == {
            "units": {"added": 1, "changed": 0, "removed": 0}
        }
        one = admin.get("/api/v1/setup/units/L7")
        assert one.status_code == 200
        assert one.json()["item"] == {
            "id": "L7",
            "kind": "ladder",
            "station": "S1",
            "capabilities": ["height"],
        }
        assert one.json()["status"] == "available" and one.json()["open_incidents"] == 0
        replaced = admin.put(
            "/api/v1/setup/units/L7", json={"id": "L7", "kind": "ladder", "station": "S1"}
        )
        assert replaced.json()["changes"]["changed"] == [
            {"kind": "units", "id": "L7", "fields": ["capabilities"]}
        ]
        same = admin.put(
            "/api/v1/setup/units/L7", json={"id": "L7", "kind": "ladder", "station": "S1"}
        )
        assert same.json()["changes"]["counts"] == {}
        # the station is named by the unit: removing it is refused like in a file
        refused = admin.delete("/api/v1/setup/stations/S1")
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "unknown_reference"
        assert "units/L7" in refused.json()["error"]["message"]
        assert admin.delete("/api/v1/setup/units/L7").status_code == 200
        assert admin.get("/api/v1/setup/units/L7").status_code == 404
        assert admin.delete("/api/v1/setup/units/L7").status_code == 404
        assert admin.delete("/api/v1/setup/stations/S1").status_code == 200
        panel = admin.put("/api/v1/setup/panels/panel-7A01", json=PANEL)
        assert panel.status_code == 200, panel.text
        got = admin.get("/api/v1/setup/panels/panel-7A01").json()
        assert got["item"]["zones"]["015"] == {"description": "Oven room", "lat": 45.1, "lon": -2.1}
        assert got["item"]["timestamp_window"] == [-30, 30]
        assert got["key_set"] is False
        # what a read gives is what a write takes: put back unchanged, nothing changes
        back = admin.put("/api/v1/setup/panels/panel-7A01", json=got["item"])
        assert back.json()["changes"]["counts"] == {}
    # the running writer takes the unit up like after an apply
    with live_server.client("operator") as op:
        assert "L7" not in {u["id"] for u in op.get("/api/v1/units").json()}


def test_a_panel_key_is_written_never_read_kept_and_cleared_on_request(live_server) -> None:
    before = last_seq(live_server)
    with live_server.client("admin") as admin:
        url = "/api/v1/setup/panels/panel-7A01"
        assert admin.put(url, json={**PANEL, "key_hex": KEY}).status_code == 200
        assert stored_key(live_server, "panel-7A01") == KEY
        for read in (admin.get(url), admin.get("/api/v1/setup/panels")):
            assert KEY not in read.text
        got = admin.get(url).json()
        assert got["key_set"] is True and got["item"]["key_hex"] == "<redacted>"
        # without the key, and with "<redacted>": the stored key stays
        kept = admin.put(url, json={**PANEL, "site": "Bakery, Market Street 3"})
        assert kept.json()["changes"]["changed"] == [
            {"kind": "panels", "id": "panel-7A01", "fields": ["site"]}
        ]
        assert admin.put(url, json=got["item"]).status_code == 200
        assert stored_key(live_server, "panel-7A01") == KEY
        new_key = "F" * 32
        changed = admin.put(url, json={**PANEL, "key_hex": new_key})
        assert changed.json()["changes"]["changed"][0]["fields"] == ["key_hex"]
        assert new_key not in changed.text
        cleared = admin.put(url, json={**PANEL, "key_hex": None})
        assert cleared.json()["changes"]["changed"][0]["fields"] == ["key_hex"]
        assert stored_key(live_server, "panel-7A01") is None
        assert admin.get(url).json()["key_set"] is False
        refused = admin.put(url, json={**PANEL, "key_hex": "<redacted>"})
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "secret_required"
    entries = audit_entries(live_server, before)
    assert KEY not in json.dumps(entries) and new_key not in json.dumps(entries)
    changes = [
        e for e in entries if e["op"] == "configure" and e["object_id"] == "panels/panel-7A01"
    ]
    assert [e["rule"] for e in changes][:2] == ["config.put", "config.put"]
    assert changes[-1]["outcome"] == "denied" and changes[-1]["rule"] == "secret_required"
    assert any("key_hex" in json.dumps(e.get("detail")) for e in changes)  # named, not shown
    reads = [e for e in entries if e["op"] == "consult" and e["object_id"].startswith("panels")]
    assert reads


def test_a_refused_item_gets_the_same_code_and_field_as_in_a_file(live_server) -> None:
    with live_server.client("admin") as admin:
        seventh = {**PANEL, "account": "7A03"}
        cases = [
            ("units/X1", {"id": "X1", "kind": "protest watch"}, "protected_purpose", "kind"),
            ("panels/panel-7A03", {**seventh, "site": "Picket line"}, "protected_purpose", "site"),
            ("units/X1", {"id": "X1", "kind": "engine", "station": "nowhere"},
             "unknown_reference", "station"),
            ("units/X2", {"id": "X1", "kind": "engine"}, "invalid_value", "id"),
            ("panels/panel-7A03", {**seventh, "key_hex": "ABC"}, "invalid_value", "key_hex"),
            ("panels/panel-7A03", {**seventh, "lat": None}, "invalid_value", "lat"),
            ("units/X3", {"id": "X3", "kind": "engine", "tint": "red"}, "unknown_field", "tint"),
            ("desks/d1", {"id": "d1", "name": "Fire", "categories": ["politics"]},
             "unknown_category", "categories"),
            ("sensors/s1", {"id": "s1", "site": "Cave", "topic": {"topic": "a/b", "type": "NOPE"}},
             "unknown_reference", "types"),
            ("panels/panel-7A03", {**seventh, "zones": {"1": {"camera": "no-such-camera"}}},
             "unknown_reference", "zones"),
        ]  # fmt: skip
        for path, item, code, field in cases:
            r = admin.put(f"/api/v1/setup/{path}", json=item)
            assert r.status_code == 422, (path, r.text)
            assert r.json()["error"]["code"] == code, (path, r.text)
            assert r.json()["error"]["field"] == field, (path, r.text)
        refused = admin.put(
            "/api/v1/setup/units/X1", json={"id": "X1", "kind": "protest watch"}
        ).json()["error"]
        assert "rule assembly" in refused["message"] and "units/X1" in refused["message"]
        assert admin.put("/api/v1/setup/units/X1", content=b"{").status_code == 400
        # one DC-09 account, one panel
        assert admin.put("/api/v1/setup/panels/panel-7A01", json=PANEL).status_code == 200
        twice = admin.put("/api/v1/setup/panels/other", json={**PANEL, "id": "other"})
        assert twice.json()["error"]["code"] == "duplicate_id"
        assert admin.get("/api/v1/setup/units/X1").status_code == 404


def test_removing_a_panel_with_an_open_incident_is_refused(live_server) -> None:
    with live_server.client("admin") as admin:
        assert admin.put("/api/v1/setup/panels/panel-7A01", json=PANEL).status_code == 200
    r = live_server.post_signal(
        {
            "source_kind": "equipment",
            "source_id": "panel-7A01",
            "type_code": "FSTRU",
            "occurred_at": "2026-12-03T09:00:00+00:00",
            "location": {"lat": 45.1, "lon": -2.1},
            "idempotency_key": "items-1",
        }
    )
    assert r.status_code in (200, 202), r.text
    with live_server.client("admin") as admin:
        listed = admin.get("/api/v1/setup/panels").json()["items"]
        assert [p["open_incidents"] for p in listed if p["id"] == "panel-7A01"] == [1]
        refused = admin.delete("/api/v1/setup/panels/panel-7A01")
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "in_use"
        assert admin.get("/api/v1/setup/panels/panel-7A01").status_code == 200


def test_a_change_made_against_an_old_revision_is_refused(live_server) -> None:
    with live_server.client("admin") as admin:
        read = admin.get("/api/v1/setup/units/E1")
        etag = read.headers["etag"]
        item = read.json()["item"]
        first = admin.put(
            "/api/v1/setup/units/E1",
            json={**item, "capabilities": ["fire"]},
            headers={"If-Match": etag},
        )
        assert first.status_code == 200, first.text
        assert first.headers["etag"] != etag
        late = admin.put("/api/v1/setup/units/E1", json=item, headers={"If-Match": etag})
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "version_conflict"
        gone = admin.delete("/api/v1/setup/units/E5", headers={"If-Match": etag})
        assert gone.status_code == 409
        fresh = admin.put(
            "/api/v1/setup/units/E1", json=item, headers={"If-Match": first.headers["etag"]}
        )
        assert fresh.status_code == 200
        bad = admin.put("/api/v1/setup/units/E1", json=item, headers={"If-Match": "yesterday"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "If-Match"
        # without If-Match, the last change wins
        assert admin.put("/api/v1/setup/units/E1", json=item).status_code == 200


def test_nobody_but_an_administrator_reads_or_changes_items(live_server) -> None:
    for who in ("operator", "supervisor", "auditor", "rights_officer"):
        with live_server.client(who) as c:
            assert c.get("/api/v1/setup/units").status_code == 403
            assert c.get("/api/v1/setup/units/E1").status_code == 403
            r = c.put("/api/v1/setup/units/E9", json={"id": "E9", "kind": "engine"})
            assert r.status_code == 403
            assert c.delete("/api/v1/setup/units/E1").status_code == 403
    with live_server.client("admin") as admin:
        assert admin.get("/api/v1/setup/units/E9").status_code == 404


def test_a_desk_area_that_would_route_wrongly_is_refused_and_one_cut_at_the_meridian_works(
    live_server,
) -> None:
    """A jurisdiction with numbers written as text was taken, and then every located alarm
    failed in routing (500); one given latitude first, or drawn across the 180th meridian,
    was taken and routed the wrong places. Each is refused with what to write instead;
    Taveuni cut at the meridian (RFC 7946, 3.1.9) gets the calls on both sides of it."""

    def desk(kind: str, *parts: list) -> dict:
        coordinates = list(parts) if kind == "Polygon" else [[p] for p in parts]
        area = {"type": kind, "coordinates": coordinates}
        return {"id": "taveuni", "name": "Taveuni", "jurisdiction": area}

    def ring(west: Any, south: Any, east: Any, north: Any) -> list:
        return [[west, south], [east, south], [east, north], [west, north], [west, south]]

    def call(key: str, lat: float, lon: float) -> dict:
        return {
            "source_kind": "call",
            "source_id": "ct",
            "type_code": "FSTRU",
            "occurred_at": "2026-12-05T08:00:00+00:00",
            "idempotency_key": key,
            "location": {"lat": lat, "lon": lon},
        }

    with live_server.client("admin") as admin, live_server.client("intake") as intake:
        cases = [
            (desk("Polygon", ring("179.8", "-16.7", "179.9", "-16.6")), "not a number"),
            (desk("Polygon", ring(-16.7, 179.8, -16.6, 179.9)), "[longitude, latitude]"),
            (desk("Polygon", ring(179.8, -16.7, -179.9, -16.6)), "180th meridian"),
        ]
        for item, said in cases:
            r = admin.put("/api/v1/setup/desks/taveuni", json=item)
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_value", "jurisdiction"), r.text
            assert said in error["message"], r.text
        assert admin.get("/api/v1/setup/desks/taveuni").status_code == 404  # nothing stored
        assert intake.post("/api/v1/signals", json=call("k0", 50.0, 5.0)).status_code == 202
        cut = desk("MultiPolygon", ring(179.8, -16.7, 180, -16.6), ring(-180, -16.7, -179.9, -16.6))
        r = admin.put("/api/v1/setup/desks/taveuni", json=cut)
        assert r.status_code == 200, r.text
        for key, lon in (("k1", 179.95), ("k2", -179.95)):
            posted = intake.post("/api/v1/signals", json=call(key, -16.65, lon))
            assert posted.status_code == 202, posted.text
            with live_server.services.engine.connect() as conn:
                desks = conn.execute(
                    sa.select(t.incident_desks.c.desk_id).where(
                        t.incident_desks.c.incident_id == posted.json()["incident_id"]
                    )
                ).scalars()
                assert "taveuni" in set(desks), key


def form_revision(admin, path: str) -> str:
    page = admin.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="revision" value="(\d+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


def field_error(page: str, name: str) -> str:
    """The text shown next to a form's field ("" when hidden)."""
    found = re.search(
        rf'<p class="field-error" id="err-{name}"\s*(hidden)?\s*>(.*?)</p>', page, re.S
    )
    assert found is not None, page
    return "" if found.group(1) else html.unescape(found.group(2))


def test_the_new_item_form_refuses_an_id_that_exists_instead_of_replacing_it(
    live_server,
) -> None:
    """The console's "new" form replaced the stored item of the same id (200, HX-Redirect)."""
    station = {"id": "ST02", "name": "Central", "lat": 45.0, "lon": -2.0}
    with live_server.client("admin") as admin:
        assert admin.put("/api/v1/setup/stations/ST02", json=station).status_code == 200
        revision = form_revision(admin, "/setup/new/stations")
        typo = {"revision": revision, "id": "ST02", "name": "typo new station"}
        r = admin.post("/setup/new/stations", data={**typo, "lat": "37.0", "lon": "-122.0"})
        assert r.status_code == 422, r.text
        assert "hx-redirect" not in r.headers
        assert "exists" in field_error(r.text, "id") and "ST02" in field_error(r.text, "id")
        assert admin.get("/api/v1/setup/stations/ST02").json()["item"] == station
        # the edit form changes it; the new form still adds an item of a new id
        edited = admin.post("/setup/stations/ST02", data={**typo, "lat": "45", "lon": "-2"})
        assert edited.status_code == 200 and edited.headers["hx-redirect"] == "/setup/stations/ST02"
        revision = form_revision(admin, "/setup/new/stations")
        new = admin.post(
            "/setup/new/stations", data={"revision": revision, "id": "ST03", "name": "East"}
        )
        assert new.status_code == 200 and new.headers["hx-redirect"] == "/setup/stations/ST03"


@pytest.mark.parametrize("lat", ["nan", "inf", "-inf", "1e400"])
def test_a_latitude_that_is_not_a_finite_number_is_refused_on_the_form(live_server, lat) -> None:
    """lat=nan on the form was dropped (JSON has no NaN: it became null) and a station was
    stored with a longitude alone."""
    with live_server.client("admin") as admin:
        revision = form_revision(admin, "/setup/new/stations")
        form = {"revision": revision, "id": "CS2", "name": "ok", "lat": lat, "lon": "1"}
        r = admin.post("/setup/new/stations", data=form)
        assert r.status_code == 422, r.text
        assert field_error(r.text, "lat")
        assert admin.get("/api/v1/setup/stations/CS2").status_code == 404


def test_lat_and_lon_go_together_for_every_kind_with_a_position(live_server) -> None:
    """A station with a longitude alone was taken over the API (its units then showed
    lat null, lon 1.0); panels already refused it."""
    cases = [
        ("stations/PSX", {"id": "PSX", "name": "n", "lon": 1}),
        ("stations/PSX", {"id": "PSX", "name": "n", "lat": 1}),
        ("panels/panel-7A09", {"account": "7A09", "site": "Shop", "lat": 45.0}),
        ("cameras/cam-x", {"id": "cam-x", "site": "Yard", "lon": -2.0}),
        ("sensors/s-x", {"id": "s-x", "site": "Cellar", "lat": 45.0}),
    ]
    with live_server.client("admin") as admin:
        for path, item in cases:
            r = admin.put(f"/api/v1/setup/{path}", json=item)
            assert r.status_code == 422, (path, r.text)
            error = r.json()["error"]
            assert (error["code"], error["field"]) == ("invalid_value", "lat"), (path, r.text)
            assert "lat and lon go together" in error["message"]
            assert admin.get(f"/api/v1/setup/{path}").status_code == 404


def test_the_stored_set_up_is_a_fixed_point_after_an_item_is_removed(live_server) -> None:
    """Removing a desk left a gap in the desks' order: the export, planned back, changed the
    position of the desks after it (and applying it made a revision that changed nothing)."""
    with live_server.client("admin") as admin:
        for desk in ("pd1", "pd2", "pd3"):
            item = {"id": desk, "name": f"Desk {desk}"}
            assert admin.put(f"/api/v1/setup/desks/{desk}", json=item).status_code == 200
        assert admin.delete("/api/v1/setup/desks/pd1").status_code == 200
        exported = admin.get("/api/v1/setup")
        assert exported.status_code == 200
        order = [d["id"] for d in exported.json()["desks"]]
        assert order == ["west", "east", "alarms", "pd2", "pd3"]
        plan = admin.post("/api/v1/setup/plan", content=exported.content)
        assert plan.status_code == 200, plan.text
        assert plan.json()["counts"] == {}, plan.text
        # a desk added after the removal comes last, and the export stays a fixed point
        assert admin.put("/api/v1/setup/desks/pd4", json={"id": "pd4", "name": "D4"}).is_success
        exported = admin.get("/api/v1/setup")
        assert [d["id"] for d in exported.json()["desks"]][-3:] == ["pd2", "pd3", "pd4"]
        assert admin.post("/api/v1/setup/plan", content=exported.content).json()["counts"] == {}


def test_duplicate_keys_in_an_item_are_refused_like_in_a_set_up_file(live_server) -> None:
    """The item's PUT kept the last of two "name" keys; the plan refuses the same object."""
    body = b'{"id": "PS13", "name": "a", "name": "b", "lat": 1, "lon": 1}'
    with live_server.client("admin") as admin:
        planned = admin.post("/api/v1/setup/plan", content=b'{"stations": [' + body + b"]}")
        assert planned.status_code == 422
        r = admin.put("/api/v1/setup/stations/PS13", content=body)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == planned.json()["error"]["code"] == "invalid_value"
        assert "duplicate key 'name'" in error["message"]
        assert admin.get("/api/v1/setup/stations/PS13").status_code == 404
        nested = {"account": "7A0B", "site": "Shop"}
        raw = json.dumps(nested)[:-1].encode() + b', "zones": {"1": "a", "1": "b"}}'
        r = admin.put("/api/v1/setup/panels/panel-7A0B", content=raw)
        assert r.status_code == 422 and "duplicate key '1'" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "item", "field"),
    [
        ("stations/WS1", {"id": "WS1", "name": "   "}, "name"),
        ("desks/WD1", {"id": "WD1", "name": " \u00a0 "}, "name"),
        ("panels/panel-7A0C", {"account": "7A0C", "site": "  "}, "site"),
        ("cameras/cam-w", {"id": "cam-w", "site": " "}, "site"),
        ("sensors/s-w", {"id": "s-w", "site": "   "}, "site"),
    ],
)
def test_a_name_of_spaces_only_is_refused_like_an_empty_one(live_server, path, item, field) -> None:
    with live_server.client("admin") as admin:
        r = admin.put(f"/api/v1/setup/{path}", json=item)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_value", field), r.text
        assert admin.get(f"/api/v1/setup/{path}").status_code == 404
