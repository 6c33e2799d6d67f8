"""Response-time KPIs and compliance objectives over call records.

The intervals are those of :class:`~alarmdesk.domain.history.records.Interval` (time to
answer, call → dispatch, turnout, travel, call → on scene, time on scene, total handling),
grouped by any of :class:`Dimension`: period, station area, unit kind, type, priority, hour of
day, desk, H3 cell. Per group and interval: count, mean, p50, p90, p99 (:class:`Stats`), and
how many calls were left out because the interval was missing, negative or zero.

Percentiles, everywhere in alarmdesk: **nearest rank**. The p-th percentile of n values is
the value at rank ⌈p/100 · n⌉ (1-based) of the values sorted ascending: the smallest value
that at least p % of the values do not exceed. It is always a value that occurred (a real
call's time, to the second), never an interpolation between two.

Grouping by unit kind measures each kind on its own: a call with an engine and a medic
counts once in the engine group, timed by its engines only (the first engine dispatched, en
route, on scene; the last engine cleared), and once in the medic group, timed by its medics.
A call without unit data falls in the group ``None``. Grouping by desk counts a call once in
each desk it was routed to, timed whole; grouping by H3 cell places it in the cell of its
location at the query's resolution (``domain/hexgrid.py``), or in ``None`` without one.

Compliance objectives (:class:`Objective`) are data: an interval, a limit in seconds, the
fraction of calls that must be within it, and optionally the harm categories and unit kinds
it applies to. :data:`NFPA_1710` are the objectives of NFPA 1710 (2020 edition, §4.1.2).
:class:`Compliance` is one objective's result in one group (per station area and year), met
or not, with the fraction achieved; :class:`Workload` an area's demand against capacity.

alarmdesk computes the figures (the KPIs, compliance, workload, the heat layer) with DuckDB
over the analytics store (``analytics/queries.py``), by these definitions;
tests/kpi_oracle.py computes them record by record to check it.
"""

from __future__ import annotations

import enum
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from fractions import Fraction
from typing import Final

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import InvalidField, UnknownCategoryError
from alarmdesk.domain.history.records import CallRecord, Interval
from alarmdesk.domain.purpose import check_category, screen

__all__ = [
    "NFPA_1710",
    "Compliance",
    "Dimension",
    "GroupKey",
    "Objective",
    "Period",
    "Stats",
    "Workload",
    "over_target",
    "parse_objectives",
    "percentile",
    "period_of",
]

GroupKey = tuple[str | int | None, ...]  # one value per dimension grouped by, in that order


class Dimension(enum.StrEnum):
    PERIOD = "period"  # the call's received time, per day, ISO week, month or year
    STATION_AREA = "station_area"
    UNIT_KIND = "unit_kind"  # each kind of unit on the call, timed by its own units
    TYPE = "type"  # the incident type code
    PRIORITY = "priority"  # 1 … 5
    HOUR = "hour"  # hour of day of the received time, 0 … 23
    DESK = "desk"  # each desk the call was routed to (alarmdesk's own incidents)
    H3 = "h3"  # the H3 cell of the call's location, at the query's resolution (domain/hexgrid)


class Period(enum.StrEnum):
    DAY = "day"  # 2017-01-02
    WEEK = "week"  # 2017-W01 (ISO 8601 week)
    MONTH = "month"  # 2017-01
    YEAR = "year"  # 2017


def period_of(moment: datetime, period: Period, tz: tzinfo = UTC) -> str:
    """The name of the period a moment falls in, in the time zone ``tz``."""
    local = moment.astimezone(tz)
    if period is Period.DAY:
        return local.date().isoformat()
    if period is Period.WEEK:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if period is Period.MONTH:
        return f"{local.year}-{local.month:02d}"
    return str(local.year)


def percentile(ordered: Sequence[float], p: float) -> float:
    """The p-th percentile (0 < p ≤ 100) of values sorted ascending, by nearest rank.

    Raises:
        ValueError: no values, or p outside (0, 100].
    """
    if not ordered:
        raise ValueError("the percentile of no values is undefined")
    if not 0 < p <= 100:
        raise ValueError(f"a percentile is over (0, 100], not {p}")
    # exact arithmetic: 57 / 100 * 100 is 57.00000000000001 in floats, which would be rank 58
    rank = math.ceil(Fraction(str(p)) * len(ordered) / 100)
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Stats:
    """One interval in one group: seconds over the calls that had a duration, and how many
    calls were left out and why. The figures are None when no call had a duration."""

    count: int
    mean: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    missing: int = 0
    negative: int = 0
    zero: int = 0


# ------------------------------------------------------------------------- compliance


