"""GET /api/v1/incidents/{id}/eido: an incident as a NENA EIDO for another agency, each
export a disclosure in the audit log with its recipient."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa

from alarmdesk.safeguards.transparency import SUPPRESSED, AuditFigures
from alarmdesk.store import tables as t
from tests.unit.test_eido import valid


def entries(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.audit_entries.c.entry).order_by(t.audit_entries.c.seq))
        return [json.loads(r.entry) for r in rows]


def disclosures(engine: sa.Engine) -> list[dict]:
    return [e for e in entries(engine) if e["op"] == "disclose"]


def alarm(key: str, lon: float = -5.0, panel: str = "panel-77") -> dict:
    return {
        "source_kind": "equipment",
        "source_id": panel,
        "type_code": "ALRF",
        "occurred_at": datetime.now(UTC).isoformat(),
        "idempotency_key": key,
        "location": {"lat": 51.5, "lon": lon, "address": "High St 1", "zone": "3"},
        "summary": "Fire alarm zone 3",
    }


def test_an_export_is_an_eido_and_a_disclosure_with_its_recipient(live_server) -> None:
    inc = live_server.post_signal(alarm("e1")).json()["incident_id"]
    with live_server.client("operator") as op:
        op.post(
            f"/api/v1/incidents/{inc}/dispatch", json={"units": ["E1", "E2"]}
        ).raise_for_status()
        op.post(
            f"/api/v1/incidents/{inc}/notes", json={"text": "Keyholder called"}
        ).raise_for_status()
        op.post("/api/v1/units/E1/report", json={"status": "on_scene"}).raise_for_status()
        r = op.get(f"/api/v1/incidents/{inc}/eido", params={"recipient": "Fire Brigade West"})
    assert r.status_code == 200, r.text
    doc = r.json()
    valid(doc)
    assert doc["$id"] == f"urn:emergency:uid:incidentid:{inc}:centre.invalid"  # the default
    component = doc["incidentComponent"]
    assert component["incidentTypeCommonRegistryText"] == "ALRF"
    assert component["incidentStatusCommonRegistryText"] == [
        "Active",
        "ResourcesAssigned",
        "ResourcesOnscene",
    ]
    units = {u["emergencyResourceName"]: u for u in doc["emergencyResourceComponent"]}
    assert units["E1"]["secondaryUnitStatusRegistryText"] == ["OnScene"]
    assert units["E2"]["secondaryUnitStatusRegistryText"] == ["Dispatched"]
    notes = [n["notesActionComments"] for n in doc["notesComponent"]]
    assert notes == ["Fire alarm zone 3", "Keyholder called"]
    (sensor,) = doc["alarmsSensorsComponent"]
    assert json.loads(sensor["csaaAlarmInformation"])["source_id"] == "panel-77"

    (entry,) = disclosures(live_server.services.engine)
    assert (entry["object_type"], entry["object_id"], entry["outcome"]) == (
        "incident",
        str(inc),
        "allowed",
    )
    assert entry["detail"] == {"recipient": "Fire Brigade West", "format": "eido"}
    assert entry["role"] == "operator" and entry["credential"]
    assert "Keyholder" not in json.dumps(entries(live_server.services.engine))
    figures = AuditFigures()
    for e in entries(live_server.services.engine):
        figures.add(e)
    assert figures.sharing()["disclosures_by_recipient"] == {"Fire Brigade West": SUPPRESSED}


def test_without_a_recipient_or_with_a_refused_one_nothing_is_disclosed(live_server) -> None:
    inc = live_server.post_signal(alarm("e2")).json()["incident_id"]
    with live_server.client("supervisor") as sup:
        r = sup.get(f"/api/v1/incidents/{inc}/eido")
        assert r.status_code == 422
        assert r.json()["error"] == {
            "code": "missing_field",
            "message": "an export needs the recipient (the agency it is for)",
            "field": "recipient",
        }
        r = sup.get(f"/api/v1/incidents/{inc}/eido", params={"recipient": "  "})
        assert r.status_code == 422 and r.json()["error"]["code"] == "missing_field"
        r = sup.get(
            f"/api/v1/incidents/{inc}/eido", params={"recipient": "Immigration enforcement"}
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "protected_purpose"
        r = sup.get(f"/api/v1/incidents/{inc}/eido", params={"recipient": "a\x07b"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_value"
        # the evidence that a disclosure would have been logged: one that is
        assert sup.get(f"/api/v1/incidents/{inc}/eido", params={"recipient": "EMS"}).is_success
    assert [e["detail"]["recipient"] for e in disclosures(live_server.services.engine)] == ["EMS"]


def test_another_desk_is_refused_an_unknown_incident_is_404(live_server) -> None:
    east = live_server.post_signal(alarm("e3", lon=5.0, panel="panel-east")).json()["incident_id"]
    west = live_server.post_signal(alarm("e4", lon=-5.0, panel="panel-west")).json()["incident_id"]
    params = {"recipient": "Police West"}
    with live_server.client("west_operator") as c:
        r = c.get(f"/api/v1/incidents/{east}/eido", params=params)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert c.get("/api/v1/incidents/999999/eido", params=params).status_code == 404
        assert c.get(f"/api/v1/incidents/{west}/eido", params=params).status_code == 200
    with live_server.client("call_taker") as c:  # reads incidents, may not share them
        assert c.get(f"/api/v1/incidents/{west}/eido", params=params).status_code == 403
    log = entries(live_server.services.engine)
    assert [e["object_id"] for e in log if e["op"] == "disclose"] == [str(west)]
    denied = [e for e in log if e["outcome"] == "denied" and e["object_type"] == "route"]
    assert f"GET /api/v1/incidents/{east}/eido" in {e["object_id"] for e in denied}
