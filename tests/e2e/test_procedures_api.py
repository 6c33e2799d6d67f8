"""Procedure checklists, overrides and dispatch recommendations over the HTTP API."""

from __future__ import annotations

import pytest

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.store import repository as repo
from alarmdesk.store.database import make_engine
from tests.conftest import prepare_database

LOCAL = IncidentType(
    code="ARCINT",
    name="Intruder alarm, ARC procedure",
    category=HarmCategory.PROPERTY,
    priority=2,
    sop=("!Call keyholder", "Check other zones", "!Verify by video"),
    origin="local",
)


@pytest.fixture
def local_type(sqlite_url):
    prepare_database(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        repo.upsert_types(conn, [LOCAL])
    engine.dispose()


def signal(code: str, key: str) -> dict[str, object]:
    return {
        "source_kind": "equipment",
        "source_id": "panel-77",
        "type_code": code,
        "occurred_at": "2026-12-03T09:00:00+00:00",
        "location": {"lat": 51.5, "lon": -0.12},
        "summary": "zone 3",
        "idempotency_key": key,
    }


def test_mandatory_steps_block_resolve_until_ticked_or_a_supervisor_overrides(
    local_type, live_server
) -> None:
    first = live_server.post_signal(signal("ARCINT", "p1")).json()["incident_id"]
    with live_server.client("operator") as op:
        inc = op.get(f"/api/v1/incidents/{first}").json()
        assert [(s["text"], s["mandatory"]) for s in inc["procedure"]] == [
            ("Call keyholder", True),
            ("Check other zones", False),
            ("Verify by video", True),
        ]
        refused = op.post(f"/api/v1/incidents/{first}/resolve", json={"disposition": "handled"})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "sop_incomplete"
        for step in (0, 2):
            done = op.post(f"/api/v1/incidents/{first}/step", json={"step": step})
            assert done.status_code == 200, done.text
        again = op.post(f"/api/v1/incidents/{first}/step", json={"step": 0})
        assert again.status_code == 409
        assert op.post(f"/api/v1/incidents/{first}/step", json={"step": 9}).status_code == 422
        assert op.post(f"/api/v1/incidents/{first}/step", json={}).status_code == 422
        resolved = op.post(f"/api/v1/incidents/{first}/resolve", json={"disposition": "handled"})
        assert resolved.status_code == 200
        assert resolved.json()["procedure"][0]["done_by"] == "operator"

        second = live_server.post_signal(signal("ARCINT", "p2")).json()["incident_id"]
        body = {"disposition": "false_alarm", "override_reason": "keyholder unreachable"}
        forbidden = op.post(f"/api/v1/incidents/{second}/resolve", json=body)
        assert forbidden.status_code == 403
    with live_server.client("supervisor") as sup:
        assert sup.post(f"/api/v1/incidents/{second}/resolve", json=body).status_code == 200
        timeline = sup.get(f"/api/v1/incidents/{second}").json()["timeline"]
    [resolved_event] = [e for e in timeline if (e["detail"] or {}).get("sop_override")]
    assert resolved_event["detail"]["sop_override"]["open"] == [0, 2]


def test_a_recommendation_follows_the_procedure_and_a_dispatch_records_it(live_server) -> None:
    # test units: E1 (engine) only, at no position; a cardiac arrest asks for a medic first
    incident = live_server.post_signal(signal("CARDIAC", "r1")).json()["incident_id"]
    with live_server.client("operator") as op:
        rec = op.get(f"/api/v1/incidents/{incident}/recommendation")
        assert rec.status_code == 200, rec.text
        body = rec.json()
        assert [n["label"] for n in body["needs"]] == ["medic", "any unit with medical"]
        recommended = [u["unit_id"] for u in body["units"]]
        assert all(u["need"] != "medic" or u["kind"] == "medic" for u in body["units"])
        units = [u["id"] for u in op.get("/api/v1/units").json() if u["status"] == "available"]
        chosen = units[:1]
        done = op.post(
            f"/api/v1/incidents/{incident}/dispatch",
            json={"units": chosen, "recommended": recommended},
        )
        assert done.status_code == 200, done.text
        timeline = op.get(f"/api/v1/incidents/{incident}").json()["timeline"]
    [dispatched] = [e for e in timeline if "recommended" in (e["detail"] or {})]
    assert dispatched["detail"]["recommended"] == recommended
    assert dispatched["detail"]["override"] is (set(chosen) != set(recommended))
