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
:func:`compliance` reports each as met or not, with the fraction achieved, per group
(by default per station area and year).
"""

from __future__ import annotations

import enum
import math
import tomllib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from fractions import Fraction
from typing import Final

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import InvalidField, UnknownCategoryError
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION, cell_of
from alarmdesk.domain.history.records import CallRecord, Gap, Interval, duration
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
    "compliance",
    "kpis",
    "over_target",
    "parse_objectives",
    "percentile",
    "period_of",
    "summarize",
    "workload",
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


def summarize(values: Iterable[float], gaps: Iterable[Gap] = ()) -> Stats:
    """Count, mean and nearest-rank p50/p90/p99 of durations in seconds."""
    ordered = sorted(values)
    gap_list = list(gaps)
    left_out = {g: gap_list.count(g) for g in Gap}
    if not ordered:
        return Stats(0, None, None, None, None, *left_out.values())
    return Stats(
        count=len(ordered),
        mean=sum(ordered) / len(ordered),
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        missing=left_out[Gap.MISSING],
        negative=left_out[Gap.NEGATIVE],
        zero=left_out[Gap.ZERO],
    )


def _dimension_value(
    record: CallRecord, dimension: Dimension, period: Period, tz: tzinfo, resolution: int
) -> str | int | None:
    if dimension is Dimension.H3:
        return cell_of(record.lat, record.lon, resolution)
    if dimension is Dimension.PERIOD:
        return period_of(record.received, period, tz)
    if dimension is Dimension.STATION_AREA:
        return record.station_area
    if dimension is Dimension.TYPE:
        return record.type_code
    if dimension is Dimension.PRIORITY:
        return record.priority
    if dimension is Dimension.HOUR:
        return record.received.astimezone(tz).hour
    raise ValueError(f"{dimension} is not a dimension of the call itself")


def _groups(
    record: CallRecord,
    by: Sequence[Dimension],
    period: Period,
    tz: tzinfo,
    resolution: int = DEFAULT_RESOLUTION,
) -> list[tuple[GroupKey, frozenset[str] | None]]:
    """The groups a record falls in, each with the unit kinds that time it (None: all).

    A call falls in one group per kind of unit on it (timed by those units only) and per desk
    it was routed to (timed whole); a call without either falls in the group None."""
    kinds: list[str | None] = [None]
    if Dimension.UNIT_KIND in by:
        kinds = list(record.unit_kinds()) or [None]
    desks: list[str | None] = [None]
    if Dimension.DESK in by:
        desks = list(dict.fromkeys(record.desks)) or [None]
    out: list[tuple[GroupKey, frozenset[str] | None]] = []
    for kind in kinds:
        for desk in desks:
            key = tuple(
                kind
                if d is Dimension.UNIT_KIND
                else desk
                if d is Dimension.DESK
                else _dimension_value(record, d, period, tz, resolution)
                for d in by
            )
            out.append((key, None if kind is None else frozenset({kind})))
    return out


def kpis(
    records: Iterable[CallRecord],
    by: Sequence[Dimension] = (),
    *,
    period: Period = Period.MONTH,
    tz: tzinfo = UTC,
    intervals: Collection[Interval] = tuple(Interval),
    resolution: int = DEFAULT_RESOLUTION,
) -> dict[GroupKey, dict[Interval, Stats]]:
    """Per group (a key with one value per dimension of ``by``), per interval, its Stats.

    Args:
        records: the calls (read once).
        by: the dimensions to group by, in order; none gives one group, the key ``()``.
        period: the length of a period when grouping by period.
        tz: the time zone periods and hours of day are counted in.
        intervals: the intervals to measure.
        resolution: the H3 resolution when grouping by cell.
    """
    if len(set(by)) != len(by):
        raise ValueError(f"a dimension appears twice in {list(by)}")
    values: defaultdict[GroupKey, defaultdict[Interval, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    gaps: defaultdict[GroupKey, defaultdict[Interval, list[Gap]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for record in records:
        for key, kinds in _groups(record, by, period, tz, resolution):
            for interval in intervals:
                d = duration(record, interval, kinds)
                if isinstance(d, Gap):
                    gaps[key][interval].append(d)
                else:
                    values[key][interval].append(d)
    return {
        key: {i: summarize(values[key][i], gaps[key][i]) for i in intervals}
        for key in sorted(values.keys() | gaps.keys(), key=_sortable)
    }


def _sortable(key: GroupKey) -> tuple[tuple[int, str | int], ...]:
    # None sorts first; ints and strings never meet in one dimension
    return tuple((0, "") if v is None else (1, v) for v in key)


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


def compliance(
    records: Iterable[CallRecord],
    objectives: Sequence[Objective] = NFPA_1710,
    by: Sequence[Dimension] = (Dimension.STATION_AREA, Dimension.PERIOD),
    *,
    period: Period = Period.YEAR,
    tz: tzinfo = UTC,
) -> list[Compliance]:
    """Each objective, per group, met or not with the fraction achieved.

    Grouping by unit kind is refused: an objective names its own unit kinds.
    """
    if Dimension.UNIT_KIND in by:
        raise ValueError("compliance is grouped by the call; an objective names its unit kinds")
    tally: defaultdict[tuple[int, GroupKey], list[int]] = defaultdict(lambda: [0, 0, 0])
    for record in records:
        ((key, _),) = _groups(record, by, period, tz)
        for n, objective in enumerate(objectives):
            if not objective.applies_to(record):
                continue
            d = duration(record, objective.interval, objective.unit_kinds or None)
            counts = tally[(n, key)]
            if isinstance(d, Gap):
                counts[2] += 1
                continue
            counts[0] += 1
            counts[1] += d <= objective.limit_seconds
    out: list[Compliance] = []
    for (n, key), (count, within, left_out) in sorted(
        tally.items(), key=lambda kv: (_sortable(kv[0][1]), kv[0][0])
    ):
        objective = objectives[n]
        achieved = within / count if count else None
        out.append(
            Compliance(
                objective=objective,
                group=key,
                count=count,
                within=within,
                achieved=achieved,
                met=None if achieved is None else achieved >= objective.fraction,
                left_out=left_out,
            )
        )
    return out


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


def workload(
    records: Iterable[CallRecord], hours: float, roster: Mapping[str, int] | None = None
) -> list[Workload]:
    """Per station area (None: calls without one), in order of the areas' names.

    Args:
        roster: units on the roster per station area; an area it names is measured against
            them, any other against the units that answered its calls.
    """
    if hours <= 0:
        raise ValueError(f"a span of {hours} hours")
    calls: defaultdict[str | None, int] = defaultdict(int)
    responses: defaultdict[str | None, int] = defaultdict(int)
    units: defaultdict[str | None, set[str]] = defaultdict(set)
    busy: defaultdict[str | None, float] = defaultdict(float)
    untimed: defaultdict[str | None, int] = defaultdict(int)
    for r in records:
        area = r.station_area
        calls[area] += 1
        for u in r.units:
            responses[area] += 1
            units[area].add(u.unit_id)
            if u.dispatched is not None and u.cleared is not None and u.cleared > u.dispatched:
                busy[area] += (u.cleared - u.dispatched).total_seconds() / 3600
            else:
                untimed[area] += 1
    rostered = roster or {}

    def one(area: str | None) -> Workload:
        listed = rostered.get(area) if area is not None else None
        return Workload(
            area,
            hours,
            calls[area],
            responses[area],
            listed if listed else len(units[area]),
            busy[area],
            untimed[area],
            "roster" if listed else "answered",
        )

    return [one(area) for area in sorted(calls, key=lambda a: (a is None, a or ""))]


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
