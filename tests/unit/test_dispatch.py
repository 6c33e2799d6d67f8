"""Dispatch recommendation: needs from a response plan or from the procedure, the nearest
fitting available unit for each by travel time, with fixtures of known distances."""

from __future__ import annotations

import msgspec
import pytest

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.dispatch import (
    DETOUR,
    SPEEDS_KMH,
    Need,
    ResponsePlanSpec,
    needs_for,
    recommend,
    short,
    straight_line,
)
from alarmdesk.domain.signal import Location
from alarmdesk.domain.taxonomy import default_types
from alarmdesk.domain.units import Unit, UnitStatus

HERE = Location(lat=52.0, lon=5.0)
# One degree of latitude is about 111.2 km: 0.009° ≈ 1 km north.
KM = 0.008993


def unit(uid: str, kind: str, km: float | None, *caps: str, status=UnitStatus.AVAILABLE) -> Unit:
    lat = 52.0 + km * KM if km is not None else None
    lon = 5.0 if km is not None else None
    return Unit(id=uid, kind=kind, capabilities=caps, status=status, lat=lat, lon=lon)


SOP = {t.code: t.sop for t in default_types()}


def test_a_cardiac_arrest_asks_for_a_medic_and_a_first_responder_not_an_engine():
    needs = needs_for("CARDIAC", HarmCategory.MEDICAL, SOP["CARDIAC"])
    assert needs == (Need(kind="medic"), Need(capability="medical"))
    units = [
        unit("E1", "engine", 0.5, "fire", "medical"),
        unit("M1", "medic", 3.0, "medical"),
        unit("M2", "medic", 1.0, "medical"),
    ]
    picks = recommend(needs, units, HERE)
    assert [(p.unit_id, p.need) for p in picks] == [
        ("M2", "medic"),
        ("E1", "any unit with medical"),
    ]


def test_a_response_plan_wins_over_the_procedure_and_fills_every_need_once():
    plan = msgspec.convert(
        {
            "id": "structure-fire",
            "types": ["fstru"],
            "units": [{"kind": "engine", "count": 2}, {"kind": "truck"}, {"kind": "medic"}],
        },
        ResponsePlanSpec,
    )
    needs = needs_for("FSTRU", HarmCategory.FIRE, SOP["FSTRU"], [plan])
    units = [unit(f"E{i}", "engine", i, "fire") for i in range(1, 5)] + [
        unit("T1", "truck", 2.5, "fire"),
        unit("M1", "medic", None, "medical"),  # position unknown: still offered, last
    ]
    picks = recommend(needs, units, HERE)
    assert [p.unit_id for p in picks] == ["E1", "E2", "T1", "M1"]
    assert picks[-1].eta_s is None
    assert short(needs, picks) == []


def test_etas_follow_distance_detour_and_the_kinds_speed():
    [pick] = recommend((Need(kind="medic"),), [unit("M1", "medic", 2.0)], HERE)
    assert pick.distance_m == pytest.approx(2000 * DETOUR, rel=0.01)
    assert pick.eta_s == pytest.approx(2000 * DETOUR / (SPEEDS_KMH["medic"] / 3.6), rel=0.01)


def test_busy_units_are_never_recommended_and_what_is_missing_is_short():
    needs = (Need(kind="engine", count=2),)
    units = [
        unit("E1", "engine", 1, status=UnitStatus.DISPATCHED),
        unit("E2", "engine", 2, status=UnitStatus.OUT_OF_SERVICE),
        unit("E3", "engine", 9),
    ]
    picks = recommend(needs, units, HERE)
    assert [p.unit_id for p in picks] == ["E3"]
    assert short(needs, picks) == [{"need": "engine", "missing": 1}]


def test_without_a_plan_or_a_dispatch_step_the_category_decides():
    assert needs_for("X", HarmCategory.FIRE, ["Call back"]) == (Need(kind="engine"),)
    assert needs_for("X", HarmCategory.PROPERTY, []) == (Need(capability="property"),)
    assert needs_for("ASSAULT", HarmCategory.VIOLENCE, SOP["ASSAULT"])[0] == Need(kind="patrol")


def test_a_unit_or_an_incident_without_a_position_has_no_eta():
    assert straight_line(unit("M1", "medic", None), HERE) is None
    assert straight_line(unit("M1", "medic", 1), Location()) is None
