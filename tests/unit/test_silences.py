"""Silences: when they are in force (one-off, weekly, past midnight, in a time zone), what they
match, what is refused, and a pipeline that stores but never alarms what they hold back."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.routing import Facts
from alarmdesk.domain.signal import Location, Signal, SourceKind
from alarmdesk.domain.silences import SilenceSpec, check_new_silence, compile_silence, silencing
from alarmdesk.domain.taxonomy import Taxonomy, default_types
from alarmdesk.domain.units import Desk
from alarmdesk.pipeline import Pipeline

CATEGORIES = [h.value for h in HarmCategory]
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)  # a Thursday


def silence(spec: dict[str, object], silence_id: int = 1, now: datetime = NOW):
    return compile_silence(silence_id, msgspec.convert(spec, SilenceSpec), now, CATEGORIES)


def facts(
    source_id: str = "panel-03E8",
    *,
    type_code: str = "ALRBA",
    category: HarmCategory = HarmCategory.PROPERTY,
    site: str | None = "Riverside School",
    at: datetime = NOW,
    lat: float | None = 52.1,
) -> Facts:
    return Facts(
        category,
        type_code,
        2,
        SourceKind.EQUIPMENT,
        source_id,
        Location(lat=lat, lon=5.1 if lat is not None else None, site=site),
        at,
    )


def test_a_one_off_silence_holds_from_its_start_until_its_end_only():
    s = silence(
        {
            "match": {"accounts": ["03e8"]},
            "reason": "panel battery swap",
            "starts_at": "2026-12-03T11:00:00+00:00",
            "ends_at": "2026-12-03T13:00:00+00:00",
        }
    )
    assert silencing([s], facts()) is s
    assert silencing([s], facts(at=NOW - timedelta(hours=1, seconds=1))) is None
    assert silencing([s], facts(at=NOW + timedelta(hours=1))) is None  # the end is exclusive
    assert silencing([s], facts("panel-03E9")) is None


@pytest.mark.parametrize(
    ("local", "held"),
    [
        ("2026-12-01T06:00", True),  # Tuesday 06:00 London = UTC
        ("2026-12-01T07:59", True),
        ("2026-12-01T08:00", False),
        ("2026-12-02T06:30", False),  # Wednesday
        ("2026-12-08T06:30", True),  # the next Tuesday: the window recurs
    ],
)
def test_a_weekly_maintenance_window_recurs_on_its_days_and_hours(local, held):
    s = silence(
        {
            "match": {"sites": ["riverside *"]},
            "reason": "weekly fire-alarm test",
            "starts_at": "2026-11-01T00:00:00+00:00",
            "weekly": [{"days": ["tue"], "hours": "06:00-08:00", "timezone": "Europe/London"}],
        }
    )
    at = datetime.fromisoformat(local).replace(tzinfo=UTC)
    assert (silencing([s], facts(at=at)) is s) is held


def test_a_window_past_midnight_belongs_to_the_day_it_starts_on_in_its_time_zone():
    s = silence(
        {
            "match": {"devices": ["panel-*"]},
            "reason": "night cleaning crew",
            "starts_at": "2026-11-01T00:00:00+00:00",
            "weekly": [{"days": ["fri"], "hours": "22:00-02:00", "timezone": "Europe/Amsterdam"}],
        }
    )
    friday_23_local = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)  # 23:00 CET, Friday
    saturday_01_local = datetime(2026, 12, 5, 0, 0, tzinfo=UTC)  # 01:00 CET, Saturday
    thursday_23_local = datetime(2026, 12, 3, 22, 0, tzinfo=UTC)
    saturday_23_local = datetime(2026, 12, 5, 22, 0, tzinfo=UTC)
    assert silencing([s], facts(at=friday_23_local)) is s
    assert silencing([s], facts(at=saturday_01_local)) is s
    assert silencing([s], facts(at=thursday_23_local)) is None
    assert silencing([s], facts(at=saturday_23_local)) is None


def test_every_condition_given_must_hold():
    s = silence(
        {
            "match": {
                "devices": ["panel-03*"],
                "types": ["alrba"],
                "categories": ["property"],
                "area": {
                    "type": "Polygon",
                    "coordinates": [[[5, 52], [5.2, 52], [5.2, 52.2], [5, 52.2], [5, 52]]],
                },
            },
            "reason": "known faulty PIR",
            "ends_at": "2026-12-04T00:00:00+00:00",
        }
    )
    assert silencing([s], facts()) is s
    for other in (
        facts("cam-1"),
        facts(type_code="ALRF"),
        facts(category=HarmCategory.FIRE),
        facts(lat=53.0),
        facts(lat=None),
    ):
        assert silencing([s], other) is None


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"match": {}, "reason": "all quiet", "ends_at": "2026-12-04T00:00:00+00:00"}, "match"),
        (
            {"match": {"devices": ["x"]}, "reason": "oops", "ends_at": "2026-12-03T11:00:00+00:00"},
            "ends_at",
        ),
        ({"match": {"devices": ["x"]}, "reason": "forever"}, "ends_at"),
        (
            {
                "match": {"categories": ["politics"]},
                "reason": "not this",
                "ends_at": "2026-12-04T00:00:00+00:00",
            },
            "categories",
        ),
        (
            {
                "match": {"devices": ["x"]},
                "reason": "bad zone",
                "weekly": [{"days": ["tue"], "hours": "06:00-08:00", "timezone": "Mars/Base"}],
            },
            "timezone",
        ),
        (
            {
                "match": {"devices": ["x"]},
                "reason": "bad day",
                "weekly": [{"days": ["someday"], "hours": "06:00-08:00"}],
            },
            "weekly",
        ),
        (
            {"match": {"devices": ["x"]}, "reason": "nul\x00", "ends_at": "2026-12-04T00:00:00Z"},
            "reason",
        ),
    ],
)
def test_a_silence_that_could_silence_everything_or_never_end_or_not_parse_is_refused(spec, field):
    with pytest.raises(InvalidField) as info:
        silence(spec)
    assert info.value.field == field


def test_a_pipeline_stores_a_silenced_signal_without_an_incident_and_alarms_after_expiry():
    s = silence(
        {
            "match": {"accounts": ["03E8"]},
            "reason": "engineer on site",
            "ends_at": "2026-12-03T13:00:00+00:00",
        }
    )
    p = Pipeline(Taxonomy(default_types()), [Desk("alarms", "Alarms")], silences=[s])

    def signal(at: datetime) -> Signal:
        return Signal(
            id=int(at.timestamp()),
            idempotency_key=f"k{at.timestamp()}",
            content_digest="d",
            received_at=at,
            source_kind=SourceKind.EQUIPMENT,
            source_id="panel-03E8",
            type_code="ALRBA",
            occurred_at=at,
            location=Location(lat=52.1, lon=5.1),
            summary="",
            payload={},
        )

    held = p.ingest(signal(NOW))
    assert (held.silenced_by, held.incident_id, held.events) == (1, None, [])
    assert not p.incidents
    after = p.ingest(signal(NOW + timedelta(hours=2)))
    assert after.silenced_by is None and after.incident_id is not None


LATER = "2026-12-04T00:00:00+00:00"


@pytest.mark.parametrize(
    ("match", "reason", "ends_at", "field"),
    [
        ({"devices": ["*"]}, "maintenance", LATER, "devices"),  # every device
        ({"devices": ["**"]}, "maintenance", LATER, "devices"),
        ({"devices": ["?*"]}, "maintenance", LATER, "devices"),
        ({"devices": ["[a-z]*"]}, "maintenance", LATER, "devices"),
        ({"sites": ["*"]}, "maintenance", LATER, "sites"),
        ({"devices": ["panel-1", "*"], "types": ["ALRBA"]}, "maintenance", LATER, "devices"),
        ({"devices": ["a\x00"]}, "maintenance", LATER, "devices"),
        ({"sites": ["a\x1bb"]}, "maintenance", LATER, "sites"),
        ({"sites": ["a\nb"]}, "maintenance", LATER, "sites"),
        ({"types": ["A\x00"]}, "maintenance", LATER, "types"),
        ({"devices": ["panel-1"]}, "   ", LATER, "reason"),
        ({"devices": ["panel-1"]}, "maintenance", "9999-12-31T23:59:59+00:00", "ends_at"),
        ({"devices": ["panel-1"]}, "maintenance", "2027-03-04T12:00:01+00:00", "ends_at"),
        ({"devices": ["panel-1"]}, "\u200b\u200c\u200d\u2060\ufeff", LATER, "reason"),
        ({"devices": ["panel-1"]}, "maintenance", "2026-12-02T12:00:00+00:00", "ends_at"),
    ],
)
def test_a_new_silence_that_would_hold_back_every_device_or_site_or_last_for_ever_is_refused(
    match, reason, ends_at, field
):
    """What a tired operator might type: ``*`` for "this panel, whatever its id", a silence
    until the year 9999. Each would hold back alarms nobody meant to silence, for ever."""
    spec = msgspec.convert({"match": match, "reason": reason, "ends_at": ends_at}, SilenceSpec)
    with pytest.raises(InvalidField) as info:
        check_new_silence(spec, NOW)
    assert info.value.field == field and info.value.code == "invalid_value"


def test_a_new_silence_of_patterns_with_a_literal_part_and_up_to_90_days_is_taken():
    for match in (
        {"devices": ["panel-03*"]},
        {"sites": ["riverside school*"]},
        {"devices": ["c?m-1"]},
    ):
        spec = msgspec.convert(
            {"match": match, "reason": "maintenance", "ends_at": "2027-03-03T12:00:00+00:00"},
            SilenceSpec,
        )
        check_new_silence(spec, NOW)
    weekly = msgspec.convert(
        {
            "match": {"devices": ["panel-03E8"]},
            "reason": "weekly test",
            "weekly": [{"days": ["tue"], "hours": "06:00-08:00"}],
        },
        SilenceSpec,
    )
    check_new_silence(weekly, NOW)  # weekly windows may stand until ended


def test_a_call_or_a_duty_report_always_alarms_whatever_silence_matches_it():
    """A silence is for equipment (maintenance, known faults): a person calling about a fire
    at a school whose sprinkler test is silenced, or staff reporting one, is never held
    back. Feeds of other systems may be silenced like equipment."""
    s = silence(
        {"match": {"sites": ["riverside school*"]}, "reason": "sprinkler test", "ends_at": LATER}
    )
    base = facts()
    assert silencing([s], base) is s
    for kind in (SourceKind.CALL, SourceKind.DUTY):
        assert silencing([s], dataclasses.replace(base, source_kind=kind)) is None
    assert silencing([s], dataclasses.replace(base, source_kind=SourceKind.FEED)) is s


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ends_at", "9999-12-31T23:59:59-14:00"),  # cannot be made UTC: was a 500
        ("starts_at", "0001-01-01T00:00:00+14:00"),  # nor this one
        ("ends_at", "9999-06-01T00:00:00+00:00"),  # beyond the last time a client may name
        ("starts_at", "1969-12-31T23:00:00+00:00"),  # before the first
    ],
)
def test_a_time_at_the_edge_of_the_calendar_is_refused_naming_it(field, value):
    spec = {"match": {"devices": ["panel-1"]}, "reason": "maintenance", field: value}
    if field == "starts_at":
        spec["ends_at"] = "2026-12-04T00:00:00+00:00"
    silence(spec)  # it compiles (an offset, an end after its start): a stored one loads
    with pytest.raises(InvalidField) as info:
        check_new_silence(msgspec.convert(spec, SilenceSpec), NOW)
    assert (info.value.field, info.value.code) == (field, "invalid_value")


def test_a_silence_stored_before_the_rules_for_new_ones_still_loads():
    """The writer compiles the stored silences at every start: one a rule for new silences
    now refuses (a pattern of '*', an end in 9999) must still load, or the writer would not
    start. It holds as it did, except over calls and duty reports."""
    stored = silence(
        {
            "match": {"devices": ["*"]},
            "reason": "   ",
            "starts_at": "2026-12-01T00:00:00+00:00",
            "ends_at": "9999-06-01T00:00:00+00:00",
        }
    )
    assert silencing([stored], facts()) is stored


@pytest.mark.parametrize("hours", ["18:00-18:00", "00:00-00:00"])
def test_a_new_weekly_window_that_is_empty_is_refused(hours):
    """Start equal to end holds nothing, yet the silence was listed as active."""
    spec = msgspec.convert(
        {
            "match": {"devices": ["panel-1"]},
            "reason": "night works",
            "weekly": [{"days": ["mon"], "hours": hours, "timezone": "UTC"}],
        },
        SilenceSpec,
    )
    with pytest.raises(InvalidField) as info:
        check_new_silence(spec, NOW)
    assert info.value.field == "weekly"
