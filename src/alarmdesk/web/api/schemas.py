"""The API's bodies as typed structs: what the OpenAPI document shows, and what the routes
answer (``msgspec.convert`` into these before answering, so the document cannot drift from
the answers).

The request bodies of the routes that read their bytes themselves (signals, commands, sign-in,
type proposals) are documented with :func:`body`: a dependency no route asks for, whose
``data`` parameter names the struct. Litestar documents it and never resolves it, so those
routes keep their one-pass msgspec decoding and their error codes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

import msgspec
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec

from alarmdesk.domain.centre import (
    CameraSpec,
    DeskSpec,
    PanelSpec,
    SensorSpec,
    StationSpec,
    UnitSpec,
)

__all__ = [
    "AUTH",
    "SETUP_STRUCTS",
    "CapAlertOut",
    "DeskOut",
    "ErrorBody",
    "ErrorDetail",
    "HealthOut",
    "IncidentDetail",
    "IncidentOut",
    "IncidentPage",
    "IncidentTypeOut",
    "MediaList",
    "MediaOut",
    "PubkeyOut",
    "ReadyOut",
    "ReceiptOut",
    "Receipts",
    "SessionOut",
    "SetupItemResult",
    "SignedOut",
    "UnitOut",
    "UserOut",
    "WhoAmI",
    "body",
    "errors",
    "responses",
]


# A time as the API writes it: ISO 8601 with its offset (``2026-11-25T10:00:00+00:00``).
Timestamp = Annotated[str, msgspec.Meta(extra_json_schema={"extra": {"format": "date-time"}})]


# -- errors -------------------------------------------------------------------------------------


class ErrorDetail(msgspec.Struct):
    code: str  # stable machine code: invalid_value, missing_field, not_found, ...
    message: str  # for people
    field: str | None  # the field, parameter or header at fault, by its public name


class ErrorBody(msgspec.Struct):
    """Every failure's body (``web/errors.py``)."""

    error: ErrorDetail


_WHY: Final = {
    400: "Malformed JSON (malformed_json), or a justification is required (justification_required)",
    401: "No valid credentials (unauthenticated)",
    403: "The role may not do this, the incident is not routed to the caller's desks, or the "
    "CSRF token is missing (forbidden, csrf_failed)",
    404: "No such resource (not_found)",
    408: "The request's body did not arrive in time (request_timeout)",
    409: "Conflicts with the current state (invalid_transition, version_conflict, "
    "unit_unavailable, idempotency_key_reused, setup_invalid, conflict)",
    413: "The body is larger than the route accepts (payload_too_large)",
    415: "The body is not of a media type the route reads (unsupported_media_type)",
    422: "A field or parameter has a missing, wrong-typed or refused value (missing_field, "
    "wrong_type, unknown_field, invalid_value, ...)",
    410: "Past its retention period, or erased by the retention job (media_expired)",
    502: "Frigate did not answer, or answered with an error or too much (frigate_unavailable, "
    "frigate_error, media_too_large)",
    429: "Too many failed sign-ins (too_many_attempts; see Retry-After)",
    503: "The writer is not running (unavailable)",
}

AUTH: Final = (401, 403)  # every route that needs credentials


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses a route can give, each with the one error body. 400 is always
    listed: Litestar lists it for every route with parameters, with a body we never send."""
    return {s: ResponseSpec(ErrorBody, description=_WHY[s]) for s in sorted({400, *statuses})}


def responses(
    ok: int, data: Any, *statuses: int, description: str = "Success", media_type: str | None = None
) -> dict[int, ResponseSpec]:
    """A route's success response and its error responses."""
    spec = (
        ResponseSpec(data, description=description, media_type=media_type)
        if media_type
        else ResponseSpec(data, description=description)
    )
    return {ok: spec, **errors(*statuses)}


