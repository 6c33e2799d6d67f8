"""Incidents and their state machine.

``new → acknowledged → dispatched → on_scene → resolved → closed``, and ``cancelled`` from
any open status. Every allowed move is in :data:`RULES`, the one place transitions are
checked; every transition stamps its time, and those times are the centre's KPIs.
Device condition (``active``/``restored``) is a second axis: panels report restores on
their own, independently of what the operators do.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import msgspec

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.correlation import CorrelationKey
from alarmdesk.domain.errors import InvalidField, InvalidTransition
from alarmdesk.domain.escalation import EscalationState
from alarmdesk.domain.procedure import Procedure
from alarmdesk.domain.signal import Location, SourceKind


class Status(enum.StrEnum):
    NEW = "new"  # opened by a signal, nobody has taken it yet
    ACKNOWLEDGED = "acknowledged"  # an operator has taken it
    DISPATCHED = "dispatched"  # one or more units are assigned and on their way
    ON_SCENE = "on_scene"  # a unit has arrived
    RESOLVED = "resolved"  # handled, with a disposition; awaits closing (paperwork)
    CLOSED = "closed"  # final
    CANCELLED = "cancelled"  # final: false alarm, duplicate or merged before resolution


OPEN = frozenset({Status.NEW, Status.ACKNOWLEDGED, Status.DISPATCHED, Status.ON_SCENE})
FINAL = frozenset({Status.CLOSED, Status.CANCELLED})


class Condition(enum.StrEnum):
    ACTIVE = "active"  # the device still reports the alarm
    RESTORED = "restored"  # the device reported a restore


class Disposition(enum.StrEnum):
    HANDLED = "handled"
    FALSE_ALARM = "false_alarm"
    NO_ACTION_NEEDED = "no_action_needed"
    REFERRED = "referred"
    DUPLICATE = "duplicate"


class Verdict(enum.StrEnum):
    """What an operator saw on the camera images of an alarm (video verification)."""

    VERIFIED = "verified"  # the images show what the alarm says: video-confirmed (BS 8243)
    FALSE = "false"  # the images show no cause: a false alarm


class CancelReason(enum.StrEnum):
    FALSE_ALARM = "false_alarm"
    DUPLICATE = "duplicate"
    MERGED = "merged"


class Action(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    DISPATCH = "dispatch"
    ARRIVE = "arrive"
    NOTE = "note"
    STEP = "step"  # a procedure step ticked
    RECLASSIFY = "reclassify"
    RESOLVE = "resolve"
    CLOSE = "close"
    CANCEL = "cancel"
    VERIFY = "verify"  # a video verdict: verified or false


# action → (statuses it is allowed from, status it leads to; None keeps the status).
RULES: dict[Action, tuple[frozenset[Status], Status | None]] = {
    Action.ACKNOWLEDGE: (frozenset({Status.NEW}), Status.ACKNOWLEDGED),
    # Dispatching from NEW acknowledges implicitly; more units may be sent later.
    Action.DISPATCH: (OPEN, Status.DISPATCHED),
    Action.ARRIVE: (frozenset({Status.DISPATCHED, Status.ON_SCENE}), Status.ON_SCENE),
    Action.NOTE: (OPEN | {Status.RESOLVED}, None),
    Action.STEP: (OPEN, None),
    Action.RECLASSIFY: (OPEN, None),
    Action.RESOLVE: (OPEN, Status.RESOLVED),
    Action.CLOSE: (frozenset({Status.RESOLVED}), Status.CLOSED),
    Action.CANCEL: (OPEN, Status.CANCELLED),
    # A verdict may follow the images until the incident is closed (a late review counts).
    Action.VERIFY: (OPEN | {Status.RESOLVED}, None),
}

# Once an incident is on scene, sending more units does not move it back to dispatched.
_NEVER_BACK = {Status.ON_SCENE: {Status.DISPATCHED}}


def next_status(current: Status, action: Action) -> Status:
    """The status after ``action``, or InvalidTransition naming expected and actual status."""
    allowed, target = RULES[action]
    if current not in allowed:
        expected = ", ".join(sorted(s.value for s in allowed))
        raise InvalidTransition(
            f"cannot {action.value} an incident that is {current.value} (allowed when: {expected})",
            field="status",
        )
    if target is None or target in _NEVER_BACK.get(current, ()):
        return current
    return target


@dataclass(slots=True)
class Incident:
    """The aggregate the pipeline keeps in memory for every incident not yet final."""

    id: int
    type_code: str
    category: HarmCategory
    priority: int
    source_kind: SourceKind
    source_id: str
    opened_at: datetime
    first_seen: datetime
    last_seen: datetime
    location: Location | None = None
    summary: str = ""
    correlation_key: CorrelationKey | None = None
    status: Status = Status.NEW
    condition: Condition = Condition.ACTIVE
    desks: tuple[str, ...] = ()
    routed_by: tuple[str, ...] = ()  # the routing rules that chose the desks
    escalation: EscalationState | None = None  # the policy frozen on it when it opened
    procedure: Procedure | None = None  # its type's checklist, copied when it opened
    confirmed: bool = False  # confirmed: by a second zone (sequential) or by video
    # The latest video verdict: {"verdict": "verified" | "false", "by": actor, "at": ISO time}.
    verification: dict[str, str] | None = None
    en_route_at: datetime | None = None  # the first unit reported en route
    units: tuple[str, ...] = ()
    signal_count: int = 1
    acknowledged_at: datetime | None = None
    dispatched_at: datetime | None = None
    on_scene_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    cancelled_at: datetime | None = None
    disposition: str | None = None
    version: int = 1
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def move(self, action: Action, at: datetime) -> tuple[Status, Status]:
        """Applies the status change of ``action``, stamping every phase it passes.

        Returns (before, after). Raises InvalidTransition and changes nothing when the
        action is not allowed now.
        """
        before = self.status
        after = next_status(before, action)
        if after != before:
            self.status = after
            # A phase skipped (resolve straight from new) is stamped too, so response
            # times are never undefined for a handled incident.
            if after is not Status.CANCELLED and self.acknowledged_at is None:
                self.acknowledged_at = at
            if after is Status.DISPATCHED:
                self.dispatched_at = self.dispatched_at or at
            elif after is Status.ON_SCENE:
                self.on_scene_at = self.on_scene_at or at
            elif after is Status.RESOLVED:
                self.resolved_at = at
            elif after is Status.CLOSED:
                self.closed_at = at
            elif after is Status.CANCELLED:
                self.cancelled_at = at
        self.version += 1
        return before, after


def parse_disposition(value: str) -> Disposition:
    try:
        return Disposition(value)
    except ValueError:
        allowed = ", ".join(d.value for d in Disposition)
        raise InvalidField(
            f"unknown disposition {value!r}; one of: {allowed}",
            field="disposition",
            code="invalid_disposition",
        ) from None


def parse_verdict(value: str) -> Verdict:
    try:
        return Verdict(value)
    except ValueError:
        allowed = ", ".join(v.value for v in Verdict)
        raise InvalidField(
            f"unknown verdict {value!r}; one of: {allowed}",
            field="verdict",
            code="invalid_verdict",
        ) from None


def parse_cancel_reason(value: str) -> CancelReason:
    try:
        return CancelReason(value)
    except ValueError:
        allowed = ", ".join(r.value for r in CancelReason)
        raise InvalidField(
            f"unknown cancel reason {value!r}; one of: {allowed}",
            field="reason",
            code="invalid_reason",
        ) from None


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is UTC:  # every time the pipeline and the store hand out
        return _utc_iso(value)
    return value.isoformat()


@lru_cache(maxsize=4096)
def _utc_iso(value: datetime) -> str:
    """A UTC time as text, remembered: a snapshot is built per event, and the times in it
    (a batch's receipt time, an incident's opening) repeat from one event to the next while
    ``isoformat`` was a third of the cost of a snapshot. Only UTC times come here, so equal
    keys are equal fields and so equal text."""
    return value.isoformat()


def incident_dict(inc: Incident) -> dict[str, object]:
    """The incident as the API and the live stream show it (JSON-ready)."""
    loc = inc.location
    return {
        "id": inc.id,
        "type_code": inc.type_code,
        "category": inc.category.value,
        "priority": inc.priority,
        "status": inc.status.value,
        "condition": inc.condition.value,
        "source_kind": inc.source_kind.value,
        "source_id": inc.source_id,
        # the fields given (a Location omits its unset ones)
        "location": msgspec.to_builtins(loc) if loc is not None else None,
        "summary": inc.summary,
        "desks": list(inc.desks),
        "routed_by": list(inc.routed_by),
        "escalation": inc.escalation.view() if inc.escalation is not None else None,
        "procedure": inc.procedure.view() if inc.procedure is not None else [],
        "confirmed": inc.confirmed,
        "verification": dict(inc.verification) if inc.verification is not None else None,
        "en_route_at": _iso(inc.en_route_at),
        "units": list(inc.units),
        "signal_count": inc.signal_count,
        "disposition": inc.disposition,
        "version": inc.version,
        "first_seen": _iso(inc.first_seen),
        "last_seen": _iso(inc.last_seen),
        "opened_at": _iso(inc.opened_at),
        "acknowledged_at": _iso(inc.acknowledged_at),
        "dispatched_at": _iso(inc.dispatched_at),
        "on_scene_at": _iso(inc.on_scene_at),
        "resolved_at": _iso(inc.resolved_at),
        "closed_at": _iso(inc.closed_at),
        "cancelled_at": _iso(inc.cancelled_at),
    }
