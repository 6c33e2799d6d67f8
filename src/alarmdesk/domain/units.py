"""Response units (engines, medics, patrols…) and desks (who sees what)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.geo import Area
from alarmdesk.domain.signal import SourceKind


class UnitStatus(enum.StrEnum):
    AVAILABLE = "available"  # in service, free
    DISPATCHED = "dispatched"  # assigned to an incident, en route
    ON_SCENE = "on_scene"  # at an incident
    OUT_OF_SERVICE = "out_of_service"  # not to be dispatched


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
