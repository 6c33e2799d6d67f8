"""Events: what happened (past tense). One event is one timeline entry of an incident and
one message on the live stream; the store keeps them in one table for both."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec


class EventType(enum.StrEnum):
    OPENED = "incident.opened"  # a signal opened a new incident
    UPDATED = "incident.updated"  # a repeat signal folded into it
    TRANSITIONED = "incident.transitioned"  # its status changed
    UNITS_ASSIGNED = "incident.units_assigned"  # more units sent without a status change
    NOTED = "incident.noted"  # an operator added a note
    STEP_DONE = "incident.step_done"  # a procedure step was ticked
    UNIT_STATUS = "incident.unit_status"  # a unit on it reported en route, returning, clear
    RECLASSIFIED = "incident.reclassified"  # its type (and so priority, desks) changed
    VERIFIED = "incident.verified"  # an operator gave a video verdict (verified or false)
    ESCALATED = "incident.escalated"  # nobody acknowledged it, or no unit reached the scene


@dataclass(slots=True)
class IncidentEvent:
    type: EventType
    incident_id: int
    at: datetime
    actor: str
    detail: dict[str, Any]
    desks: tuple[str, ...]  # who must hear of it: the incident's desks (old and new)
    id: int = 0  # set by the writer, monotonic
    snapshot: dict[str, Any] = field(default_factory=dict)  # the incident after the event
    # the snapshot as JSON, once encoded, with the dict it was encoded from
    _encoded: tuple[dict[str, Any], msgspec.Raw] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def snapshot_json(self) -> msgspec.Raw:
        """The snapshot encoded as JSON, once: the events row and the live stream's frame
        carry the same text, and encoding it was a tenth of the writer's work per event.
        A snapshot replaced after encoding is encoded anew."""
        done = self._encoded
        if done is None or done[0] is not self.snapshot:
            done = self._encoded = (self.snapshot, msgspec.Raw(_encode(self.snapshot)))
        return done[1]


_encode = msgspec.json.Encoder().encode