def body(struct: type[msgspec.Struct]) -> dict[str, Provide]:
    """Documents ``struct`` as the request body of a route that decodes its bytes itself."""

    def documents(data: Any) -> None:  # never called: no route asks for it
        raise AssertionError("a body-documenting dependency was resolved")

    documents.__annotations__ = {"data": struct, "return": None}
    provider: Callable[..., None] = documents
    return {"_request_body": Provide(provider, sync_to_thread=False)}


# -- CAP 1.2 -------------------------------------------------------------------------------------


class CapAlertOut(msgspec.Struct):
    """A public warning as published (docs/cap.md)."""

    identifier: str  # served at /api/v1/cap/alerts/{identifier}.xml
    incident_id: int
    msg_type: Literal["Alert", "Update", "Cancel"]
    status: Literal["Actual", "Exercise", "Test"]
    sent: Timestamp  # as in the alert: a numeric offset, never "Z"
    references: str | None  # sender,identifier,sent of the alert it updates or cancels
    headline: str


# -- signals --------------------------------------------------------------------------------------


class ReceiptOut(msgspec.Struct):
    """A stored signal's receipt; a resend with its key gets the same one."""

    signal_id: int
    incident_id: int | None
    idempotency_key: str
    received_at: Timestamp


class Receipts(msgspec.Struct):
    receipts: list[ReceiptOut]


# -- incidents ------------------------------------------------------------------------------------


class LocationOut(msgspec.Struct, omit_defaults=True):
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    zone: str | None = None
    site: str | None = None


class VerificationOut(msgspec.Struct):
    verdict: Literal["verified", "false"]  # what the operator saw on the camera images
    by: str
    at: Timestamp


class MediaOut(msgspec.Struct):
    n: int  # GET /api/v1/incidents/{id}/media/{n}
    kind: Literal["snapshot", "clip"]
    signal_id: int
    camera: str  # the camera's name in Frigate
    origin: Literal["event", "zone"]  # the camera's own alarm, or a panel zone's camera
    at: Timestamp  # the moment shown
    expires_at: Timestamp  # the end of the media retention class for its signal
    available: bool
    content_type: str
    url: str | None  # None once expired


class MediaList(msgspec.Struct):
    enabled: bool  # a Frigate is configured
    items: list[MediaOut]


class IncidentOut(msgspec.Struct):
    id: int
    type_code: str
    category: str
    priority: int
    status: str  # new, acknowledged, dispatched, on_scene, resolved, closed, cancelled
    condition: str  # active, restored
    source_kind: str
    source_id: str
    location: LocationOut | None
    summary: str
    desks: list[str]
    units: list[str]
    signal_count: int
    disposition: str | None
    version: int
    first_seen: Timestamp | None
    last_seen: Timestamp | None
    opened_at: Timestamp | None
    acknowledged_at: Timestamp | None
    dispatched_at: Timestamp | None
    on_scene_at: Timestamp | None
    resolved_at: Timestamp | None
    closed_at: Timestamp | None
    cancelled_at: Timestamp | None
    routed_by: list[str] = msgspec.field(default_factory=list)  # the routing rules that chose
    escalation: EscalationOut | None = None
    procedure: list[ProcedureStepOut] = msgspec.field(default_factory=list)
    confirmed: bool = False  # confirmed by another zone of its panel, or by video
    en_route_at: Timestamp | None = None  # the first unit reported en route
    verification: VerificationOut | None = None  # the latest video verdict


class NearbyOut(IncidentOut, kw_only=True):
    distance_m: int  # from the point asked about


class SilenceOut(msgspec.Struct, kw_only=True):
    id: int
    state: str  # active, pending, expired, ended
    match: dict[str, Any]
    reason: str
    weekly: list[dict[str, Any]] = msgspec.field(default_factory=list)
    author: str
    created_at: Timestamp
    starts_at: Timestamp
    ends_at: Timestamp | None
    ended_at: Timestamp | None
    ended_by: str | None
    signals: int  # held back so far


