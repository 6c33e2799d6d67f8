"""An incident as a NENA Emergency Incident Data Object (EIDO, NENA-STA-021.1, JSON).

:func:`build` maps alarmdesk's incident view (``service.queries.get_incident``: the incident
with its signals and timeline), the units on it and its type to one EIDO document: the header
with the incident tracking identifier, the agency (the centre, from configuration), the
incident (type, status, priority, disposition), its location, notes, the emergency resources
(units with their status), an alarms/sensors component per equipment signal, and the people
on it with their role, name and callback: what the model holds, nothing more.

Pure: no I/O. Which values come from which field, and what is left out and why, is in
docs/sharing.md. The registry values used here are the initial values of the IANA registries
that the standard's section 3 asks for (agency role, incident type, incident status, common
disposition codes, person role, location type, primary and secondary unit status, emergency
resource type).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

from alarmdesk.domain.incident import Status
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.domain.units import DISPATCHABLE, Unit, UnitStatus

__all__ = [
    "COMMON_PRIORITY",
    "DISPOSITIONS",
    "EIDO_VERSION",
    "INCIDENT_STATUS",
    "PERSON_ROLES",
    "RESOURCE_TYPES",
    "Agency",
    "build",
    "common_incident_type",
]

EIDO_VERSION: Final = "1.0"
_COMPONENT: Final = "urn:emergency:uid:eidodatacomponent"

# alarmdesk status → EIDO-IncidentStatus-Common values (the incident's current state).
INCIDENT_STATUS: Final[dict[str, tuple[str, ...]]] = {
    Status.NEW: ("Active",),
    Status.ACKNOWLEDGED: ("Active",),
    Status.DISPATCHED: ("Active", "ResourcesAssigned"),
    Status.ON_SCENE: ("Active", "ResourcesAssigned", "ResourcesOnscene"),
    Status.RESOLVED: ("Closed",),
    Status.CLOSED: ("Closed",),
    Status.CANCELLED: ("Cancelled",),
}

# alarmdesk priority 1 (most urgent) … 5 → the common priority 0 … 10 (10 the highest).
COMMON_PRIORITY: Final[dict[int, int]] = {1: 10, 2: 8, 3: 6, 4: 4, 5: 2}

# alarmdesk disposition → (EIDO-CommonDispositionCode, what it means here).
DISPOSITIONS: Final[dict[str, tuple[str, str]]] = {
    "handled": ("18", "Handled: the response was completed"),
    "false_alarm": ("17", "False alarm"),
    "no_action_needed": ("02", "No action needed"),
    "referred": ("15", "Referred to a partner agency"),
    "duplicate": ("22", "Duplicate of another incident"),
    "cancelled:false_alarm": ("17", "Cancelled: false alarm"),
    "cancelled:duplicate": ("22", "Cancelled: duplicate call"),
    "cancelled:merged": ("10", "Cancelled: merged into another incident"),
}

# alarmdesk person role → EIDO-PersonRole. "subject" is the person the incident is about
# (a patient, someone in need): it is sent as InvolvedPerson, never as a suspect.
PERSON_ROLES: Final[dict[str, str]] = {
    "caller": "Caller",
    "reporter": "ReportingParty",
    "victim": "Victim",
    "witness": "Witness",
    "patient": "Patient",
    "subject": "InvolvedPerson",
}

# unit kind → EIDO-EmergencyResourceType-Common (a centre adds its own in configuration).
RESOURCE_TYPES: Final[dict[str, str]] = {
    "engine": "StructureFireEngineType1",
    "truck": "FireTruckLadder",
    "ladder": "FireTruckLadder",
    "medic": "GroundALSAmbulance",
    "als": "GroundALSAmbulance",
    "ambulance": "GroundALSAmbulance",
    "bls": "GroundBLSAmbulance",
    "rescue": "HeavyRescue",
    "hazmat": "HazMatTeam",
    "tender": "FireWaterTender",
    "tanker": "FireWaterTender",
    "brush": "BrushFireEngineType3",
    "chief": "CommandLevel4",
    "command": "CommandLevel4",
    "patrol": "PatrolUnit",
    "police": "PatrolUnit",
    "support": "MobileSupportVehicle",
    "private": "ResponderCrewTransport",
}

# Types of alarmdesk's own (origin "local") and what the common registry calls them.
_LOCAL_TYPES: Final[dict[str, str]] = {
    "EQTRBL": "TROUBLE",
    "EQCOMM": "TROUBLE",
    "EQTEST": "TROUBLE",
    "EQTAMP": "TROUBLE",
    "UNCLASS": "NCRNONE",
    "XTRACATE": "XTRICATE",  # the registry's spelling
}
_NO_CODE: Final = "NCRNONE"  # "None - No Code Found": a custom type has no common code

# Unit status on this incident → (primary, secondary) unit status, common registries.
_ON_INCIDENT: Final[dict[UnitStatus, tuple[str, tuple[str, ...]]]] = {
    UnitStatus.DISPATCHED: ("NotAvailable", ("Dispatched",)),
    UnitStatus.EN_ROUTE: ("NotAvailable", ("EnRoute",)),
    UnitStatus.ON_SCENE: ("NotAvailable", ("OnScene",)),
}

_PHONE: Final = re.compile(r"^\+?[0-9][0-9 ()./-]{2,39}$")


@dataclass(frozen=True, slots=True)
class Agency:
    """The centre that sends the EIDO: its Agency Identifier (a domain name, globally unique),
    its name, and its agency types (IANA urn:emergency:service:responder values)."""

    id: str
    name: str
    types: tuple[str, ...] = ("psap",)
    resource_types: Mapping[str, str] = field(default_factory=dict)  # over RESOURCE_TYPES


def common_incident_type(itype: IncidentType | None, code: str) -> str:
    """The EIDO-IncidentType-Common value for an alarmdesk type: APCO types are their own
    code; alarmdesk's own ones map to the nearest; a custom type has no common code."""
    if code in _LOCAL_TYPES:
        return _LOCAL_TYPES[code]
    if itype is None or itype.origin != "apco":
        return _NO_CODE
    return code


