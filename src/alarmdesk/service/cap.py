"""CAP 1.2 in and out (docs/cap.md).

In: :func:`receive` turns one CAP document into a ``feed`` signal (``intake/cap_feeds.prepare``)
and stores it through the writer: durable before the caller hears 202, idempotent by the
alert's sender, identifier and sent.

Out: :func:`publish` is an action (``Writer.run``): it screens the warning's texts, writes the
alert (valid against the OASIS schema), stores it and leaves a disclosure entry in the audit
log, all in one transaction. :func:`document` and :func:`feed_entries` read what was
published.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

import msgspec
import sqlalchemy as sa

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import AlarmdeskError, Forbidden, InvalidField, NotFound
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.signal import NOT_BLANK, Receipt, SignalIn, check_text
from alarmdesk.intake.cap import CapMapping, Category, OutAlert, OutInfo, build_alert, cap_time
from alarmdesk.intake.cap_feeds import prepare
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation, Outcome
from alarmdesk.service.actions import Action
from alarmdesk.store import cap as store
from alarmdesk.store import repository as repo

__all__ = [
    "DEFAULT_CATEGORY",
    "PublishSpec",
    "Published",
    "alerts_of_incident",
    "document",
    "feed_entries",
    "publish",
    "receive",
]


class _Writer(Protocol):
    async def submit_signals(
        self, signals: Sequence[SignalIn], actor: Actor | None = None
    ) -> list[Receipt]: ...


async def receive(
    engine: sa.Engine,
    writer: _Writer,
    body: bytes,
    mapping: CapMapping,
    now: datetime,
    *,
    languages: Sequence[str] = (),
    actor: Actor | None = None,
) -> Receipt:
    """Stores one CAP alert as a signal; its receipt once committed.

    Raises:
        InvalidCap, ProtectedPurposeError, InvalidField: refused, nothing stored.
        IdempotencyKeyReused: the same sender, identifier and sent came with other content.
    """
    signal = await asyncio.to_thread(prepare, engine, body, mapping, now, languages)
    (receipt,) = await writer.submit_signals([signal], actor=actor)
    return receipt


# -- publishing ---------------------------------------------------------------------------------

# The CAP category of a warning when the operator names none.
DEFAULT_CATEGORY: dict[HarmCategory, str] = {
    HarmCategory.FIRE: "Fire",
    HarmCategory.MEDICAL: "Health",
    HarmCategory.VIOLENCE: "Safety",
    HarmCategory.PROPERTY: "Safety",
    HarmCategory.TRAFFIC: "Transport",
    HarmCategory.HAZARD: "Safety",
    HarmCategory.RESCUE: "Rescue",
    HarmCategory.EQUIPMENT: "Infra",
    HarmCategory.PUBLIC_SERVICE: "Other",
    HarmCategory.OTHER_HARM: "Other",
}

Line = Annotated[str, msgspec.Meta(max_length=200)]


class PublishSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A public warning to publish from an incident (one CAP info block, one area).

    ``references``: for an Update or Cancel, the identifier of an alert published before
    from the same incident; the new alert references it (sender, identifier, sent).
    The area is a circle of ``radius_km`` around the incident's location (when it has one),
    described by ``area_desc`` (default: the incident's address).
    """

    headline: Annotated[str, msgspec.Meta(min_length=1, max_length=160, pattern=NOT_BLANK)]
    event: Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NOT_BLANK)]
    msg_type: Literal["Alert", "Update", "Cancel"] = "Alert"
    references: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    status: Literal["Actual", "Exercise", "Test"] = "Actual"
    category: Category | None = None
    urgency: Literal["Immediate", "Expected", "Future", "Past", "Unknown"] = "Immediate"
    severity: Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"] = "Severe"
    certainty: Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"] = "Observed"
    response_type: (
        Literal[
            "Shelter",
            "Evacuate",
            "Prepare",
            "Execute",
            "Avoid",
            "Monitor",
            "Assess",
            "AllClear",
            "None",
        ]
        | None
    ) = None
    description: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    instruction: Annotated[str, msgspec.Meta(max_length=1000)] = ""
    area_desc: Line = ""
    radius_km: Annotated[float, msgspec.Meta(ge=0, le=100)] = 1.0
    expires_minutes: Annotated[int, msgspec.Meta(ge=1, le=10080)] | None = 240


class Published(msgspec.Struct, frozen=True):
    identifier: str
    incident_id: int
    msg_type: str
    status: str
    sent: str
    references: str | None
    headline: str


def _checked_texts(spec: PublishSpec) -> None:
    """Control characters refused; purpose and special-category terms screened."""
    for name in ("headline", "event", "area_desc", "references"):
        value = getattr(spec, name)
        if value:
            check_text(value, name)
    for name in ("description", "instruction"):
        check_text(getattr(spec, name), name, multiline=True)
    if spec.references is not None and any(ch in spec.references for ch in " ,<&"):
        raise InvalidField("references is one alert identifier", field="references")
    screen(
        {
            "headline": spec.headline,
            "event": spec.event,
            "description": spec.description,
            "instruction": spec.instruction,
            "area_desc": spec.area_desc,
        }
    )


