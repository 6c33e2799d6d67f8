"""Routing by the desks' own filters: which desks see an incident when no routing tree is set.

With routing rules in the centre's set-up, :func:`alarmdesk.domain.routing.evaluate` decides
instead, and the desks' filters only describe them.

The one who publishes chooses the recipients (here), the access policy checks them when a
session subscribes. An incident no desk claims goes to the fallback desk: an alarm that
nobody sees is the one failure a control room cannot have.
"""

from __future__ import annotations

from collections.abc import Sequence

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.signal import Location, SourceKind
from alarmdesk.domain.units import Desk

DESK_FILTERS = "desks"  # what an incident routed by the desks' filters records as its rule


def route(
    desks: Sequence[Desk],
    category: HarmCategory,
    source_kind: SourceKind,
    location: Location | None,
    fallback: str,
) -> tuple[str, ...]:
    chosen: list[str] = []
    point = location is not None and location.lat is not None and location.lon is not None
    for desk in desks:
        if desk.categories and category not in desk.categories:
            continue
        if desk.source_kinds and source_kind not in desk.source_kinds:
            continue
        # Without a point the jurisdiction cannot be decided: every desk of the category
        # sees it rather than none.
        if desk.area is not None and point:
            assert location is not None and location.lat is not None and location.lon is not None
            if not desk.area.contains(location.lat, location.lon):
                continue
        chosen.append(desk.id)
    return tuple(chosen) if chosen else (fallback,)