class WebhookOut(msgspec.Struct, kw_only=True):
    """A subscription; its secret is never shown after creation."""

    id: int
    url: str
    events: list[str]
    desks: list[str]  # empty: every desk
    description: str
    created_by: str
    created_at: Timestamp
    removed_at: Timestamp | None
    cursor: int  # the last event id handled (delivered, given up on, or not wanted)
    failed_events: int  # events given up on after every attempt failed


class WebhookCreatedOut(WebhookOut, kw_only=True):
    secret: str  # shown this once: give it to the receiver to verify signatures


class DeliveryOut(msgspec.Struct, kw_only=True):
    id: int
    webhook_id: int
    event_id: int
    incident_id: int
    attempt: int
    at: Timestamp
    outcome: str  # delivered, retry, failed
    status: int | None  # the receiver's HTTP status, when it answered
    error: str | None
    duration_ms: int


class SetupChange(msgspec.Struct):
    kind: str
    id: str
    fields: list[str] = msgspec.field(default_factory=list)  # a change: the fields that differ


class SetupPlanOut(msgspec.Struct):
    """What an apply changes, per kind; never a secret (a changed key is named, not shown)."""

    counts: dict[str, dict[str, int]]
    added: list[SetupChange]
    changed: list[SetupChange]
    removed: list[SetupChange]


class SetupItemResult(msgspec.Struct):
    """What a change of one set-up item did, and the set-up's revision after it (its ETag)."""

    revision: int
    changes: SetupPlanOut


def _setup_structs(kind: str, spec: type[Any]) -> tuple[type[Any], type[Any], type[Any]]:
    """An item of ``kind`` as listed (its id, the spec, what the running centre holds of it),
    the list with the set-up's revision, and one item with the revision."""
    name = {"desks": "Desk", "stations": "Station", "units": "Unit", "panels": "Panel"}.get(
        kind, kind[:-1].capitalize()
    )
    fields: list[tuple[str, Any]] = [("id", str)]
    if kind == "panels":
        fields.append(("key_set", bool))  # the key itself is write-only: never answered
    if kind == "units":
        fields.append(("status", str | None))
    if kind not in ("stations",):
        fields.append(("open_incidents", int))  # a unit: 1 while committed to an incident
    fields.append(("item", spec))  # PUT it back as is: "<redacted>" keeps the stored key
    entry = msgspec.defstruct(f"Setup{name}Entry", fields, kw_only=True)
    listing = msgspec.defstruct(
        f"Setup{name}List",
        [("revision", int), ("items", list[entry])],  # type: ignore[valid-type]
        kw_only=True,
    )
    one = msgspec.defstruct(f"Setup{name}Out", [("revision", int), *fields], kw_only=True)
    return entry, listing, one


SETUP_STRUCTS: Final = {
    kind: _setup_structs(kind, spec)
    for kind, spec in (
        ("desks", DeskSpec),
        ("stations", StationSpec),
        ("units", UnitSpec),
        ("panels", PanelSpec),
        ("cameras", CameraSpec),
        ("sensors", SensorSpec),
    )
}


class NeedOut(msgspec.Struct):
    kind: str | None
    capability: str | None
    count: int
    label: str


class PickOut(msgspec.Struct):
    unit_id: str
    kind: str
    need: str  # the label of the need it fills
    distance_m: int | None  # estimated road distance
    eta_s: int | None  # estimated travel time; None: the unit's position is unknown


class ShortOut(msgspec.Struct):
    need: str
    missing: int


class RecommendationOut(msgspec.Struct):
    """Units to send: each need (response plan or procedure) filled with the fitting
    available unit that can be there first; what no available unit fits is short."""

    incident_id: int
    needs: list[NeedOut]
    units: list[PickOut]
    short: list[ShortOut]


class EscalationOut(msgspec.Struct):
    """The escalation policy frozen on the incident, and where it is in it."""

    policy: str
    step: int  # steps fired so far
    steps: int
    due_at: Timestamp | None  # when the next step fires, unless acknowledged first
    thresholds: list[int]  # seconds after opening at which each step falls due
    on_scene_by: Timestamp | None  # dispatched: when it is overdue without a unit on scene
    overdue: bool  # flagged: dispatched and no unit on scene in time


