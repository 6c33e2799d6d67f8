"""The call-taker and duty-report forms: a form becomes a signal through the same intake and
pipeline as every other signal (``intake_signal``), or names each field it refuses."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import anyio
import msgspec
from litestar import Request, Response, get, post

from alarmdesk.domain.errors import AlarmdeskError, IdempotencyKeyReused, InvalidField
from alarmdesk.domain.signal import SignalIn, check, check_text
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.safeguards.access import Permission, Principal, shares_desk
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.service import console_queries
from alarmdesk.service.console_queries import Reference
from alarmdesk.web.api import actor_of, audit, needs, services
from alarmdesk.web.api.signals import keep_own_joins
from alarmdesk.web.console.login import read_form
from alarmdesk.web.console.render import render
from alarmdesk.web.console.settings import map_config, principal, reference

_COORDS: Final = re.compile(r"^\s*(-?\d{1,2}(?:\.\d+)?)\s*[,; ]\s*(-?\d{1,3}(?:\.\d+)?)\s*$")
_CALLBACK: Final = re.compile(r"^[0-9+()\-.\s/]{3,40}$")
CALLBACK_TEXT_MAX: Final = 60  # a duty report's callback: "radio ch 4", a talk group, a number
_FORM_KEY: Final = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
FORM_KINDS: Final[dict[str, dict[str, Any]]] = {
    "call": {
        "title": "New call",
        "action": "/calls",
        "permission": Permission.CALL_CREATE,
        "source_kind": "call",
        "person_role": "caller",
    },
    "duty": {
        "title": "Duty report",
        "action": "/reports",
        "permission": Permission.DUTY_REPORT,
        "source_kind": "duty",
        "person_role": "reporter",
    },
}


def _form_page(request: Request[Any, Any, Any], kind: str) -> Response[str]:
    svc = services(request)
    return render(
        request,
        "intake.html",
        title=FORM_KINDS[kind]["title"],
        kind=kind,
        form=FORM_KINDS[kind],
        types=reference(svc).types,
        form_key=secrets.token_urlsafe(16),
        boot={"map": map_config(request)},
    )


@get("/calls/new", opt=needs(Permission.CALL_CREATE), include_in_schema=False, sync_to_thread=True)
def call_form(request: Request[Any, Any, Any]) -> Response[str]:
    return _form_page(request, "call")


@get(
    "/reports/new", opt=needs(Permission.DUTY_REPORT), include_in_schema=False, sync_to_thread=True
)
def report_form(request: Request[Any, Any, Any]) -> Response[str]:
    return _form_page(request, "duty")


class FormErrors(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def parse_type(text: str, ref: Reference) -> IncidentType | None:
    """The type a picker's text names: "FSTRU", "FSTRU — Structure fire" or the name."""
    head = re.split(r"\s+[—–-]\s+", text.strip(), maxsplit=1)[0].strip()
    found = ref.type_of(head) if head else None
    if found is None:
        wanted = text.strip().casefold()
        found = next((x for x in ref.types if x.name.casefold() == wanted), None)
    return found


