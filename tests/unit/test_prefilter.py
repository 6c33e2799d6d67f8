"""The prefilter of rules by device and site gives exactly what a full scan gives."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.prefilter import Prefilter
from alarmdesk.domain.routing import Facts, RouteSpec, compile_routes, evaluate
from alarmdesk.domain.signal import Location, SourceKind
from alarmdesk.domain.silences import Silences, SilenceSpec, compile_silence, silencing

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
IDS = st.sampled_from(["panel-03E8", "panel-03E9", "panel-1", "cam-a", "cam-ab", "x"])
SITES = st.sampled_from(["Riverside School", "riverside", "Mall", "", "mall west"])
DEVICE_PATTERNS = st.sampled_from(["panel-03E8", "panel-03*", "cam-*", "cam-a", "*-1", "p?nel-1"])
SITE_PATTERNS = st.sampled_from(["riverside*", "RIVERSIDE SCHOOL", "mall*", "*west"])


@st.composite
def matches(draw: st.DrawFn) -> dict[str, object]:
    match: dict[str, object] = {}
    if draw(st.booleans()):
        match["devices"] = draw(st.lists(DEVICE_PATTERNS, min_size=1, max_size=2))
    if draw(st.booleans()):
        match["sites"] = draw(st.lists(SITE_PATTERNS, min_size=1, max_size=2))
    if draw(st.booleans()):
        match["categories"] = [draw(st.sampled_from(["fire", "property"]))]
    return match


def facts(source: str, site: str, category: str) -> Facts:
    return Facts(
        HarmCategory(category),
        "ALRBS",
        2,
        SourceKind.EQUIPMENT,
        source,
        Location(lat=52.0, lon=5.0, site=site or None),
        T0,
    )


@settings(max_examples=300, database=None)
@given(
    st.lists(matches(), min_size=1, max_size=12),
    st.lists(st.booleans(), min_size=12, max_size=12),
    IDS,
    SITES,
    st.sampled_from(["fire", "property"]),
)
def test_routing_with_the_prefilter_is_a_full_scan(rules, conts, source, site, category):
    specs = msgspec.convert(
        [
            {"id": f"r{i}", "match": m, "desks": [f"d{i}"], "continue": conts[i]}
            for i, m in enumerate(rules)
        ],
        list[RouteSpec],
    )
    compiled = compile_routes(specs)
    f = facts(source, site, category)
    assert evaluate(compiled, f, "fb") == evaluate(list(compiled.index.items), f, "fb")


@settings(max_examples=300, database=None)
@given(
    st.lists(matches(), min_size=1, max_size=12), IDS, SITES, st.sampled_from(["fire", "property"])
)
def test_silences_with_the_prefilter_are_a_full_scan(rules, source, site, category):
    held = [
        compile_silence(
            i + 1,
            msgspec.convert(
                {
                    "match": m or {"types": ["ALRBS"]},
                    "reason": "test",
                    "ends_at": "2027-01-01T00:00:00Z",
                },
                SilenceSpec,
            ),
            T0,
            [h.value for h in HarmCategory],
        )
        for i, m in enumerate(rules)
    ]
    f = facts(source, site, category)
    assert silencing(Silences(held), f) == silencing(held, f)


def test_exact_and_prefix_patterns_are_found_by_lookup_and_others_always_tried():
    items = ["a", "b", "c", "d"]
    devices = {"a": ["panel-1"], "b": ["panel-*"], "c": ["*-1"], "d": []}
    sites = {"a": [], "b": [], "c": [], "d": ["Mall*"]}
    index = Prefilter(items, devices.__getitem__, sites.__getitem__)
    assert index.candidates("panel-1", None) == ["a", "b", "c"]
    assert index.candidates("cam-9", "mall west") == ["c", "d"]
    assert index.candidates("cam-9", None) == ["c"]
