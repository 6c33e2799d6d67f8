"""One call of a centre's history, its phases, and the intervals measured between them.

A call is what a CAD export describes: received at the centre, perhaps answered and entered,
then units dispatched, en route, on scene, transporting, cleared. A :class:`CallRecord` holds
the call's own facts and each responding unit's times (:class:`UnitResponse`); the call's time
of a unit phase is the *first* unit's (the earliest dispatch, the first unit en route, the
first on scene, the first transport) except ``cleared``, which is the *last* unit's: a call is
cleared when its last unit is free again.

An :class:`Interval` is the time between two phases. :func:`duration` measures it, and says
why it cannot (:class:`Gap`): a phase missing, or the end before the start (negative), or both
at the same second (zero). Gaps are left out of an interval's statistics and counted, by the
reader's data-quality report and by every KPI (``domain/kpi.py``).

All times are aware datetimes in UTC.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Final

import msgspec

from alarmdesk.domain.categories import HarmCategory

__all__ = [
    "CALL_PHASES",
    "INTERVAL_PHASES",
    "UNIT_PHASES",
    "CallRecord",
    "Gap",
    "Interval",
    "Phase",
    "UnitResponse",
    "duration",
    "phase_time",
]


class Phase(enum.StrEnum):
    RECEIVED = "received"  # the call or alarm reached the centre (the PSAP)
    ANSWERED = "answered"  # a call-taker answered it, or an operator acknowledged the alarm
    ENTERED = "entered"  # the call was entered into the CAD (an incident created)
    DISPATCHED = "dispatched"  # a unit was sent
    EN_ROUTE = "en_route"  # a unit reported it was on its way
    ON_SCENE = "on_scene"  # a unit arrived
    TRANSPORT = "transport"  # a unit began transporting a patient
    CLEARED = "cleared"  # the unit was free again (for the call: its last unit)


# The call's own phases, and the phases each unit goes through.
CALL_PHASES: Final = (Phase.RECEIVED, Phase.ANSWERED, Phase.ENTERED)
UNIT_PHASES: Final = (
    Phase.DISPATCHED,
    Phase.EN_ROUTE,
    Phase.ON_SCENE,
    Phase.TRANSPORT,
    Phase.CLEARED,
)


class Interval(enum.StrEnum):
    ANSWER = "answer"  # received → answered: time to answer (or acknowledge)
    CALL_TO_DISPATCH = "call_to_dispatch"  # received → first unit dispatched
    TURNOUT = "turnout"  # first unit dispatched → first unit en route
    TRAVEL = "travel"  # first unit en route → first unit on scene
    CALL_TO_ON_SCENE = "call_to_on_scene"  # received → first unit on scene
    ON_SCENE = "on_scene"  # first unit on scene → last unit cleared
    HANDLING = "handling"  # received → last unit cleared: total handling


# The one table of what each interval measures: (from phase, to phase).
INTERVAL_PHASES: Final[dict[Interval, tuple[Phase, Phase]]] = {
    Interval.ANSWER: (Phase.RECEIVED, Phase.ANSWERED),
    Interval.CALL_TO_DISPATCH: (Phase.RECEIVED, Phase.DISPATCHED),
    Interval.TURNOUT: (Phase.DISPATCHED, Phase.EN_ROUTE),
    Interval.TRAVEL: (Phase.EN_ROUTE, Phase.ON_SCENE),
    Interval.CALL_TO_ON_SCENE: (Phase.RECEIVED, Phase.ON_SCENE),
    Interval.ON_SCENE: (Phase.ON_SCENE, Phase.CLEARED),
    Interval.HANDLING: (Phase.RECEIVED, Phase.CLEARED),
}


class Gap(enum.StrEnum):
    """Why an interval has no duration; such an interval is left out and counted."""

    MISSING = "missing"  # one of its two phases has no time
    NEGATIVE = "negative"  # the end is before the start (a clock or entry error)
    ZERO = "zero"  # both at the same second: recorded together, not measured


class UnitResponse(msgspec.Struct, frozen=True, kw_only=True):
    """One unit on one call, with the times of its own phases."""

    unit_id: str
    kind: str | None = None  # engine, medic, truck… as the mapping names it
    dispatched: datetime | None = None
    en_route: datetime | None = None
    on_scene: datetime | None = None
    transport: datetime | None = None
    cleared: datetime | None = None

    def time(self, phase: Phase) -> datetime | None:
        """This unit's time of a unit phase; None for a call phase or when not recorded."""
        # a Phase is a str: getattr takes it as the field's name (``.value`` costs an enum
        # descriptor call, which the analytics export pays millions of times)
        return getattr(self, phase, None) if phase in UNIT_PHASES else None


class CallRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One call of a centre's history, as a mapping reads it from a CAD export.

    The unit phases (``dispatched`` … ``cleared``) are the call's: the first unit's time of
    each, and for ``cleared`` the last unit's. :meth:`first_unit` says which unit that was.
    A file with one row per call and no unit columns has the call's phase times and no units.
    ``lat``/``lon`` are None when the export had none or they were invalid (the reader counts
    why). ``priority`` is alarmdesk's scale: 1 (immediate threat to life) … 5.
    """

    call_id: str
    type_code: str  # a code of the taxonomy
    category: HarmCategory  # the type's harm category
    priority: int
    station_area: str | None = None
    desks: tuple[str, ...] = ()  # the desks it was routed to (alarmdesk's own incidents)
    lat: float | None = None
    lon: float | None = None
    received: datetime
    answered: datetime | None = None
    entered: datetime | None = None
    dispatched: datetime | None = None
    en_route: datetime | None = None
    on_scene: datetime | None = None
    transport: datetime | None = None
    cleared: datetime | None = None
    units: tuple[UnitResponse, ...] = ()

    def time(self, phase: Phase) -> datetime | None:
        """The call's time of a phase (first unit's; last unit's for ``cleared``)."""
        value: datetime | None = getattr(self, phase)
        return value

    def first_unit(self, phase: Phase) -> UnitResponse | None:
        """The unit whose time is the call's time of a unit phase: the first to reach it
        (for ``cleared``, the last to clear); None for a call phase or when no unit did."""
        if phase not in UNIT_PHASES:
            return None
        return _decisive(self.units, phase)

    def last_time(self) -> datetime:
        """The latest time the call records, its own or a unit's: when it was over, as far as
        the export tells (retention counts an imported call's age from it)."""
        times = [self.received, *(t for p in Phase if (t := self.time(p)) is not None)]
        times += [t for u in self.units for p in UNIT_PHASES if (t := u.time(p)) is not None]
        return max(times)

    def unit_kinds(self) -> list[str]:
        """The kinds of unit on this call, each once, in alphabetical order."""
        return sorted({u.kind for u in self.units if u.kind is not None})


def _decisive(units: Iterable[UnitResponse], phase: Phase) -> UnitResponse | None:
    timed = [(t, i, u) for i, u in enumerate(units) if (t := u.time(phase)) is not None]
    if not timed:
        return None
    # ties go to the unit listed first (its row came first in the export)
    if phase is Phase.CLEARED:
        return max(timed, key=lambda x: (x[0], -x[1]))[2]
    return min(timed, key=lambda x: (x[0], x[1]))[2]


def phase_time(
    record: CallRecord, phase: Phase, unit_kinds: Collection[str] | None = None
) -> datetime | None:
    """The call's time of a phase, or, with ``unit_kinds``, the time of that phase counting
    only units of those kinds (the first such unit; the last to clear). Call phases are the
    call's whatever the kinds."""
    if not unit_kinds or phase not in UNIT_PHASES:
        return record.time(phase)
    unit = _decisive((u for u in record.units if u.kind in unit_kinds), phase)
    return unit.time(phase) if unit is not None else None


def duration(
    record: CallRecord, interval: Interval, unit_kinds: Collection[str] | None = None
) -> float | Gap:
    """Seconds from the interval's first phase to its second, or why there are none.

    With ``unit_kinds``, unit phases count only units of those kinds (:func:`phase_time`):
    the travel time of the first engine is ``duration(r, Interval.TRAVEL, {"engine"})``.
    """
    start_phase, end_phase = INTERVAL_PHASES[interval]
    start = phase_time(record, start_phase, unit_kinds)
    end = phase_time(record, end_phase, unit_kinds)
    if start is None or end is None:
        return Gap.MISSING
    seconds = (end - start).total_seconds()
    if seconds < 0:
        return Gap.NEGATIVE
    if seconds == 0:
        return Gap.ZERO
    return seconds
