"""A call near open incidents: the call-taker sees the candidates and chooses to join one or
to open a new incident; nothing is folded in without asking when a choice is given."""

from __future__ import annotations


def call(key: str, lat: float, lon: float = -0.12, **choice: object) -> dict[str, object]:
    return {
        "source_kind": "call",
        "source_id": "ct-9",
        "type_code": "FSTRU",
        "occurred_at": "2026-12-03T09:00:00+00:00",
        "location": {"lat": lat, "lon": lon},
        "summary": "smoke seen",
        "idempotency_key": key,
        **choice,
    }


def test_candidates_near_a_call_and_the_call_takers_choice(live_server) -> None:
    first = live_server.post_signal(call("c1", 51.5)).json()["incident_id"]
    with live_server.client("call_taker") as ct:
        near = ct.get("/api/v1/incidents/nearby", params={"lat": 51.5005, "lon": -0.12})
        assert near.status_code == 200, near.text
        [candidate] = near.json()
        assert candidate["id"] == first and 40 <= candidate["distance_m"] <= 70
        far = ct.get("/api/v1/incidents/nearby", params={"lat": 51.6, "lon": -0.12})
        assert far.json() == []
        apart = ct.post("/api/v1/signals", json=call("c2", 51.5005, separate=True))
        assert apart.status_code == 202 and apart.json()["incident_id"] != first
        joined = ct.post("/api/v1/signals", json=call("c3", 51.52, join=first))
        assert joined.json()["incident_id"] == first
        bad = ct.post("/api/v1/signals", json=call("c4", 51.5, join=0))
        assert bad.status_code == 422
        assert ct.get("/api/v1/incidents/nearby", params={"lat": 91, "lon": 0}).status_code == 422


def test_a_call_across_the_180th_meridian_sees_the_incident_and_folds_into_it(
    live_server,
) -> None:
    """Taveuni (Fiji) lies across the 180th meridian: a call 100 m west of an incident on
    the island's east side is at longitude -179.9995. The call-taker's box of candidates
    (lon ± 0.002) ended at 180.0015 and found nothing, and the call opened an incident of
    its own."""
    east = live_server.post_signal(call("t1", -16.78, 179.9995)).json()["incident_id"]
    with live_server.client("call_taker") as ct:
        near = ct.get("/api/v1/incidents/nearby", params={"lat": -16.78, "lon": -179.9995})
        assert near.status_code == 200, near.text
        [candidate] = near.json()
        assert candidate["id"] == east and 100 <= candidate["distance_m"] <= 110
    west = live_server.post_signal(call("t2", -16.78, -179.9995)).json()["incident_id"]
    assert west == east


def test_a_join_to_another_desks_incident_opens_a_new_one(live_server) -> None:
    """A person joins incidents of their desks only: a west call-taker's ``join`` of an east
    incident added a signal to it (and the answer told them it was open). It is dropped, as
    a join to an incident closed meanwhile is: the call folds by the usual rules, never lost.
    A machine (another agency's CAD, an intake token) still joins any incident."""
    east = live_server.post_signal(call("j1", 51.5, 5.0)).json()["incident_id"]
    with live_server.client("west_operator") as west:
        answer = west.post("/api/v1/signals", json=call("j2", 51.1, -0.12, join=east))
        assert answer.status_code == 202, answer.text
        own = answer.json()["incident_id"]
        assert own not in (None, east)
        batch = west.post("/api/v1/signals/batch", json={"signals": [call("j3", 51.1, join=east)]})
        assert batch.status_code == 202 and batch.json()["receipts"][0]["incident_id"] != east
        mine = west.post("/api/v1/signals", json=call("j4", 51.9, -0.12, join=own))
        assert mine.json()["incident_id"] == own  # their own desk's incident: joined
    with live_server.client("operator") as op:
        signals = op.get(f"/api/v1/incidents/{east}").json()["signals"]
        assert [s["idempotency_key"] for s in signals] == ["j1"]
    machine = live_server.post_signal(call("j5", 51.1, -0.12, join=east))
    assert machine.json()["incident_id"] == east
