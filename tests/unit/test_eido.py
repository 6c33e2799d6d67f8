"""The EIDO mapping (interop/eido.py): incidents of each kind as NENA-STA-021.1 documents,
validated against a schema written from the standard's text (tests/fixtures/eido/README.md)
and checked field by field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.incident import Condition, Incident, Status, incident_dict
from alarmdesk.domain.signal import Location, SourceKind
from alarmdesk.domain.taxonomy import IncidentType, Taxonomy, default_types
from alarmdesk.domain.units import Unit, UnitStatus
from alarmdesk.interop import eido

FIXTURES = Path(__file__).parent.parent / "fixtures" / "eido"
SCHEMA = json.loads((FIXTURES / "eido-subset.schema.json").read_text("utf-8"))
REGISTRY = {
    line.strip()
    for line in (FIXTURES / "incident-types.txt").read_text("utf-8").splitlines()
    if line.strip() and not line.startswith("#")
}
AGENCY = eido.Agency("psap.example.org", "Example Centre", ("fire", "ems"), {"boat": "FireBoat"})
T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
TYPES = Taxonomy(default_types())


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat()


def valid(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    ids = [doc["$id"]]
    for key, value in doc.items():
        if key.endswith("Component"):
            for comp in value if isinstance(value, list) else [value]:
                ids.append(comp["$id"])
                ids += [d["$id"] for d in comp.get("dispositionComponent", [])]
    assert len(ids) == len(set(ids)), "a data component identifier is used twice"
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if set(node) == {"$ref"}:
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert refs and set(refs) <= set(ids), f"dangling references: {set(refs) - set(ids)}"


def by_id(doc: dict[str, Any], key: str, cid: str) -> dict[str, Any]:
    return next(c for c in doc[key] if c["$id"] == cid)


def fire_alarm() -> tuple[dict[str, Any], list[Unit]]:
    """A panel's fire alarm, two engines and a boat sent; one engine cleared, notes added."""
    inc = Incident(
        id=42,
        type_code="ALRF",
        category=HarmCategory.FIRE,
        priority=1,
        source_kind=SourceKind.EQUIPMENT,
        source_id="panel-12345A",
        opened_at=T0,
        first_seen=T0,
        last_seen=T0,
        location=Location(lat=52.372, lon=4.893, address="Dam 1", zone="129", site="Warehouse"),
        summary="Fire alarm zone 129",
        status=Status.ON_SCENE,
        condition=Condition.ACTIVE,
        desks=("north", "alarms"),
        units=("E1", "E2", "B1"),
        acknowledged_at=T0 + timedelta(minutes=1),
        dispatched_at=T0 + timedelta(minutes=2),
        on_scene_at=T0 + timedelta(minutes=9),
    )
    view = incident_dict(inc)
    view["signals"] = [
        {
            "id": 7,
            "idempotency_key": "k7",
            "source_kind": "equipment",
            "source_id": "panel-12345A",
            "type_code": "ALRF",
            "occurred_at": at(0),
            "received_at": at(0),
            "location": {"lat": 52.372, "lon": 4.893, "zone": "129"},
            "summary": "Fire alarm zone 129",
            "payload": {"event": "FA", "plate": "AB-123-C"},
            "condition": "active",
            "record_only": False,
        }
    ]
    view["timeline"] = [
        {"id": 1, "type": "incident.opened", "at": at(0), "actor": "system", "detail": {}},
        {
            "id": 5,
            "type": "incident.noted",
            "at": at(3),
            "actor": "jan",
            "detail": {"text": "Keyholder <b>on the way</b>\nGate code at reception"},
        },
        {
            "id": 9,
            "type": "incident.unit_status",
            "at": at(12),
            "actor": "E2",
            "detail": {"unit": "E2", "status": "available"},
        },
    ]
    units = [
        Unit(
            "E1",
            "engine",
            "S1",
            ("fire",),
            UnitStatus.ON_SCENE,
            42,
            52.3721,
            4.8931,
            T0 + timedelta(minutes=9),
        ),
        Unit(
            "E2",
            "engine",
            "S1",
            ("fire",),
            UnitStatus.AVAILABLE,
            None,
            52.30,
            4.80,
            T0 + timedelta(minutes=12),
        ),
        Unit(
            "B1", "boat", "S2", (), UnitStatus.EN_ROUTE, 42, None, None, T0 + timedelta(minutes=4)
        ),
    ]
    return view, units


