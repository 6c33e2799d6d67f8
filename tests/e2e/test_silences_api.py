"""Silences over HTTP: a supervisor silences a panel in maintenance; its alarms are stored and
shown in the silenced view, never alarmed; ending the silence lets the next one ring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def alarm(key: str) -> dict[str, object]:
    return {
        "source_kind": "equipment",
        "source_id": "panel-0B0B",
        "type_code": "ALRBS",
        "occurred_at": datetime.now(UTC).isoformat(),
        "location": {"lat": 51.5, "lon": -0.12, "zone": "3"},
        "idempotency_key": key,
    }


def test_a_silenced_panel_is_stored_not_alarmed_until_the_silence_ends(live_server) -> None:
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {"match": {"accounts": ["0b0b"]}, "reason": "engineer on site", "ends_at": until}
    with live_server.client("supervisor") as sup:
        made = sup.post("/api/v1/silences", json=body)
        assert made.status_code == 201, made.text
        silence = made.json()
        assert silence["state"] == "active" and silence["signals"] == 0
        held = live_server.post_signal(alarm("s1")).json()
        assert held["incident_id"] is None
        [listed] = sup.get("/api/v1/silences").json()
        assert listed["signals"] == 1
        view = sup.get(f"/api/v1/silences/{silence['id']}/signals").json()
        assert [s["id"] for s in view] == [held["signal_id"]]
        ended = sup.post(f"/api/v1/silences/{silence['id']}/end")
        assert ended.status_code == 200 and ended.json()["state"] == "ended"
        assert sup.post(f"/api/v1/silences/{silence['id']}/end").status_code == 409
        missing = sup.get("/api/v1/silences/99999/signals")
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"]["code"] == "not_found"
        rung = live_server.post_signal(alarm("s2")).json()
        assert rung["incident_id"] is not None
        everything = {"match": {}, "reason": "all quiet", "ends_at": until}
        assert sup.post("/api/v1/silences", json=everything).status_code == 422
        protest = {**body, "reason": "ignore the protest march"}
        refused = sup.post("/api/v1/silences", json=protest)
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "protected_purpose"
        # drawn across the 180th meridian, this area is the rest of the world: refused
        ring = [[178.0, -16.0], [-179.0, -16.0], [-179.0, -17.0], [178.0, -17.0], [178.0, -16.0]]
        across = {**body, "match": {"area": {"type": "Polygon", "coordinates": [ring]}}}
        refused = sup.post("/api/v1/silences", json=across)
        assert refused.status_code == 422, refused.text
        assert (refused.json()["error"]["code"], refused.json()["error"]["field"]) == (
            "invalid_value",
            "area",
        )
        assert "180th meridian" in refused.json()["error"]["message"]
        for match in ({"devices": ["*"]}, {"sites": ["*"]}, {"devices": ["a\u0000"]}):
            refused = sup.post("/api/v1/silences", json={**body, "match": match})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["code"] == "invalid_value"
        for_ever = {**body, "ends_at": "9999-12-31T23:59:59+00:00"}
        assert sup.post("/api/v1/silences", json=for_ever).status_code == 422
    with live_server.client("call_taker") as ct:
        assert ct.post("/api/v1/silences", json=body).status_code == 403


def test_a_call_from_the_public_alarms_whatever_silence_matches_it(live_server) -> None:
    """A silence on a school's site for its sprinkler test holds back the panel, never a
    person calling about a fire there."""
    until = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {"match": {"sites": ["riverside*"]}, "reason": "sprinkler test", "ends_at": until}
    with live_server.client("supervisor") as sup:
        assert sup.post("/api/v1/silences", json=body).status_code == 201
    at = {"lat": 51.5, "lon": -0.12, "site": "Riverside School"}
    panel = {**alarm("r1"), "location": at}
    assert live_server.post_signal(panel).json()["incident_id"] is None
    call = {
        **alarm("r2"),
        "source_kind": "call",
        "source_id": "calltaker-1",
        "type_code": "FSTRU",
        "location": at,
    }
    assert live_server.post_signal(call).json()["incident_id"] is not None
