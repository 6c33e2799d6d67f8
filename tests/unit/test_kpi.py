"""KPIs over call records: the percentile definition on known lists, grouping, gaps left out
and counted, and compliance objectives met or not on constructed calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import InvalidField, ProtectedPurposeError, UnknownCategoryError
from alarmdesk.domain.history import CallRecord, Gap, Interval, UnitResponse
from alarmdesk.domain.kpi import (
    NFPA_1710,
    Dimension,
    Objective,
    Period,
    Stats,
    parse_objectives,
    percentile,
    period_of,
)
from tests.kpi_oracle import compliance, kpis, summarize

T0 = datetime(2017, 1, 2, 10, 0, tzinfo=UTC)


def call(
    n: int,
    *,
    dispatch_s: float | None = 60,
    travel_s: float | None = None,
    turnout_s: float | None = None,
    station: str | None = "01",
    priority: int = 1,
    category: HarmCategory = HarmCategory.FIRE,
    received: datetime = T0,
    units: tuple[UnitResponse, ...] = (),
) -> CallRecord:
    dispatched = None if dispatch_s is None else received + timedelta(seconds=dispatch_s)
    en_route = None
    if dispatched is not None and turnout_s is not None:
        en_route = dispatched + timedelta(seconds=turnout_s)
    on_scene = None
    if en_route is not None and travel_s is not None:
        on_scene = en_route + timedelta(seconds=travel_s)
    return CallRecord(
        call_id=str(n),
        type_code="FSTRU" if category is HarmCategory.FIRE else "BLS",
        category=category,
        priority=priority,
        station_area=station,
        received=received,
        dispatched=dispatched,
        en_route=en_route,
        on_scene=on_scene,
        units=units,
    )


# ------------------------------------------------------------------ the percentile


def test_nearest_rank_on_the_textbook_lists():
    five = [15, 20, 35, 40, 50]
    assert [percentile(five, p) for p in (5, 30, 40, 50, 100)] == [15, 20, 20, 35, 50]
    ten = [3, 6, 7, 8, 8, 10, 13, 15, 16, 20]
    assert [percentile(ten, p) for p in (25, 50, 75, 100)] == [7, 8, 15, 20]


def test_nearest_rank_is_exact_where_floats_are_not():
    hundred = list(range(1, 101))
    # 57 / 100 * 100 is 57.00000000000001 in floats: a float rank would give 58
    assert [percentile(hundred, p) for p in (7, 29, 57, 90, 99, 99.5)] == [7, 29, 57, 90, 99, 100]


def test_a_percentile_is_always_a_value_that_occurred():
    assert percentile([10, 20], 50) == 10
    assert percentile([10, 20], 51) == 20
    assert percentile([42], 1) == 42


@pytest.mark.parametrize("p", [0, -1, 100.5])
def test_a_percentile_outside_the_range_is_refused(p):
    with pytest.raises(ValueError, match="percentile"):
        percentile([1, 2, 3], p)


def test_no_values_have_no_percentile():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_summarize_counts_the_gaps_beside_the_figures():
    s = summarize([30, 10, 20], [Gap.MISSING, Gap.ZERO, Gap.MISSING])
    assert s == Stats(count=3, mean=20, p50=20, p90=30, p99=30, missing=2, negative=0, zero=1)
    assert summarize([], [Gap.NEGATIVE]) == Stats(0, None, None, None, None, 0, 1, 0)


# ------------------------------------------------------------------ grouping


def test_one_group_without_dimensions_and_gaps_left_out_of_the_figures():
    records = [
        call(1, dispatch_s=60),
        call(2, dispatch_s=120),
        call(3, dispatch_s=0),
        call(4, dispatch_s=None),
    ]
    [(key, by_interval)] = kpis(records, intervals=[Interval.CALL_TO_DISPATCH]).items()
    assert key == ()
    assert by_interval[Interval.CALL_TO_DISPATCH] == Stats(2, 90, 60, 120, 120, 1, 0, 1)


def test_grouped_by_station_and_priority():
    records = [
        call(1, station="01", priority=1, dispatch_s=30),
        call(2, station="01", priority=1, dispatch_s=50),
        call(3, station="01", priority=3, dispatch_s=300),
        call(4, station=None, priority=1, dispatch_s=90),
    ]
    table = kpis(records, [Dimension.STATION_AREA, Dimension.PRIORITY])
    assert list(table) == [(None, 1), ("01", 1), ("01", 3)]
    assert table[("01", 1)][Interval.CALL_TO_DISPATCH].mean == 40
    assert table[("01", 3)][Interval.CALL_TO_DISPATCH].p90 == 300


def test_periods_and_hours_are_counted_in_the_given_zone():
    late = datetime(2017, 1, 1, 7, 30, tzinfo=UTC)  # 23:30 on 31 December in San Francisco
    la = ZoneInfo("America/Los_Angeles")
    by_day = kpis(
        [call(1, received=late)], [Dimension.PERIOD, Dimension.HOUR], period=Period.DAY, tz=la
    )
    assert list(by_day) == [("2016-12-31", 23)]
    by_day_utc = kpis(
        [call(1, received=late)], [Dimension.PERIOD, Dimension.HOUR], period=Period.DAY
    )
    assert list(by_day_utc) == [("2017-01-01", 7)]


@pytest.mark.parametrize(
    ("period", "name"),
    [
        (Period.DAY, "2017-01-01"),
        (Period.WEEK, "2016-W52"),
        (Period.MONTH, "2017-01"),
        (Period.YEAR, "2017"),
    ],
)
def test_period_names(period, name):
    assert period_of(datetime(2017, 1, 1, 12, tzinfo=UTC), period) == name


def test_grouped_by_unit_kind_each_kind_is_timed_by_its_own_units():
    engine = UnitResponse(
        unit_id="E1",
        kind="engine",
        dispatched=T0 + timedelta(seconds=60),
        en_route=T0 + timedelta(seconds=120),
        on_scene=T0 + timedelta(seconds=420),
    )
    medic = UnitResponse(
        unit_id="M1",
        kind="medic",
        dispatched=T0 + timedelta(seconds=30),
        en_route=T0 + timedelta(seconds=150),
        on_scene=T0 + timedelta(seconds=360),
    )
    r = CallRecord(
        call_id="1",
        type_code="BLS",
        category=HarmCategory.MEDICAL,
        priority=1,
        received=T0,
        dispatched=T0 + timedelta(seconds=30),
        en_route=T0 + timedelta(seconds=120),
        on_scene=T0 + timedelta(seconds=360),
        units=(engine, medic),
    )
    no_units = call(2, dispatch_s=45)
    table = kpis([r, no_units], [Dimension.UNIT_KIND])
    assert list(table) == [(None,), ("engine",), ("medic",)]
    assert table[("engine",)][Interval.CALL_TO_ON_SCENE].mean == 420
    assert table[("medic",)][Interval.CALL_TO_ON_SCENE].mean == 360
    assert table[("medic",)][Interval.TURNOUT].mean == 120
    assert table[(None,)][Interval.CALL_TO_DISPATCH].mean == 45


def test_a_dimension_twice_is_refused():
    with pytest.raises(ValueError, match="twice"):
        kpis([], [Dimension.TYPE, Dimension.TYPE])


# ------------------------------------------------------------------ compliance

PROCESSING = Objective("processing", Interval.CALL_TO_DISPATCH, 64, 0.9)


def test_an_objective_is_met_at_exactly_its_fraction():
    records = [call(i, dispatch_s=60) for i in range(9)] + [call(9, dispatch_s=65)]
    [c] = compliance(records, [PROCESSING], by=())
    assert (c.count, c.within, c.achieved, c.met) == (10, 9, 0.9, True)


def test_an_objective_is_not_met_below_its_fraction():
    records = [call(i, dispatch_s=64) for i in range(8)] + [
        call(8, dispatch_s=65),
        call(9, dispatch_s=300),
    ]
    [c] = compliance(records, [PROCESSING], by=())
    assert (c.count, c.within, c.achieved, c.met) == (10, 8, 0.8, False)


def test_the_limit_itself_is_within():
    [c] = compliance([call(1, dispatch_s=64)], [PROCESSING], by=())
    assert c.met is True


def test_compliance_per_station_area_and_year_with_no_data_neither_met_nor_failed():
    records = [
        call(1, station="01", dispatch_s=30),
        call(2, station="02", dispatch_s=200),
        call(3, station="03", dispatch_s=None),
    ]
    results = {c.group: c for c in compliance(records, [PROCESSING])}
    assert results[("01", "2017")].met is True
    assert results[("02", "2017")].met is False
    no_data = results[("03", "2017")]
    assert (no_data.count, no_data.achieved, no_data.met, no_data.left_out) == (0, None, None, 1)


def test_nfpa_turnout_is_60_seconds_for_ems_and_80_for_fire():
    ems_70 = call(1, category=HarmCategory.MEDICAL, turnout_s=70)
    fire_70 = call(2, category=HarmCategory.FIRE, turnout_s=70)
    results = {c.objective.name: c for c in compliance([ems_70, fire_70], NFPA_1710, by=())}
    assert results["turnout (EMS)"].count == 1
    assert results["turnout (EMS)"].met is False
    assert results["turnout (fire and special operations)"].count == 1
    assert results["turnout (fire and special operations)"].met is True


def test_nfpa_travel_is_the_first_engines_and_ignores_calls_without_an_engine():
    def unit(uid: str, kind: str, en_route_s: int, on_scene_s: int) -> UnitResponse:
        return UnitResponse(
            unit_id=uid,
            kind=kind,
            dispatched=T0,
            en_route=T0 + timedelta(seconds=en_route_s),
            on_scene=T0 + timedelta(seconds=on_scene_s),
        )

    # the medic arrives in 100 s, the first engine only after 300 s of travel
    with_engine = call(1, units=(unit("M1", "medic", 10, 110), unit("E1", "engine", 20, 320)))
    medic_only = call(2, units=(unit("M2", "medic", 10, 110),))
    travel = next(o for o in NFPA_1710 if o.name == "first engine travel")
    [c] = compliance([with_engine, medic_only], [travel], by=())
    assert (c.count, c.within, c.met, c.left_out) == (1, 0, False, 0)


def test_nfpa_objectives_are_the_published_ones():
    table = {o.name: (o.interval, o.limit_seconds, o.fraction) for o in NFPA_1710}
    assert table == {
        "alarm answering": (Interval.ANSWER, 15, 0.95),
        "alarm processing": (Interval.CALL_TO_DISPATCH, 64, 0.90),
        "turnout (EMS)": (Interval.TURNOUT, 60, 0.90),
        "turnout (fire and special operations)": (Interval.TURNOUT, 80, 0.90),
        "first engine travel": (Interval.TRAVEL, 240, 0.90),
    }


@pytest.mark.parametrize(("limit", "fraction"), [(0, 0.9), (10, 0), (10, 1.5)])
def test_an_objective_out_of_range_is_refused(limit, fraction):
    with pytest.raises(ValueError, match="must be"):
        Objective("x", Interval.TURNOUT, limit, fraction)


def test_compliance_is_not_grouped_by_unit_kind():
    with pytest.raises(ValueError, match="unit kinds"):
        compliance([], [PROCESSING], by=[Dimension.UNIT_KIND])


# ------------------------------------------------------------------ objectives as data


def test_the_nfpa_objectives_file_reads_as_the_shipped_objectives():
    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / "nfpa-1710-objectives.toml"
    text = path.read_text("utf-8")
    assert parse_objectives(text) == NFPA_1710


OBJECTIVE = """
[[objective]]
name = "medic on scene"
interval = "call_to_on_scene"
limit_seconds = 480
fraction = 0.9
unit_kinds = ["medic"]
"""


def test_a_centre_writes_its_own_objective():
    [o] = parse_objectives(OBJECTIVE)
    assert o == Objective(
        "medic on scene", Interval.CALL_TO_ON_SCENE, 480, 0.9, unit_kinds=frozenset({"medic"})
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[[objective]]\nname = 'x'\n", "objective[0].interval"),
        (OBJECTIVE.replace("call_to_on_scene", "lunch"), "objective[0].interval"),
        (OBJECTIVE.replace("0.9", "90"), "objective[0].fraction"),
        (OBJECTIVE.replace("480", "'eight minutes'"), "objective[0].limit_seconds"),
        (OBJECTIVE.replace("480", "-1"), "objective[0].limit_seconds"),
        (OBJECTIVE + "colour = 'red'\n", "objective[0].colour"),
        (OBJECTIVE + "[target]\n", "target"),
        ("", "objective"),
    ],
)
def test_a_bad_objective_is_refused_naming_the_key(text, key):
    with pytest.raises(InvalidField) as caught:
        parse_objectives(text)
    assert (caught.value.code, caught.value.field) == ("invalid_objectives", key)


def test_an_objective_outside_the_harm_categories_or_targeting_rights_is_refused():
    with pytest.raises(UnknownCategoryError) as caught:
        parse_objectives(OBJECTIVE + "categories = ['protest']\n")
    assert caught.value.field == "objective[0].categories"
    with pytest.raises(ProtectedPurposeError):
        parse_objectives(OBJECTIVE.replace("medic on scene", "time to reach a demonstration"))


def test_the_html_report_escapes_every_value():
    from alarmdesk.service.kpi_report import (
        ComplianceFigures,
        IntervalFigures,
        KpiGroup,
        KpiReport,
        render_html,
    )

    bad = "<script>alert(1)</script>"
    figures = IntervalFigures(1, 2.0, 2.0, 2.0, 2.0, 0, 0, 0)
    report = KpiReport(
        first_day="2026-12-01",
        last_day="2026-12-03",
        by=["station_area"],
        source=bad,
        calls=1,
        groups=[KpiGroup(group={"station_area": bad}, intervals={"travel": figures})],
        compliance=[
            ComplianceFigures(
                objective=bad,
                interval="travel",
                limit_seconds=240,
                fraction=0.9,
                station_area=bad,
                year="2026",
                count=1,
                within=1,
                achieved=1.0,
                met=True,
                left_out=0,
                reference="",
            )
        ],
    )
    page = render_html(report)
    assert "<script>" not in page and page.count("&lt;script&gt;") == 4


def test_workload_is_demand_against_the_units_that_met_it():
    from datetime import UTC, datetime, timedelta

    from alarmdesk.domain.categories import HarmCategory
    from alarmdesk.domain.history import CallRecord, UnitResponse
    from alarmdesk.domain.kpi import Interval, over_target
    from tests.kpi_oracle import kpis as all_kpis
    from tests.kpi_oracle import workload

    t0 = datetime(2026, 12, 1, tzinfo=UTC)

    def call(n: int, area: str | None, *units: tuple[str, int | None]) -> CallRecord:
        return CallRecord(
            call_id=str(n),
            type_code="FSTRU",
            category=HarmCategory.FIRE,
            priority=1,
            station_area=area,
            received=t0,
            on_scene=t0 + timedelta(seconds=100 * n),
            units=tuple(
                UnitResponse(
                    unit_id=u,
                    kind="engine",
                    dispatched=t0,
                    cleared=None if busy is None else t0 + timedelta(hours=busy),
                )
                for u, busy in units
            ),
        )

    records = [
        call(1, "01", ("E1", 2), ("T1", 1)),
        call(2, "01", ("E1", 1)),
        call(9, "02", ("E2", None)),  # cleared never recorded: counted, not timed
    ]
    a, b = workload(records, hours=10)
    assert (a.station_area, a.calls, a.responses, a.units, a.busy_hours) == ("01", 2, 3, 2, 4.0)
    assert a.calls_per_hour == 0.2 and a.responses_per_unit_hour == 3 / 20
    assert a.utilisation == 4.0 / 20
    assert (b.station_area, b.units, b.busy_hours, b.untimed, b.utilisation) == ("02", 1, 0, 1, 0)
    table = all_kpis(records, (Dimension.STATION_AREA,), intervals=(Interval.CALL_TO_ON_SCENE,))
    assert over_target(table, Interval.CALL_TO_ON_SCENE, 150) == [
        (("02",), 900.0),
        (("01",), 200.0),
    ]
    assert over_target(table, Interval.CALL_TO_ON_SCENE, 900) == []
    # with a roster, an area it names is measured against its rostered units
    a, b = workload(records, hours=10, roster={"01": 4, "07": 2})
    assert (a.units, a.capacity, a.utilisation) == (4, "roster", 4.0 / 40)
    assert a.responses_per_unit_hour == 3 / 40
    assert (b.units, b.capacity) == (1, "answered")  # 02 is not on the roster