class ProcedureStepOut(msgspec.Struct):
    step: int
    text: str
    mandatory: bool  # resolve is refused (409 sop_incomplete) while a mandatory step is open
    done_by: str | None
    done_at: Timestamp | None


class IncidentPage(msgspec.Struct):
    items: list[IncidentOut]
    next_cursor: str | None  # pass it as ``cursor`` for the next page


class SilencedSignalOut(msgspec.Struct, kw_only=True):
    """A signal as the silenced view lists it (and the start of every signal)."""

    id: int
    source_kind: str
    source_id: str
    type_code: str
    occurred_at: Timestamp
    received_at: Timestamp
    location: dict[str, Any] | None
    summary: str


class SignalOut(SilencedSignalOut, kw_only=True):
    idempotency_key: str
    payload: dict[str, Any]
    condition: str | None
    record_only: bool


class TimelineEntry(msgspec.Struct):
    id: int
    type: str
    at: Timestamp
    actor: str
    detail: dict[str, Any] | None


class IncidentDetail(IncidentOut, kw_only=True):
    signals: list[SignalOut]
    timeline: list[TimelineEntry]


# -- reference ------------------------------------------------------------------------------------


class DeskOut(msgspec.Struct):
    id: str
    name: str
    categories: list[str]
    source_kinds: list[str]
    has_jurisdiction: bool


class UnitOut(msgspec.Struct):
    id: str
    kind: str
    station: str | None
    capabilities: list[str]
    status: str
    incident_id: int | None
    lat: float | None
    lon: float | None
    status_at: Timestamp | None = None  # since when it has its status


class UnitReportIn(msgspec.Struct, forbid_unknown_fields=True):
    """A unit's status and/or position (its crew's status buttons, an AVL feed)."""

    status: Literal["available", "en_route", "on_scene", "returning", "out_of_service"] | None = (
        None
    )
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None


class Approval(msgspec.Struct):
    approver: str
    role: str
    at: Timestamp


class IncidentTypeOut(msgspec.Struct, omit_defaults=True):
    """A type in force; custom types listed with ``custom=true`` also carry ``status``,
    ``author`` and ``approvals``."""

    code: str
    name: str
    category: str
    priority: int
    definition: str = ""
    sop: list[str] = msgspec.field(default_factory=list)
    origin: str = "apco"
    purpose: str = ""
    legal_basis: str = ""
    status: str | None = None  # pending, active
    author: str | None = None
    approvals: list[Approval] | None = None


class HealthOut(msgspec.Struct):
    status: str  # ok, degraded; standby (distributed mode: waiting for the writer lease)
    writer: bool


class ReadyOut(msgspec.Struct):
    """Readiness: whether this node can take and store signals now."""

    status: str  # ready, not_ready; degraded (distributed mode: intake queued, no database)
    writer: bool  # the writer thread runs
    store: bool  # the database answers
    bus: bool  # the live stream's hub runs (in this process on one machine)
    backlog: int  # requests waiting for the writer
    backlog_limit: int  # above it, not ready
    # distributed mode: connected to NATS and the intake stream answers (null on one machine)
    intake_log: bool | None = None
    # distributed mode: writer (holds the writer lease) or standby (queues intake only)
    role: str | None = None


# -- sessions and the audit log -------------------------------------------------------------------


class UserOut(msgspec.Struct):
    id: str
    name: str
    role: str
    desks: list[str]


class SessionOut(msgspec.Struct):
    user: UserOut
    csrf_token: str  # send it as X-CSRF-Token on every change made with the session


class WhoAmI(msgspec.Struct):
    user: UserOut


class SignedOut(msgspec.Struct):
    signed_out: bool


class PubkeyOut(msgspec.Struct):
    vkey: str  # the Ed25519 key that verifies the log's checkpoints
    origin: str  # the log's name in its checkpoints