def test_an_alarm_incident_with_units_notes_and_a_signal() -> None:
    view, units = fire_alarm()
    doc = eido.build(view, units, TYPES.get("ALRF"), AGENCY)
    valid(doc)
    assert doc["$id"] == "urn:emergency:uid:incidentid:42:psap.example.org"
    assert doc["eidoVersion"] == "1.0"
    assert doc["lastUpdateTimeStamp"] == at(12)  # the newest event

    inc = doc["incidentComponent"]
    assert inc["incidentTypeCommonRegistryText"] == "ALRF"
    assert inc["incidentTypeInternalCode"] == "ALRF"
    assert inc["incidentTypeInternalText"] == TYPES.resolve("ALRF").name
    assert inc["incidentStatusCommonRegistryText"] == [
        "Active",
        "ResourcesAssigned",
        "ResourcesOnscene",
    ]
    assert inc["incidentStatusInternalText"] == ["on_scene"]
    assert inc["incidentCommonPriorityNumber"] == 10
    assert inc["incidentPriorityInternalText"] == "1"
    assert inc["internalIncidentId"] == "42"
    assert inc["beatOrDispatchGroupText"] == "north, alarms"
    assert "dispositionComponent" not in inc

    (agency,) = doc["agencyComponent"]
    assert agency["$id"] == "psap.example.org"
    assert agency["agencyType"] == ["fire", "ems"]
    assert agency["agencyRoleDescriptionRegistryText"] == ["CallReceiving", "Dispatching"]
    assert agency["incidentOwningAgencyIndicator"] is True
    assert ["fn", {}, "text", "Example Centre"] in json.loads(agency["agencyJcard"])[1]

    where = by_id(doc, "locationComponent", inc["locationReference"][0]["$ref"])
    assert where["locationTypeDescriptionRegistryText"] == "CurrentIncident"
    assert where["locationDescriptionText"] == "Dam 1; site Warehouse; zone 129"
    pos = ET.fromstring(where["locationByValue"]).find(".//{http://www.opengis.net/gml}pos")
    assert pos is not None and pos.text == "52.372000 4.893000"

    notes = [
        by_id(doc, "notesComponent", r["$ref"])["notesActionComments"]
        for r in inc["notesReference"]
    ]
    assert notes == [
        "Fire alarm zone 129",
        "Keyholder &lt;b&gt;on the way&lt;/b&gt;<br>Gate code at reception",
    ]

    resources = {r["emergencyResourceName"]: r for r in doc["emergencyResourceComponent"]}
    e1, e2, b1 = resources["E1"], resources["E2"], resources["B1"]
    assert e1["$id"] == "E1@psap.example.org"
    assert e1["emergencyResourceTypeCommonRegistryText"] == "StructureFireEngineType1"
    assert (e1["primaryUnitStatusRegistryText"], e1["secondaryUnitStatusRegistryText"]) == (
        "NotAvailable",
        ["OnScene"],
    )
    assert e1["unitStatusInternal"] == ["on_scene"]
    unit_at = by_id(doc, "locationComponent", e1["unitLocationReference"]["$ref"])
    assert unit_at["locationTypeDescriptionRegistryText"] == "UnitLocation"
    # E2 has left: cleared and free, and where it is now is not this incident's business
    assert (e2["primaryUnitStatusRegistryText"], e2["secondaryUnitStatusRegistryText"]) == (
        "Available",
        ["Cleared"],
    )
    assert "unitLocationReference" not in e2 and "52.3" not in json.dumps(e2)
    # a kind the centre mapped itself
    assert b1["emergencyResourceTypeCommonRegistryText"] == "FireBoat"
    assert b1["secondaryUnitStatusRegistryText"] == ["EnRoute"]
    agent = doc["agentComponent"][0]
    assert all(r["agentReference"] == [{"$ref": agent["$id"]}] for r in resources.values())
    assert agent["agentRoleRegistryText"] == ["Dispatching"]

    (alarm,) = doc["alarmsSensorsComponent"]
    info = json.loads(alarm["csaaAlarmInformation"])
    assert info == {
        "signal_id": 7,
        "source_id": "panel-12345A",
        "type_code": "ALRF",
        "condition": "active",
        "zone": "129",
        "occurred_at": at(0),
        "received_at": at(0),
        "summary": "Fire alarm zone 129",
    }
    assert "AB-123-C" not in json.dumps(doc)  # a signal's payload is never sent
    assert '"jan"' not in json.dumps(doc)  # nor who wrote a note
    assert eido.build(view, units, TYPES.get("ALRF"), AGENCY) == doc  # no clock inside


