"""What the pipeline's steps give back: a result of the events and what they touched, and the
event of an incident as it is now."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from alarmdesk.domain.events import EventType, IncidentEvent
from alarmdesk.domain.incident import Incident, incident_dict
from alarmdesk.domain.units import Unit

MAX_NOTE = 4000  # characters of a note, and of a note or reason kept in an event


@dataclass(slots=True)
class PipelineResult:
    """What one signal or command did: the events, and every incident and unit it touched."""

    events: list[IncidentEvent] = field(default_factory=list)
    incidents: dict[int, Incident] = field(default_factory=dict)
    units: dict[str, Unit] = field(default_factory=dict)
    incident_id: int | None = None  # None: the signal is recorded, no incident
    silenced_by: int | None = None  # the silence that held the signal back
    # Incidents a signal changed beyond a repeat's counters (a confirmation): stored whole.
    rewrite: set[int] = field(default_factory=set)


def incident_event(
    type_: EventType, inc: Incident, at: datetime, actor: str, detail: dict[str, object]
) -> IncidentEvent:
    """An event of ``inc`` as it is now: heard by its desks, with its snapshot."""
    return IncidentEvent(
        type=type_,
        incident_id=inc.id,
        at=at,
        actor=actor,
        detail=detail,
        desks=inc.desks,
        snapshot=incident_dict(inc),
    )
