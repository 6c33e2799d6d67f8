"""The routing tree: first match, continue, children before their parent, time of day, areas,
devices and sites, the fallback, and how a pipeline records the rule that routed an incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.routing import FALLBACK, Facts, RouteSpec, compile_routes, evaluate
from alarmdesk.domain.signal import Location, SourceKind

SQUARE = {
    "type": "Polygon",
    "coordinates": [[[5.0, 52.0], [5.2, 52.0], [5.2, 52.2], [5.0, 52.2], [5.0, 52.0]]],
}
# 2026-12-03 is a Thursday; 12:00 UTC is 13:00 in Amsterdam.
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def facts(
    category: HarmCategory = HarmCategory.PROPERTY,
    *,
    type_code: str = "ALRBA",
    priority: int = 2,
    source: SourceKind = SourceKind.EQUIPMENT,
    source_id: str = "panel-5001",
    site: str | None = "Jeweller Oudegracht 13",
    lat: float | None = 52.1,
    lon: float | None = 5.1,
    at: datetime = NOON,
) -> Facts:
    return Facts(
        category, type_code, priority, source, source_id, Location(lat=lat, lon=lon, site=site), at
    )


def tree(*rules: dict[str, object]):
    specs = msgspec.convert(list(rules), list[RouteSpec])
    return compile_routes(specs, {"north": None, "city": None})


def test_the_first_matching_rule_routes_and_the_rest_are_not_tried():
    routes = tree(
        {"id": "a", "match": {"categories": ["property"]}, "desks": ["alarms"]},
        {"id": "b", "match": {"categories": ["property"]}, "desks": ["police"]},
    )
    assert evaluate(routes, facts(), "fb") == (("alarms",), ("a",))


def test_continue_lets_later_rules_add_their_desks_once_each():
    routes = tree(
        {"id": "a", "match": {"priorities": [1, 2]}, "desks": ["sup", "alarms"], "continue": True},
        {"id": "b", "match": {"categories": ["property"]}, "desks": ["alarms", "police"]},
    )
    assert evaluate(routes, facts(), "fb") == (("sup", "alarms", "police"), ("a", "b"))


def test_a_child_that_matches_routes_instead_of_its_parent_and_the_parent_otherwise():
    routes = tree(
        {
            "id": "intruder",
            "match": {"categories": ["property"]},
            "desks": ["alarms"],
            "routes": [{"id": "vip", "match": {"devices": ["panel-9*"]}, "desks": ["vip"]}],
        }
    )
    assert evaluate(routes, facts(source_id="panel-9001"), "fb") == (("vip",), ("vip",))
    assert evaluate(routes, facts(source_id="panel-5001"), "fb") == (("alarms",), ("intruder",))


def test_nothing_matching_goes_to_the_fallback_desk_never_nowhere():
    routes = tree({"id": "fire", "match": {"categories": ["fire"]}, "desks": ["fire"]})
    assert evaluate(routes, facts(), "fb") == (("fb",), (FALLBACK,))
    assert evaluate((), facts(), "fb") == (("fb",), (FALLBACK,))
    # a matching rule that names no desk routes nothing either
    empty = tree({"id": "x", "match": {"categories": ["property"]}})
    assert evaluate(empty, facts(), "fb") == (("fb",), (FALLBACK,))


@pytest.mark.parametrize(
    ("hour", "expected"),
    [(17, "day"), (18, "night"), (23, "night"), (0, "night"), (6, "night"), (7, "day")],
)
def test_hours_past_midnight_wrap_in_the_rules_time_zone(hour, expected):
    routes = tree(
        {
            "id": "night",
            "match": {"hours": "18:00-07:00", "timezone": "Europe/Amsterdam"},
            "desks": ["night"],
        },
        {"id": "day", "desks": ["day"]},
    )
    local = datetime(2026, 12, 3, hour, 0, tzinfo=UTC) - timedelta(hours=1)  # CET = UTC+1
    assert evaluate(routes, facts(at=local), "fb")[1] == (expected,)


def test_days_of_the_week_are_the_local_days():
    routes = tree(
        {
            "id": "weekend",
            "match": {"days": ["sat", "sun"], "timezone": "Pacific/Auckland"},
            "desks": ["w"],
        },
        {"id": "week", "desks": ["d"]},
    )
    friday_utc = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)  # Saturday 01:00 in Auckland
    assert evaluate(routes, facts(at=friday_utc), "fb")[1] == ("weekend",)
    assert evaluate(routes, facts(at=NOON), "fb")[1] == ("week",)


def test_an_area_claims_only_points_inside_it_and_never_an_incident_without_a_point():
    routes = tree({"id": "sq", "match": {"area": SQUARE}, "desks": ["sq"]})
    assert evaluate(routes, facts(), "fb")[0] == ("sq",)
    assert evaluate(routes, facts(lat=53.0, lon=5.1), "fb")[0] == ("fb",)
    assert evaluate(routes, facts(lat=None, lon=None), "fb")[0] == ("fb",)


def test_sites_match_patterns_in_any_case_and_types_sources_and_priorities_select():
    routes = tree(
        {
            "id": "x",
            "match": {
                "sites": ["JEWELLER *"],
                "types": ["alrba"],
                "sources": ["equipment"],
                "priorities": [2],
            },
            "desks": ["x"],
        }
    )
    assert evaluate(routes, facts(), "fb")[1] == ("x",)
    for other in (
        facts(site="School Biltstraat 11"),
        facts(type_code="ALRF"),
        facts(source=SourceKind.CALL),
        facts(priority=1),
        facts(site=None),
    ):
        assert evaluate(routes, other, "fb")[1] == (FALLBACK,)


@pytest.mark.parametrize(
    ("match", "code"),
    [
        ({"categories": ["politics"]}, "unknown_category"),
        ({"sources": ["gossip"]}, "invalid_value"),
        ({"days": ["someday"]}, "invalid_value"),
        ({"timezone": "Mars/Olympus"}, "invalid_value"),
        ({"area": {"type": "Point", "coordinates": [5, 52]}}, "invalid_value"),
        ({"within_desk": "nowhere"}, "unknown_reference"),
        ({"within_desk": "north"}, "invalid_value"),  # a desk without a jurisdiction
    ],
)
def test_a_rule_that_cannot_be_evaluated_is_refused_when_compiled(match, code):
    with pytest.raises(InvalidField) as info:
        tree({"id": "r", "match": match, "desks": ["d"]})
    assert info.value.code == code


def test_hours_must_be_a_clock_window():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"id": "r", "match": {"hours": "25:00-07:00"}}, RouteSpec)
