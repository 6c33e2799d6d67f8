"""Supervision: the deadline tracker (pure) and its driver with a fake writer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.signal import to_signal
from alarmdesk.intake.devices import DeviceRegistry, device_from_row
from alarmdesk.intake.supervision import (
    STARTUP_ALLOWANCE,
    StoredState,
    Supervisor,
    Tracker,
    supervision_key,
)
from alarmdesk.pipeline.correlate import correlation_key
from tests.conftest import FakeClock

T0 = 1_800_000_000.0


def test_a_device_that_checks_in_on_time_is_never_due() -> None:
    tr = Tracker(grace=30)
    tr.watch("p1", 90, T0)
    for k in range(1, 50):
        assert tr.due(T0 + 89 * k) == []
        tr.checkin("p1", T0 + 89 * k)
    assert tr.heap_size == 1  # check-ins move the deadline, they push nothing


def test_missing_one_interval_plus_grace_makes_it_due_once() -> None:
    tr = Tracker(grace=30)
    tr.watch("p1", 90, T0)
    assert tr.due(T0 + 120) == []
    assert tr.due(T0 + 120.001) == ["p1"]
    assert tr.is_failed("p1")
    assert tr.due(T0 + 10_000) == []  # not again while it stays silent


def test_the_next_check_in_ends_the_failure() -> None:
    tr = Tracker(grace=30)
    tr.watch("p1", 90, T0)
    tr.due(T0 + 200)
    assert tr.checkin("p1", T0 + 300) is True
    assert tr.checkin("p1", T0 + 310) is False
    assert tr.due(T0 + 310 + 120) == []
    assert tr.due(T0 + 310 + 121) == ["p1"]


def test_a_late_check_in_before_the_heap_entry_comes_up_re_arms_lazily() -> None:
    tr = Tracker(grace=0)
    tr.watch("p1", 100, T0)
    tr.checkin("p1", T0 + 99)  # deadline moves to T0 + 199; the heap still says T0 + 100
    assert tr.due(T0 + 150) == []
    assert tr.heap_size == 1 and tr.next_deadline() == T0 + 199
    assert tr.due(T0 + 200) == ["p1"]


def test_unwatched_devices_are_forgotten() -> None:
    tr = Tracker(grace=0)
    tr.watch("p1", 10, T0)
    tr.unwatch("p1")
    assert tr.due(T0 + 100) == [] and "p1" not in tr
    assert tr.checkin("p1", T0) is False


def test_after_a_restart_a_device_gets_a_fresh_interval() -> None:
    tr = Tracker(grace=30)
    # Last heard of 2 hours ago (only its daily test is stored): not due at once.
    tr.watch("linktest", 90, T0, last=T0 - 7200, startup=True)
    # A daily tester last heard of 23 h 59 min ago: due when its day is up (plus the
    # start-up allowance), not a day later.
    tr.watch("daily", 86400, T0, last=T0 - 86340, startup=True)
    assert tr.due(T0 + 90 + 30) == []
    assert tr.due(T0 + 121) == ["linktest"]
    assert tr.due(T0 + STARTUP_ALLOWANCE + 30) == []
    assert tr.due(T0 + STARTUP_ALLOWANCE + 31) == ["daily"]


def test_a_device_known_missing_stays_missing_until_it_checks_in() -> None:
    tr = Tracker(grace=30)
    tr.watch("p1", 90, T0, failed=True, startup=True)
    assert tr.due(T0 + 10_000) == []
    assert tr.checkin("p1", T0 + 10_000) is True


def test_availability_only_devices_go_down_and_up() -> None:
    tr = Tracker(grace=30)
    tr.watch("nvr", None, T0)
    assert tr.due(T0 + 10**6) == []
    assert tr.down("nvr") is True and tr.down("nvr") is False
    assert tr.checkin("nvr", T0 + 5) is True


def test_due_respects_its_limit() -> None:
    tr = Tracker(grace=0)
    for i in range(10):
        tr.watch(f"p{i}", 10, T0)
    assert len(tr.due(T0 + 11, limit=4)) == 4
    assert len(tr.due(T0 + 11)) == 6


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 4), st.floats(0, 200, allow_nan=False)), max_size=60)
)
def test_the_tracker_agrees_with_a_naive_model(steps: list[tuple[int, float]]) -> None:
    """Device i checks in or time passes; due() reports exactly the devices silent for
    longer than interval + grace, each once per silence."""
    grace, intervals = 5.0, [10.0, 30.0, 60.0, 100.0, 7.0]
    tr = Tracker(grace=grace)
    now = T0
    last = {}
    for i, interval in enumerate(intervals):
        tr.watch(f"d{i}", interval, now)
        last[f"d{i}"] = now
    failed: set[str] = set()
    for device, dt in steps:
        now += dt
        due = set(tr.due(now))
        expected = {
            d
            for d, at in last.items()
            if d not in failed and now - at > intervals[int(d[1:])] + grace
        }
        assert due == expected
        failed |= due
        name = f"d{device}"
        assert tr.checkin(name, now) == (name in failed)
        failed.discard(name)
        last[name] = now


# -- the driver ---------------------------------------------------------------------------------


class FakeSink:
    def __init__(self) -> None:
        self.batches: list[list] = []
        self.fail = False

    async def submit_signals(self, signals):
        if self.fail:
            raise RuntimeError("disk full")
        self.batches.append(list(signals))
        return [None] * len(signals)

    @property
    def signals(self) -> list:
        return [s for b in self.batches for s in b]


PANEL = {
    "id": "panel-1234",
    "kind": "panel",
    "site": "Shop 1",
    "lat": 50.2,
    "lon": 5.2,
    "zones": {},
    "checkin_seconds": 90,
    "settings": {},
}


def supervisor(sink: FakeSink, clock: FakeClock, failed: frozenset[str] = frozenset()):
    sup = Supervisor(sink, clock, grace=30)
    sup.load(
        DeviceRegistry([device_from_row(PANEL)]),
        StoredState(failed=failed, last={}),
        startup=True,
    )
    return sup


async def test_a_silent_panel_opens_one_communication_failure_then_its_restore() -> None:
    clock, sink = FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC)), FakeSink()
    sup = supervisor(sink, clock)
    clock.advance(seconds=119)
    assert await sup.run_once() == 0
    clock.advance(seconds=2)
    assert await sup.run_once() == 1
    (missed,) = sink.signals
    assert missed.type_code == "EQCOMM" and missed.condition == "active"
    assert missed.source_id == "panel-1234" and missed.payload["label"] == "supervision"
    assert missed.location is not None and missed.location.site == "Shop 1"
    assert "expected every 90 s" in missed.summary
    clock.advance(minutes=10)
    assert await sup.run_once() == 0  # still silent: nothing new
    sup.checkin("panel-1234")
    assert await sup.run_once() == 1
    restore = sink.signals[-1]
    assert restore.type_code == "EQCOMM" and restore.condition == "restored"
    assert sup.stats.missed == 1 and sup.stats.restored == 1


async def test_a_miss_the_writer_refused_is_retried() -> None:
    clock, sink = FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC)), FakeSink()
    sup = supervisor(sink, clock)
    sink.fail = True
    clock.advance(seconds=121)
    assert await sup.run_once() == 0
    sink.fail = False
    clock.advance(seconds=6)
    assert await sup.run_once() == 1
    assert sup.stats.store_failures == 1


async def test_a_device_missing_before_a_restart_is_restored_by_its_check_in() -> None:
    clock, sink = FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC)), FakeSink()
    sup = supervisor(sink, clock, failed=frozenset({"panel-1234"}))
    clock.advance(hours=1)
    assert await sup.run_once() == 0
    assert sup.checkin_signal("panel-1234") is not None


async def test_an_availability_device_raises_at_once_and_only_once() -> None:
    clock, sink = FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC)), FakeSink()
    sup = supervisor(sink, clock)
    sup.watch_availability("nvr-frigate", failed=False)
    down = sup.down_signal("nvr-frigate", "offline")
    assert down is not None and down.payload["reason"] == "offline"
    assert sup.down_signal("nvr-frigate", "offline") is None
    up = sup.checkin_signal("nvr-frigate")
    assert up is not None and up.condition == "restored"


def test_the_supervision_correlation_key_is_its_own() -> None:
    assert str(supervision_key("panel-1")) == "eq|panel-1||EQCOMM/supervision"


def test_the_supervision_key_is_the_key_the_pipeline_gives_a_missed_check_in() -> None:
    clock, sink = FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC)), FakeSink()
    sup = supervisor(sink, clock)
    sup.checkin("panel-77")
    clock.advance(hours=1)
    missed = sup.missed_signal("panel-77")
    signal = to_signal(missed, id=1, key="k", fp="", received_at=clock())
    assert correlation_key(signal, HarmCategory.EQUIPMENT) == supervision_key("panel-77")


@pytest.mark.parametrize("hours", [0, 30])
def test_missed_signals_say_how_long_the_device_was_silent(hours: int) -> None:
    clock, sink = FakeClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC)), FakeSink()
    sup = supervisor(sink, clock)
    sup.checkin("panel-1234")
    clock.advance(hours=hours, seconds=121)
    s = sup.missed_signal("panel-1234")
    assert f"nothing received for {int(timedelta(hours=hours, seconds=121).total_seconds())} s" in (
        s.summary
    )
