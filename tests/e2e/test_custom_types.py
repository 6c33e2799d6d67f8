"""Custom incident types: screened for protected purposes, in force only after two approvals
(a rights officer and one other user, neither the author)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alarmdesk.store import accounts
from tests.conftest import TEST_PASSWORD

BATTERY = {
    "code": "LIBFIRE",
    "name": "Lithium battery fire",
    "category": "fire",
    "priority": 2,
    "purpose": "Battery fires re-ignite and need special extinguishing agents",
    "legal_basis": "Fire and Rescue Services Act, s.7",
    "sop": ["Send foam tender"],
}


def signal(code: str, key: str) -> dict:
    return {
        "source_kind": "call",
        "source_id": "ct",
        "type_code": code,
        "occurred_at": datetime.now(UTC).isoformat(),
        "idempotency_key": key,
        "location": {"lat": 50.0, "lon": -5.0},
    }


@pytest.fixture
def people(live_server):
    """Signed-in clients: the author (supervisor), a second supervisor, a rights officer."""
    import httpx

    made = []
    with live_server.services.engine.begin() as conn:
        for name, role in (
            ("sam", "supervisor"),
            ("sue", "supervisor"),
            ("rita", "rights_officer"),
            ("adam", "admin"),
        ):
            accounts.create_user(conn, name, TEST_PASSWORD, role, ["*"], datetime.now(UTC))
    clients = {}
    for name in ("sam", "sue", "rita", "adam"):
        c = httpx.Client(base_url=live_server.url)
        csrf = c.post("/api/v1/session", json={"name": name, "password": TEST_PASSWORD}).json()
        c.headers["X-CSRF-Token"] = csrf["csrf_token"]
        clients[name] = c
        made.append(c)
    yield clients
    for c in made:
        c.close()


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("name", "Protest march"),
        ("name", "Pr0t3st"),
        ("definition", "Unauthorised demonstration outside the town hall"),
        ("purpose", "Monitor trade union organisers"),
        ("name", "Manifestación no autorizada"),
        ("name", "集会"),
    ],
)
def test_a_type_that_targets_people_exercising_rights_is_refused(
    live_server, people, field, text
) -> None:
    body = {**BATTERY, "code": "BAD", field: text}
    r = people["sam"].post("/api/v1/incident-types", json=body)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "protected_purpose" and err["field"] == field
    assert "rule" in err["message"]


def test_an_unknown_harm_category_is_refused(people) -> None:
    r = people["sam"].post("/api/v1/incident-types", json={**BATTERY, "category": "politics"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_category"


def test_a_custom_type_takes_effect_only_after_two_approvals(live_server, people) -> None:
    r = people["sam"].post("/api/v1/incident-types", json=BATTERY)
    assert r.status_code == 201 and r.json()["status"] == "pending"
    # Pending: a signal with the code is unclassified, never dropped.
    inc = live_server.post_signal(signal("LIBFIRE", "k1")).json()["incident_id"]
    with live_server.client("operator") as op:
        assert op.get(f"/api/v1/incidents/{inc}").json()["type_code"] == "UNCLASS"
    # The author cannot approve; two non-rights-officers are not enough.
    r = people["sam"].post("/api/v1/incident-types/LIBFIRE/approve")
    assert r.status_code == 403
    assert (
        people["sue"].post("/api/v1/incident-types/LIBFIRE/approve").json()["status"] == "pending"
    )
    r = people["adam"].post("/api/v1/incident-types/LIBFIRE/approve")
    assert r.status_code == 403 and "rights officer" in r.json()["error"]["message"]
    r = people["rita"].post("/api/v1/incident-types/LIBFIRE/approve")
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert [a["approver"] for a in r.json()["approvals"]] == ["sue", "rita"]
    # In force now, for the pipeline too.
    inc2 = live_server.post_signal(signal("LIBFIRE", "k2")).json()["incident_id"]
    with live_server.client("operator") as op:
        found = op.get(f"/api/v1/incidents/{inc2}").json()
    assert found["type_code"] == "LIBFIRE" and found["priority"] == 2
    listed = people["rita"].get("/api/v1/incident-types", params={"custom": "true"}).json()
    assert listed[0]["purpose"] == BATTERY["purpose"] and listed[0]["author"] == "sam"


@pytest.mark.parametrize("sop", [[""], ["   "], ["Send foam tender", " "], ["!"], ["! "]])
def test_a_procedure_with_an_empty_step_is_refused(people, sop) -> None:
    """An empty step was taken (201), where a centre's own procedure refuses one."""
    r = people["sam"].post("/api/v1/incident-types", json={**BATTERY, "sop": sop})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_value", "sop"), r.text
    assert "LIBFIRE" not in {
        t["code"] for t in people["sam"].get("/api/v1/incident-types?custom=true").json()
    }
