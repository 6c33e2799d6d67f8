"""The set-up over HTTP for administrators: plan, apply (audited, taken up at once), read back
with the keys redacted; refusals with the line and the rule; nobody else may."""

from __future__ import annotations

from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "docs" / "examples" / "small-arc"
KEY = "00112233445566778899AABBCCDDEEFF"


def setup_text() -> str:
    return "\n".join(p.read_text() for p in sorted(EXAMPLE.glob("*.yaml")))


def test_an_administrator_plans_applies_and_reads_the_set_up(live_server) -> None:
    text = setup_text().replace("key_hex: ", f"key_hex: {KEY}  # ", 1)
    headers = {"Content-Type": "application/yaml"}
    with live_server.client("admin") as admin:
        plan = admin.post("/api/v1/setup/plan", content=text, headers=headers)
        assert plan.status_code == 200, plan.text
        assert plan.json()["counts"]["panels"]["added"] == 20
        # the test desks have no open incidents: the apply replaces them
        applied = admin.post("/api/v1/setup/apply", content=text, headers=headers)
        assert applied.status_code == 200, applied.text
        again = admin.post("/api/v1/setup/plan", content=text, headers=headers)
        assert again.json()["counts"] == {}
        stored = admin.get("/api/v1/setup")
        assert stored.status_code == 200
        assert KEY not in stored.text and "<redacted>" in stored.text
        assert len(stored.json()["panels"]) == 20
        refused = admin.post(
            "/api/v1/setup/apply",
            content=text.replace("name: Fire alarms", "name: Protest monitoring"),
            headers=headers,
        )
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "protected_purpose"
        assert "request:" in refused.json()["error"]["message"]
        broken = admin.post("/api/v1/setup/plan", content="desks: [", headers=headers)
        assert broken.status_code == 422
    # the running writer took it up: a fire alarm is routed by the new rules
    incident = live_server.post_signal(
        {
            "source_kind": "equipment",
            "source_id": "panel-5001",
            "type_code": "FSTRU",
            "occurred_at": "2026-12-03T09:00:00+00:00",
            "location": {"lat": 52.09, "lon": 5.12},
            "idempotency_key": "setup-1",
        }
    ).json()["incident_id"]
    with live_server.client("operator") as op:
        found = op.get(f"/api/v1/incidents/{incident}").json()
    assert found["routed_by"] == ["fire"] and found["desks"] == ["fire"]
    with live_server.client("operator") as op:
        assert op.get("/api/v1/setup").status_code == 403
        assert op.post("/api/v1/setup/apply", content=text, headers=headers).status_code == 403