def intake_signal(
    fields: Mapping[str, str], kind: str, who: Principal, ref: Reference, now: datetime
) -> SignalIn:
    """The signal a console form describes; raises FormErrors naming each bad field."""
    spec = FORM_KINDS[kind]
    errors: dict[str, str] = {}
    itype = parse_type(fields.get("type", ""), ref)
    if itype is None:
        errors["type"] = "Choose an incident type from the list (type a code or a name)."
    location: dict[str, Any] = {}
    coords = fields.get("coords", "").strip()
    if coords:
        m = _COORDS.match(coords)
        lat, lon = (float(m.group(1)), float(m.group(2))) if m else (999.0, 999.0)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            errors["coords"] = "Coordinates are 'latitude, longitude', e.g. 37.7749, -122.4194."
        else:
            location.update(lat=lat, lon=lon)
    address = " ".join(fields.get("address", "").split())
    if len(address) > 200:
        errors["address"] = "An address is at most 200 characters."
    elif address:
        location["address"] = address
    if not location and "coords" not in errors:
        errors["coords"] = "Give a location: click the map, type coordinates, or an address."
    name = " ".join(fields.get("name", "").split())
    if len(name) > 100:
        errors["name"] = "A name is at most 100 characters."
    callback = fields.get("callback", "").strip()
    if kind == "duty":  # on duty, a radio channel or a talk group is as good as a number
        if len(callback) > CALLBACK_TEXT_MAX:
            errors["callback"] = f"A callback is at most {CALLBACK_TEXT_MAX} characters."
        else:
            try:
                check_text(callback, "callback")
            except InvalidField:
                errors["callback"] = "A callback is one line of text, e.g. radio ch 4 or a number."
    elif callback and not _CALLBACK.match(callback):
        errors["callback"] = "A callback number has digits, spaces and + ( ) - . / only."
    summary = fields.get("summary", "").strip()
    if len(summary) > 1000:
        errors["summary"] = "The summary is at most 1,000 characters."
    choice = fields.get("choice", "").strip()  # a candidate's id, "new", or none given
    if choice and choice != "new" and not (choice.isdecimal() and 0 < int(choice) < 2**53):
        errors["choice"] = "Choose one of the incidents listed, or a new incident."
    form_key = fields.get("form_key", "")
    if not _FORM_KEY.match(form_key):
        errors["form"] = "This form is stale; reload the page."
    if errors:
        raise FormErrors(errors)
    assert itype is not None
    person: dict[str, str] = {"role": spec["person_role"]}
    if kind == "duty":
        person["name"] = who.name
    elif name:
        person["name"] = name
    if callback:
        person["callback"] = callback
    payload = {"people": [person]} if len(person) > 1 else {}
    raw = {
        "source_kind": spec["source_kind"],
        "source_id": who.id,
        "type_code": itype.code,
        "occurred_at": now.isoformat(),
        "location": location,
        "summary": summary,
        "idempotency_key": f"console-{kind}:{who.id}:{form_key}",
        "payload": payload,
    }
    if choice == "new":
        raw["separate"] = True
    elif choice:
        raw["join"] = int(choice)
    try:
        signal = msgspec.convert(raw, SignalIn)
    except msgspec.ValidationError as exc:
        raise FormErrors({"form": str(exc)}) from None
    try:
        return check(signal, now)
    except AlarmdeskError as exc:
        raise FormErrors({"form": exc.message}) from None


async def _submit_form(request: Request[Any, Any, Any], kind: str) -> Response[str]:
    svc = services(request)
    who = principal(request)
    fields = await read_form(request)
    ref = await anyio.to_thread.run_sync(reference, svc)
    try:
        signal = intake_signal(fields, kind, who, ref, svc.clock())
    except FormErrors as exc:
        return render(
            request,
            "_intake_result.html",
            status_code=422,
            errors=exc.errors,
            receipt=None,
            incident=None,
            visible=False,
            opened=False,
            new_key=None,
        )
    await keep_own_joins(svc, [signal], who)
    try:
        (receipt,) = await svc.writer.submit_signals([signal], actor=actor_of(request))
    except IdempotencyKeyReused:
        # The same form sent again after a change: it was stored the first time.
        first = await anyio.to_thread.run_sync(
            console_queries.first_receipt, svc.engine, signal.idempotency_key
        )
        if first is None:
            raise
        receipt = first
    incident = None
    if receipt.incident_id is not None:
        incident = await anyio.to_thread.run_sync(
            console_queries.get_incident, svc.engine, receipt.incident_id
        )
        await audit(
            request,
            AuditEvent(actor_of(request), Operation.CONSULT, "incident", str(receipt.incident_id)),
        )
    visible = incident is not None and shares_desk(who, incident["desks"])
    opened = bool(
        incident and incident["signals"] and incident["signals"][0]["id"] == receipt.signal_id
    )
    return render(
        request,
        "_intake_result.html",
        errors={},
        receipt=receipt,
        incident=incident,
        visible=visible,
        opened=opened,
        new_key=secrets.token_urlsafe(16),
    )


@post("/calls", opt=needs(Permission.CALL_CREATE), include_in_schema=False, status_code=200)
async def submit_call(request: Request[Any, Any, Any]) -> Response[str]:
    return await _submit_form(request, "call")


@post("/reports", opt=needs(Permission.DUTY_REPORT), include_in_schema=False, status_code=200)
async def submit_report(request: Request[Any, Any, Any]) -> Response[str]:
    return await _submit_form(request, "duty")


ROUTES: Final = [call_form, report_form, submit_call, submit_report]