def publish(
    actor: Actor,
    incident_id: int,
    spec: PublishSpec,
    *,
    sender: str,
    sender_name: str,
    language: str,
    desks: frozenset[str] | None = None,
) -> Action:
    """Publishes a public warning from an incident as CAP 1.2 (``desks``: the publisher's;
    None: every desk). The audit entry is a disclosure to the public, naming the alert."""

    def run(conn: sa.Connection, now: datetime) -> Published:
        inc = repo.get_incident(conn, incident_id)
        if inc is None:
            raise NotFound(f"incident {incident_id} does not exist", field="incident_id")
        if desks is not None and desks.isdisjoint(inc["desks"]):
            raise Forbidden(
                f"incident {incident_id} is not routed to your desks", field="incident_id"
            )
        _checked_texts(spec)
        refs: tuple[tuple[str, str, datetime], ...] = ()
        if spec.msg_type == "Alert":
            if spec.references is not None:
                raise InvalidField("an Alert references nothing", field="references")
        else:
            if spec.references is None:
                raise InvalidField(
                    f"an {spec.msg_type} names the alert it updates or cancels",
                    field="references",
                    code="missing_field",
                )
            earlier = store.get_alert(conn, spec.references)
            if earlier is None or earlier["incident_id"] != incident_id:
                raise NotFound(
                    f"no alert {spec.references} was published from incident {incident_id}",
                    field="references",
                )
            refs = ((sender, earlier["identifier"], earlier["sent"]),)
        sent = now.replace(microsecond=0)
        loc = inc.get("location") or {}
        circle = None
        if loc.get("lat") is not None and loc.get("lon") is not None:
            circle = (float(loc["lat"]), float(loc["lon"]), spec.radius_km)
        category = spec.category or DEFAULT_CATEGORY.get(HarmCategory(inc["category"]), "Other")
        identifier = f"alarmdesk-{uuid.uuid4().hex}"
        alert = OutAlert(
            identifier=identifier,
            sender=sender,
            sent=sent,
            status=spec.status,
            msg_type=spec.msg_type,
            references=refs,
            info=OutInfo(
                category=category,
                event=spec.event,
                urgency=spec.urgency,
                severity=spec.severity,
                certainty=spec.certainty,
                headline=spec.headline,
                description=spec.description,
                instruction=spec.instruction,
                area_desc=spec.area_desc or str(loc.get("address") or ""),
                circle=circle,
                language=language,
                sender_name=sender_name,
                expires=(
                    sent + timedelta(minutes=spec.expires_minutes) if spec.expires_minutes else None
                ),
                response_type=spec.response_type or "",
            ),
        )
        body = build_alert(alert)
        ref_text = " ".join(f"{s},{i},{cap_time(t)}" for s, i, t in refs) or None
        store.insert_alert(
            conn,
            identifier=identifier,
            incident_id=incident_id,
            msg_type=spec.msg_type,
            status=spec.status,
            sent=sent,
            refs=ref_text,
            headline=spec.headline,
            document=body,
            published_by=actor.id,
        )
        return Published(
            identifier=identifier,
            incident_id=incident_id,
            msg_type=spec.msg_type,
            status=spec.status,
            sent=cap_time(sent),
            references=ref_text,
            headline=spec.headline,
        )

    def audit_of(result: Published | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        detail: dict[str, Any] = {
            "format": "cap-1.2",
            "recipient": "public",
            "msg_type": spec.msg_type,
            "status": spec.status,
        }
        if result is not None:
            detail["identifier"] = result.identifier
        if spec.references:
            detail["references"] = spec.references
        return [
            AuditEvent(
                actor,
                Operation.DISCLOSE,
                "incident",
                str(incident_id),
                outcome=Outcome.DENIED if error is not None else Outcome.ALLOWED,
                rule=error.code if error is not None else "cap.publish",
                detail=detail,
            )
        ]

    return Action(run, audit_of)


def _published(row: dict[str, Any]) -> Published:
    return Published(
        identifier=row["identifier"],
        incident_id=int(row["incident_id"]),
        msg_type=row["msg_type"],
        status=row["status"],
        sent=cap_time(row["sent"]),
        references=row["refs"],
        headline=row["headline"],
    )


def document(engine: sa.Engine, identifier: str) -> bytes | None:
    """A published alert as it was served when published, or None."""
    with engine.connect() as conn:
        row = store.get_alert(conn, identifier)
    return None if row is None else str(row["document"]).encode("utf-8")


def feed_entries(engine: sa.Engine, limit: int = 100) -> list[Published]:
    """The alerts published last, newest first."""
    with engine.connect() as conn:
        return [_published(r) for r in store.latest_alerts(conn, limit)]


def alerts_of_incident(engine: sa.Engine, incident_id: int) -> list[Published]:
    with engine.connect() as conn:
        return [_published(r) for r in store.alerts_of_incident(conn, incident_id)]
