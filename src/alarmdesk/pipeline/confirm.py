"""Confirmation of alarms (BS 8243): sequential, by another zone of the panel within the
confirmation time; and by video, an operator's verdict on the camera images.

:class:`Intrusions` knows the open intruder alarm of each panel; :func:`fold` takes a signal of
another zone into it and says whether it confirmed it; :func:`confirm` is what either kind of
confirmation does to the incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.incident import Incident
from alarmdesk.domain.signal import Signal, SourceKind
from alarmdesk.domain.taxonomy import IncidentType

__all__ = ["Intrusions", "confirm", "fold"]


def _intrusion(kind: SourceKind, category: HarmCategory) -> bool:
    return kind is SourceKind.EQUIPMENT and category is HarmCategory.PROPERTY


class Intrusions:
    def __init__(self) -> None:
        self._by_panel: dict[str, int] = {}  # source id -> its open intruder alarm

    def track(self, inc: Incident) -> None:
        if _intrusion(inc.source_kind, inc.category) and inc.is_open:
            self._by_panel[inc.source_id] = inc.id

    def of(
        self, signal: Signal, t: IncidentType, incidents: Mapping[int, Incident]
    ) -> Incident | None:
        """The open intruder alarm of the panel this intruder signal comes from, if any."""
        if not _intrusion(signal.source_kind, t.category):
            return None
        inc_id = self._by_panel.get(signal.source_id)
        inc = incidents.get(inc_id) if inc_id is not None else None
        if inc is None or not inc.is_open or inc.category is not HarmCategory.PROPERTY:
            return None
        return inc


def fold(inc: Incident, signal: Signal, confirmation: timedelta) -> tuple[dict[str, object], bool]:
    """Takes the signal of a zone into its panel's intruder alarm; another zone within
    ``confirmation`` of the first confirms it and raises its priority. Returns the event's
    detail, and whether it confirmed the alarm."""
    inc.signal_count += 1
    zone = signal.location.zone if signal.location is not None else None
    detail: dict[str, object] = {
        "signal_id": signal.id,
        "type_code": signal.type_code,
        "zone": zone,
    }
    first = inc.location.zone if inc.location is not None else None
    within = signal.occurred_at - inc.first_seen <= confirmation
    confirmed = not inc.confirmed and zone is not None and zone != first and within
    if confirmed:
        detail["confirmed_by"] = zone
        detail.update(confirm(inc) or {})
    inc.version += 1
    return detail, confirmed


def confirm(inc: Incident) -> dict[str, object] | None:
    """Marks the alarm confirmed; a confirmed alarm is one step more urgent, once. Returns the
    event detail of the change (the priority's), or ``None`` when it was confirmed already."""
    if inc.confirmed:
        return None
    inc.confirmed = True
    detail: dict[str, object] = {}
    if inc.priority > 1:
        detail["priority"] = {"from": inc.priority, "to": inc.priority - 1}
        inc.priority -= 1
    return detail