@dataclass(frozen=True, slots=True)
class Objective:
    """A compliance objective: ``fraction`` of calls have ``interval`` ≤ ``limit_seconds``.

    ``categories`` (empty: all) limits it to calls of those harm categories; ``unit_kinds``
    (empty: any unit) limits it to calls that had a unit of those kinds and times it by those
    units only, as the first engine's travel.
    Calls whose interval is missing, negative or zero are left out of it, like everywhere.
    """

    name: str
    interval: Interval
    limit_seconds: float
    fraction: float
    categories: frozenset[HarmCategory] = frozenset()
    unit_kinds: frozenset[str] = frozenset()
    reference: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.fraction <= 1:
            raise ValueError(f"{self.name}: fraction must be in (0, 1], not {self.fraction}")
        if self.limit_seconds <= 0:
            raise ValueError(f"{self.name}: limit_seconds must be positive")

    def applies_to(self, record: CallRecord) -> bool:
        """A call of its categories that, when it names unit kinds, had such a unit."""
        if self.categories and record.category not in self.categories:
            return False
        return not self.unit_kinds or any(u.kind in self.unit_kinds for u in record.units)


_EMS: Final = frozenset({HarmCategory.MEDICAL})
_FIRE_AND_SPECIAL: Final = frozenset(HarmCategory) - _EMS

# NFPA 1710 (2020 edition), §4.1.2: alarm answering, alarm processing, turnout and first
# engine travel. Alarm processing is measured from the call's receipt (answering included)
# when the export has no answered time; docs/analytics.md says which column is which phase.
NFPA_1710: Final = (
    Objective(
        "alarm answering",
        Interval.ANSWER,
        15,
        0.95,
        reference="NFPA 1710 (2020) 4.1.2.3: alarm answering ≤ 15 s for 95 %",
    ),
    Objective(
        "alarm processing",
        Interval.CALL_TO_DISPATCH,
        64,
        0.90,
        reference="NFPA 1710 (2020) 4.1.2.3: alarm processing ≤ 64 s for 90 %",
    ),
    Objective(
        "turnout (EMS)",
        Interval.TURNOUT,
        60,
        0.90,
        categories=_EMS,
        reference="NFPA 1710 (2020) 4.1.2.1: turnout ≤ 60 s for EMS responses, 90 %",
    ),
    Objective(
        "turnout (fire and special operations)",
        Interval.TURNOUT,
        80,
        0.90,
        categories=_FIRE_AND_SPECIAL,
        reference="NFPA 1710 (2020) 4.1.2.1: turnout ≤ 80 s for fire and special operations, 90 %",
    ),
    Objective(
        "first engine travel",
        Interval.TRAVEL,
        240,
        0.90,
        unit_kinds=frozenset({"engine"}),
        reference="NFPA 1710 (2020) 4.1.2.1: travel of the first engine ≤ 240 s, 90 %",
    ),
)


_OBJECTIVE_KEYS: Final = frozenset(
    {"name", "interval", "limit_seconds", "fraction", "categories", "unit_kinds", "reference"}
)


