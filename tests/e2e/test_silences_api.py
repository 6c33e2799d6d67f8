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
    with live_server.client("call_taker") as ct:
        assert ct.post("/api/v1/silences", json=body).status_code == 403
