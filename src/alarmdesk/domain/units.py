"""Response units (engines, medics, patrols…) and desks (who sees what)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.geo import Area
from alarmdesk.domain.signal import SourceKind


class UnitStatus(enum.StrEnum):
    AVAILABLE = "available"  # in service, free
    DISPATCHED = "dispatched"  # assigned to an incident, not moving yet
    EN_ROUTE = "en_route"  # on its way to the incident
    ON_SCENE = "on_scene"  # at an incident
    RETURNING = "returning"  # cleared from the incident, back to station (may be sent again)
    OUT_OF_SERVICE = "out_of_service"  # not to be dispatched


# Which statuses a unit may report from each (a crew's status buttons, an AVL feed). Going to
# an incident (dispatched) is the operator's dispatch, never a report.
UNIT_MOVES: dict[UnitStatus, frozenset[UnitStatus]] = {
    UnitStatus.AVAILABLE: frozenset({UnitStatus.OUT_OF_SERVICE}),
    UnitStatus.OUT_OF_SERVICE: frozenset({UnitStatus.AVAILABLE}),
    UnitStatus.DISPATCHED: frozenset(
        {UnitStatus.EN_ROUTE, UnitStatus.ON_SCENE, UnitStatus.AVAILABLE}
    ),
    UnitStatus.EN_ROUTE: frozenset({UnitStatus.ON_SCENE, UnitStatus.AVAILABLE}),
    UnitStatus.ON_SCENE: frozenset({UnitStatus.RETURNING, UnitStatus.AVAILABLE}),
    UnitStatus.RETURNING: frozenset({UnitStatus.AVAILABLE, UnitStatus.OUT_OF_SERVICE}),
}
# Free to be sent: available, or returning from an incident.
DISPATCHABLE = frozenset({UnitStatus.AVAILABLE, UnitStatus.RETURNING})


@dataclass(slots=True)
class Unit:
    id: str
    kind: str
    station: str | None = None
    capabilities: tuple[str, ...] = ()
    status: UnitStatus = UnitStatus.AVAILABLE
    incident_id: int | None = None
    lat: float | None = None
    lon: float | None = None
    status_at: datetime | None = None  # since when it has its status


@dataclass(frozen=True, slots=True)
class Desk:
    """A desk sees incidents of its categories (and source kinds) inside its jurisdiction.

    ``categories`` and ``source_kinds`` empty mean all; ``area`` None means everywhere.
    """

    id: str
    name: str
    categories: frozenset[HarmCategory] = frozenset()
    source_kinds: frozenset[SourceKind] = frozenset()
    area: Area | None = field(default=None, compare=False)