def parse_objectives(text: str, *, source: str = "") -> tuple[Objective, ...]:
    """A centre's own objectives from TOML: one ``[[objective]]`` table each, with ``name``,
    ``interval`` (an :class:`Interval` value), ``limit_seconds``, ``fraction`` (0–1) and
    optionally ``categories`` (harm categories), ``unit_kinds`` and ``reference``.
    docs/examples/nfpa-1710-objectives.toml is :data:`NFPA_1710` written so.

    Raises:
        InvalidField: not TOML, or a key missing, unknown or wrong (``invalid_objectives``;
            ``field`` is the key, as ``objective[2].fraction``).
        UnknownCategoryError: a category outside the closed list.
        ProtectedPurposeError: a name, reference or unit kind that targets people exercising
            rights.
    """
    where = f"{source}: " if source else ""

    def fail(key: str, message: str) -> InvalidField:
        return InvalidField(f"{where}{key}: {message}", field=key, code="invalid_objectives")

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidField(f"{where}not a TOML file: {exc}", code="invalid_objectives") from exc
    if set(data) - {"objective"}:
        key = sorted(set(data) - {"objective"})[0]
        raise fail(key, "unknown key (objectives are [[objective]] tables)")
    entries = data.get("objective")
    if not isinstance(entries, list) or not entries:
        raise fail("objective", "needs at least one [[objective]] table")
    out: list[Objective] = []
    for n, entry in enumerate(entries):
        at = f"objective[{n}]"
        if unknown := sorted(set(entry) - _OBJECTIVE_KEYS):
            raise fail(f"{at}.{unknown[0]}", "unknown key")
        for key in ("name", "interval", "limit_seconds", "fraction"):
            if key not in entry:
                raise fail(f"{at}.{key}", "missing")
        name, reference = entry["name"], entry.get("reference", "")
        if not isinstance(name, str) or not name.strip():
            raise fail(f"{at}.name", "must be a text")
        if not isinstance(reference, str):
            raise fail(f"{at}.reference", "must be a text")
        try:
            interval = Interval(entry["interval"])
        except ValueError:
            allowed = ", ".join(i.value for i in Interval)
            raise fail(f"{at}.interval", f"one of {allowed}") from None
        numbers = {k: entry[k] for k in ("limit_seconds", "fraction")}
        for key, value in numbers.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise fail(f"{at}.{key}", f"must be a number, not {value!r}")
        lists = {k: entry.get(k, []) for k in ("categories", "unit_kinds")}
        for key, value in lists.items():
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise fail(f"{at}.{key}", "must be a list of texts")
        screen(
            {
                f"{at}.name": name,
                f"{at}.reference": reference,
                f"{at}.unit_kinds": lists["unit_kinds"],
            }
        )
        categories: set[HarmCategory] = set()
        for value in lists["categories"]:
            try:
                categories.add(check_category(value))
            except UnknownCategoryError:
                allowed = ", ".join(c.value for c in HarmCategory)
                raise UnknownCategoryError(value, f"{at}.categories", allowed) from None
        if not 0 < numbers["fraction"] <= 1:
            raise fail(f"{at}.fraction", "must be over 0 and at most 1")
        if numbers["limit_seconds"] <= 0:
            raise fail(f"{at}.limit_seconds", "must be positive")
        out.append(
            Objective(
                name=name.strip(),
                interval=interval,
                limit_seconds=numbers["limit_seconds"],
                fraction=numbers["fraction"],
                categories=frozenset(categories),
                unit_kinds=frozenset(k.strip() for k in lists["unit_kinds"]),
                reference=reference,
            )
        )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Compliance:
    """One objective in one group: ``within`` of ``count`` calls met the limit.

    ``achieved`` is within / count and ``met`` is achieved ≥ the objective's fraction; both
    are None when no call in the group had the interval (no data: neither met nor failed).
    """

    objective: Objective
    group: GroupKey
    count: int
    within: int
    achieved: float | None
    met: bool | None
    left_out: int  # calls the objective applies to whose interval was missing, negative, zero

    @classmethod
    def of(
        cls, objective: Objective, group: GroupKey, count: int, within: int, left_out: int
    ) -> Compliance:
        """The result from its counts: achieved and met follow from them."""
        achieved = within / count if count else None
        return cls(
            objective=objective,
            group=group,
            count=count,
            within=within,
            achieved=achieved,
            met=None if achieved is None else achieved >= objective.fraction,
            left_out=left_out,
        )


# -- workload: demand against capacity per station area --------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    """One station area's demand and the units that met it, over a span of ``hours``.

    ``units`` is the area's capacity: the units on its roster (the centre's set-up: the units
    whose home is the area's station) when it has one, else the distinct units that responded
    to the area's calls (``capacity`` says which; a CAD export names no roster).
    ``busy_hours`` adds each unit response's dispatched → cleared time (a response without
    both, or out of order, adds nothing and is counted in ``untimed``). Utilisation is busy
    unit-hours over available unit-hours.
    """

    station_area: str | None
    hours: float
    calls: int
    responses: int  # unit responses: a unit on a call
    units: int
    busy_hours: float
    untimed: int
    capacity: str = "answered"  # "roster" or "answered": where ``units`` comes from

    @classmethod
    def of(
        cls,
        area: str | None,
        hours: float,
        calls: int,
        responses: int,
        answered: int,
        busy_hours: float,
        untimed: int,
        roster: Mapping[str, int] | None,
    ) -> Workload:
        """An area's workload, its capacity the roster's units where ``roster`` names the
        area, else the ``answered`` units (those that responded to its calls)."""
        listed = (roster or {}).get(area) if area is not None else None
        return cls(
            area,
            hours,
            calls,
            responses,
            listed if listed else answered,
            busy_hours,
            untimed,
            "roster" if listed else "answered",
        )

    @property
    def calls_per_hour(self) -> float:
        return self.calls / self.hours if self.hours else 0.0

    @property
    def responses_per_unit_hour(self) -> float | None:
        """Incidents per unit-hour: unit responses per available unit-hour."""
        return self.responses / (self.units * self.hours) if self.units and self.hours else None

    @property
    def utilisation(self) -> float | None:
        """Busy unit-hours over available unit-hours (unit-hour utilisation, 0 … 1)."""
        return self.busy_hours / (self.units * self.hours) if self.units and self.hours else None


def over_target(
    table: dict[GroupKey, dict[Interval, Stats]], interval: Interval, target_seconds: float
) -> list[tuple[GroupKey, float]]:
    """The groups whose p90 of ``interval`` exceeds ``target_seconds``, worst first."""
    out: list[tuple[GroupKey, float]] = []
    for key, stats in table.items():
        p90 = stats[interval].p90 if interval in stats else None
        if p90 is not None and p90 > target_seconds:
            out.append((key, p90))
    return sorted(out, key=lambda x: -x[1])