def call_incident() -> dict[str, Any]:
    t = IncidentType("XLOCK", "LOCKED OUT", HarmCategory.PUBLIC_SERVICE, 4, origin="custom")
    inc = Incident(
        id=7,
        type_code=t.code,
        category=t.category,
        priority=4,
        source_kind=SourceKind.CALL,
        source_id="user-3",
        opened_at=T0,
        first_seen=T0,
        last_seen=T0 + timedelta(minutes=5),
        location=Location(address="Kerkstraat 5"),
        status=Status.CANCELLED,
        cancelled_at=T0 + timedelta(minutes=30),
        disposition="cancelled:duplicate",
    )
    view = incident_dict(inc)
    people = [
        {"role": "caller", "name": "Ann de Vries", "callback": "+31 (20) 555-0100"},
        {"role": "witness", "callback": "radio ch 4"},
        {"role": "subject", "name": "Piet"},
    ]
    view["signals"] = [
        {
            "id": 11,
            "idempotency_key": "c11",
            "source_kind": "call",
            "source_id": "user-3",
            "type_code": t.code,
            "occurred_at": at(0),
            "received_at": at(0),
            "location": {"address": "Kerkstraat 5"},
            "summary": "",
            "payload": {"people": people},
            "condition": None,
            "record_only": False,
        }
    ]
    view["timeline"] = [
        {"id": 3, "type": "incident.opened", "at": at(0), "actor": "ct", "detail": {}},
        {
            "id": 8,
            "type": "incident.transitioned",
            "at": at(30),
            "actor": "op",
            "detail": {
                "from": "new",
                "to": "cancelled",
                "reason": "duplicate",
                "note": "Same as #6",
            },
        },
    ]
    return view, t


def test_a_call_incident_with_people_and_a_custom_type() -> None:
    view, itype = call_incident()
    doc = eido.build(view, [], itype, AGENCY)
    valid(doc)
    inc = doc["incidentComponent"]
    assert inc["incidentTypeCommonRegistryText"] == "NCRNONE"  # no common code for it
    assert (inc["incidentTypeInternalCode"], inc["incidentTypeInternalText"]) == (
        "XLOCK",
        "LOCKED OUT",
    )
    assert inc["incidentStatusCommonRegistryText"] == ["Cancelled"]
    assert inc["incidentCommonPriorityNumber"] == 4
    (disp,) = inc["dispositionComponent"]
    assert disp["dispositionCommonRegistryCode"] == "22"
    assert disp["dispositionCategoryText"] == "cancelled:duplicate"
    assert disp["lastUpdateTimeStamp"] == at(30)
    assert doc["agencyComponent"][0]["agencyRoleDescriptionRegistryText"] == ["CallReceiving"]
    assert "emergencyResourceComponent" not in doc and "alarmsSensorsComponent" not in doc

    where = by_id(doc, "locationComponent", inc["locationReference"][0]["$ref"])
    assert where["locationDescriptionText"] == "Kerkstraat 5" and "locationByValue" not in where

    people = [by_id(doc, "personComponent", r["$ref"]) for r in inc["personReference"]]
    assert [p["personIncidentRoleRegistryText"] for p in people] == [
        ["Caller"],
        ["Witness"],
        ["InvolvedPerson"],
    ]
    caller, witness, subject = people
    assert caller["ncPersonComponent"] == {
        "name": [{"personFullName": [{"value": "Ann de Vries"}]}]
    }
    callback = by_id(doc, "callbackComponent", caller["callBackReference"]["$ref"])
    assert callback["callBackInformationUri"] == ["tel:+31205550100"]
    assert "ncPersonComponent" not in witness and "callBackReference" not in witness
    assert (
        by_id(doc, "notesComponent", witness["notesReference"][0]["$ref"])["notesActionComments"]
        == "Callback: radio ch 4"
    )
    assert set(subject) == {
        "$id",
        "lastUpdateTimeStamp",
        "updatedByAgencyReference",
        "personIncidentRoleRegistryText",
        "ncPersonComponent",
    }
    notes = [
        by_id(doc, "notesComponent", r["$ref"])["notesActionComments"]
        for r in inc["notesReference"]
    ]
    assert notes == ["Same as #6"]


@pytest.mark.parametrize("status", list(Status))
def test_every_status_maps_to_registry_values(status: Status) -> None:
    view, units = fire_alarm()
    view["status"] = status.value
    valid(eido.build(view, units, TYPES.get("ALRF"), AGENCY))


def test_every_default_type_has_a_common_incident_type() -> None:
    missing = {t.code for t in TYPES if eido.common_incident_type(t, t.code) not in REGISTRY}
    assert missing == set()


def test_every_disposition_and_priority_is_mapped() -> None:
    from alarmdesk.domain.incident import CancelReason, Disposition

    assert {d.value for d in Disposition} | {f"cancelled:{r.value}" for r in CancelReason} == set(
        eido.DISPOSITIONS
    )
    assert set(eido.COMMON_PRIORITY) == {1, 2, 3, 4, 5}