def _when(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _iso(value: datetime) -> str:
    return value.isoformat()


class _Doc:
    """Collects the components of one EIDO; every component starts with the common prologue."""

    def __init__(self, agency: Agency, incident_id: int) -> None:
        self.agency = agency
        self.incident_id = incident_id
        self.lists: dict[str, list[dict[str, Any]]] = {}

    def cid(self, unique: str) -> str:
        """A data component identifier: the same for this component in every EIDO of the
        incident (built from alarmdesk's ids), unique within the document."""
        return f"{_COMPONENT}:{unique}:{self.agency.id}"

    def ref(self, cid: str) -> dict[str, str]:
        return {"$ref": cid}

    def prologue(self, cid: str, at: datetime) -> dict[str, Any]:
        return {
            "$id": cid,
            "lastUpdateTimeStamp": _iso(at),
            "updatedByAgencyReference": self.ref(self.agency.id),
        }

    def add(self, key: str, component: dict[str, Any]) -> dict[str, str]:
        self.lists.setdefault(key, []).append(component)
        return self.ref(component["$id"])

    def note(self, unique: str, text: str, at: datetime) -> dict[str, str]:
        """A note's text in HTML5, as the standard asks: escaped, its lines kept."""
        body = "<br>".join(html.escape(line) for line in text.splitlines() or [""])
        return self.add(
            "notesComponent", {**self.prologue(self.cid(unique), at), "notesActionComments": body}
        )


def pidf_lo(entity: str, lat: float, lon: float, at: datetime) -> str:
    """A PIDF-LO document (RFC 4119, RFC 5491) with one WGS 84 point."""
    return (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf"'
        ' xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"'
        f' xmlns:gml="http://www.opengis.net/gml" entity={quoteattr(entity)}>'
        '<tuple id="location"><status><gp:geopriv><gp:location-info>'
        '<gml:Point srsName="urn:ogc:def:crs:EPSG::4326">'
        f"<gml:pos>{lat:.6f} {lon:.6f}</gml:pos></gml:Point></gp:location-info>"
        "<gp:usage-rules/></gp:geopriv></status>"
        f"<timestamp>{escape(_iso(at))}</timestamp></tuple></presence>"
    )


def _location(
    doc: _Doc, unique: str, kind: str, loc: Mapping[str, Any], at: datetime
) -> dict[str, str] | None:
    lat, lon = loc.get("lat"), loc.get("lon")
    words = [
        str(loc[k]) if k == "address" else f"{k} {loc[k]}"
        for k in ("address", "site", "zone")
        if loc.get(k)
    ]
    if (lat is None or lon is None) and not words:
        return None
    cid = doc.cid(unique)
    comp: dict[str, Any] = {**doc.prologue(cid, at), "locationTypeDescriptionRegistryText": kind}
    if lat is not None and lon is not None:
        comp["locationByValue"] = pidf_lo(f"pres:{unique}@{doc.agency.id}", lat, lon, at)
    if words:
        comp["locationDescriptionText"] = "; ".join(words)
    return doc.add("locationComponent", comp)


def _jcard(name: str) -> str:
    """The agency's contact as a jCard (RFC 7095), serialised as the standard's string."""
    card = [
        "vcard",
        [["version", {}, "text", "4.0"], ["kind", {}, "text", "org"], ["fn", {}, "text", name]],
    ]
    return json.dumps(card, ensure_ascii=False, separators=(",", ":"))


def _changed_at(incident: Mapping[str, Any]) -> datetime:
    """When the incident last changed: its newest event, signal or phase time."""
    times = [_when(e["at"]) for e in incident.get("timeline") or ()]
    times += [_when(incident.get(k)) for k in ("last_seen", "opened_at")]
    found = [t for t in times if t is not None]
    return max(found)


def _notes(doc: _Doc, incident: Mapping[str, Any], changed: datetime) -> list[dict[str, str]]:
    refs = []
    if incident.get("summary"):
        opened = _when(incident.get("opened_at")) or changed
        refs.append(doc.note(f"summary{doc.incident_id}", str(incident["summary"]), opened))
    for ev in incident.get("timeline") or ():
        detail = ev.get("detail") or {}
        text = detail.get("text") if ev["type"] == "incident.noted" else detail.get("note")
        if text:
            refs.append(doc.note(f"note{ev['id']}", str(text), _when(ev["at"]) or changed))
    return refs


def _people(doc: _Doc, signals: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Each person on a signal: role, name and callback, the only fields the model has."""
    refs = []
    for s in signals:
        people = (s.get("payload") or {}).get("people") or []
        at = _when(s.get("received_at")) or _when(s.get("occurred_at"))
        assert at is not None
        for i, person in enumerate(people):
            if not isinstance(person, Mapping):
                continue
            unique = f"person{s['id']}x{i}"
            role = str(person.get("role") or "")
            comp: dict[str, Any] = {
                **doc.prologue(doc.cid(unique), at),
                "personIncidentRoleRegistryText": [PERSON_ROLES.get(role, "InvolvedPerson")],
            }
            name = str(person.get("name") or "").strip()
            if name:
                comp["ncPersonComponent"] = {"name": [{"personFullName": [{"value": name}]}]}
            callback = str(person.get("callback") or "").strip()
            if callback and _PHONE.match(callback):
                number = ("+" if callback.startswith("+") else "") + re.sub(r"\D", "", callback)
                cb = {
                    **doc.prologue(doc.cid(f"callback{s['id']}x{i}"), at),
                    "callBackInformationUri": [f"tel:{number}"],
                }
                comp["callBackReference"] = doc.add("callbackComponent", cb)
            elif callback:  # "radio ch 4": a way to reach them that is no number
                comp["notesReference"] = [
                    doc.note(f"callback{s['id']}x{i}", f"Callback: {callback}", at)
                ]
            refs.append(doc.add("personComponent", comp))
    return refs


def _alarms(doc: _Doc, signals: Sequence[Mapping[str, Any]]) -> None:
    """One alarms/sensors component per equipment signal: what the device reported, as a
    JSON text (alarmdesk receives no CSAA ANS 2.101 record to pass on), never its payload."""
    for s in signals:
        if s.get("source_kind") != "equipment":
            continue
        loc = s.get("location") or {}
        info = {
            "signal_id": s["id"],
            "source_id": s["source_id"],
            "type_code": s["type_code"],
            "condition": s.get("condition"),
            "zone": loc.get("zone"),
            "occurred_at": s["occurred_at"],
            "received_at": s["received_at"],
            "summary": s.get("summary") or "",
        }
        at = _when(s["received_at"])
        assert at is not None
        comp = {
            **doc.prologue(doc.cid(f"alarm{s['id']}"), at),
            "csaaAlarmInformation": json.dumps(
                {k: v for k, v in info.items() if v not in (None, "")},
                ensure_ascii=False,
                separators=(",", ":"),
            ),
        }
        doc.add("alarmsSensorsComponent", comp)


def _resources(
    doc: _Doc,
    incident_id: int,
    names: Sequence[str],
    units: Mapping[str, Unit],
    dispatcher: dict[str, str],
    changed: datetime,
) -> None:
    """The units sent to the incident with their status now. A unit still on it shows its
    status and position; one that has left it shows "Cleared" and whether it is free, never
    where it is or what it does now."""
    kinds = {**RESOURCE_TYPES, **doc.agency.resource_types}
    for name in names:
        unit = units.get(name)
        if unit is None:  # removed from the set-up since: its kind is no longer known
            continue
        at = unit.status_at or changed
        here = unit.incident_id == incident_id and unit.status in _ON_INCIDENT
        if here:
            primary, secondary = _ON_INCIDENT[unit.status]
            internal = unit.status.value
        else:
            primary = (
                "Available"
                if unit.status is UnitStatus.AVAILABLE
                else "ConditionallyAvailable"
                if unit.status in DISPATCHABLE
                else "NotAvailable"
            )
            secondary, internal = ("Cleared",), "cleared"
        comp: dict[str, Any] = {
            "$id": f"{unit.id}@{doc.agency.id}",
            "lastUpdateTimeStamp": _iso(at),
            "updatedByAgencyReference": doc.ref(doc.agency.id),
            "emergencyResourceTypeCommonRegistryText": kinds.get(unit.kind, unit.kind),
            "emergencyResourceTypeInternalText": unit.kind,
            "emergencyResourceName": unit.id,
            "resourceAttributeRegistryText": [],
            "primaryUnitStatusRegistryText": primary,
            "secondaryUnitStatusRegistryText": list(secondary),
            "unitStatusInternal": [internal],
            "agentReference": [dispatcher],
        }
        if unit.capabilities:
            comp["resourceAttributeInternalText"] = list(unit.capabilities)
        if here and unit.lat is not None and unit.lon is not None:
            where = _location(
                doc,
                f"unit{unit.id.encode().hex()}",
                "UnitLocation",
                {"lat": unit.lat, "lon": unit.lon},
                at,
            )
            if where is not None:
                comp["unitLocationReference"] = where
        doc.add("emergencyResourceComponent", comp)


def _disposition(doc: _Doc, incident: Mapping[str, Any], at: datetime) -> list[dict[str, Any]]:
    value = incident.get("disposition")
    if not value:
        return []
    code, text = DISPOSITIONS.get(str(value), ("13", str(value)))
    return [
        {
            **doc.prologue(doc.cid(f"disposition{doc.incident_id}"), at),
            "dispositionCommonRegistryCode": code,
            "dispositionPrimaryIndicator": True,
            "dispositionCategoryText": str(value),
            "dispositionDescriptionText": text,
        }
    ]


def build(
    incident: Mapping[str, Any],
    units: Iterable[Unit],
    itype: IncidentType | None,
    agency: Agency,
) -> dict[str, Any]:
    """The EIDO of ``incident`` (the view with ``signals`` and ``timeline``) as the sender
    knows it now. Same incident, same units: the same document (nothing depends on the clock)."""
    inc_id = int(incident["id"])
    doc = _Doc(agency, inc_id)
    changed = _changed_at(incident)
    status = str(incident["status"])
    signals = incident.get("signals") or []

    sent_units = list(incident.get("units") or ())
    roles = ["CallReceiving", "Dispatching"] if sent_units else ["CallReceiving"]
    doc.add(
        "agencyComponent",
        {
            "$id": agency.id,
            "lastUpdateTimeStamp": _iso(changed),
            "updatedByAgencyReference": doc.ref(agency.id),
            "agencyJcard": _jcard(agency.name),
            "agencyRoleDescriptionRegistryText": roles,
            "agencyType": list(agency.types),
            "incidentOwningAgencyIndicator": True,
        },
    )
    # The centre's dispatch position as the one agent: alarmdesk sends no staff identities
    # and knows no crews (docs/sharing.md).
    dispatcher = doc.add(
        "agentComponent",
        {
            "$id": f"dispatch@{agency.id}",
            "lastUpdateTimeStamp": _iso(changed),
            "updatedByAgencyReference": doc.ref(agency.id),
            "agentRoleRegistryText": ["Dispatching"],
            "agencyReference": doc.ref(agency.id),
        },
    )

    component: dict[str, Any] = {
        **doc.prologue(doc.cid(f"incident{inc_id}"), changed),
        "incidentTypeCommonRegistryText": common_incident_type(itype, str(incident["type_code"])),
        "incidentTypeInternalCode": str(incident["type_code"]),
    }
    if itype is not None:
        component["incidentTypeInternalText"] = itype.name
    statuses = list(INCIDENT_STATUS.get(status, ("Active",)))
    if incident.get("en_route_at") and status == Status.DISPATCHED:
        statuses.append("ResourcesEnroute")
    component["incidentStatusCommonRegistryText"] = statuses
    component["incidentStatusInternalText"] = [status]
    component["internalIncidentId"] = str(inc_id)
    priority = int(incident["priority"])
    component["incidentPriorityInternalText"] = str(priority)
    if priority in COMMON_PRIORITY:
        component["incidentCommonPriorityNumber"] = COMMON_PRIORITY[priority]
    if incident.get("desks"):
        component["beatOrDispatchGroupText"] = ", ".join(incident["desks"])
    opened = _when(incident.get("opened_at")) or changed
    where = _location(
        doc, f"location{inc_id}", "CurrentIncident", incident.get("location") or {}, opened
    )
    if where is not None:
        component["locationReference"] = [where]
    people = _people(doc, signals)
    if people:
        component["personReference"] = people
    final_at = _when(incident.get("resolved_at") or incident.get("cancelled_at")) or changed
    disposition = _disposition(doc, incident, final_at)
    if disposition:
        component["dispositionComponent"] = disposition
    notes = _notes(doc, incident, changed)
    if notes:
        component["notesReference"] = notes

    _resources(doc, inc_id, sent_units, {u.id: u for u in units}, dispatcher, changed)
    _alarms(doc, signals)

    out: dict[str, Any] = {
        "$id": f"urn:emergency:uid:incidentid:{inc_id}:{agency.id}",
        "lastUpdateTimeStamp": _iso(changed),
        "updatedByAgencyReference": doc.ref(agency.id),
        "eidoVersion": EIDO_VERSION,
        "issuingElementIdentification": f"alarmdesk.{agency.id}",
        "incidentComponent": component,
    }
    for key in (
        "agencyComponent",
        "agentComponent",
        "locationComponent",
        "notesComponent",
        "personComponent",
        "callbackComponent",
        "emergencyResourceComponent",
        "alarmsSensorsComponent",
    ):
        if doc.lists.get(key):
            out[key] = doc.lists[key]
    return out
