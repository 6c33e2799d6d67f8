"""The keys of generic MQTT messages without an id: the same bytes are one message for the
redelivery window, and a restart takes the window back from the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alarmdesk.intake.mqtt_topics import REDELIVERY_SECONDS, Redeliveries

T0 = datetime(2026, 12, 5, 17, 0, tzinfo=UTC)
BASE = "mqtt:site/s1/smoke:0123456789abcdef01234567"


def test_the_same_bytes_keep_their_key_for_the_window_and_get_a_new_one_after() -> None:
    keys = Redeliveries()
    first = keys.key(BASE, T0)
    assert first.startswith(BASE + ":") and len(first) <= 200
    assert keys.key(BASE, T0 + timedelta(seconds=REDELIVERY_SECONDS - 1)) == first
    later = keys.key(BASE, T0 + timedelta(seconds=REDELIVERY_SECONDS))
    assert later != first
    assert keys.key("mqtt:other:ab", T0) != first


def test_a_restart_takes_back_the_keys_stored_within_the_window() -> None:
    before = Redeliveries()
    stored = before.key(BASE, T0)
    after = Redeliveries()  # a new process
    after.remember(stored, T0)
    after.remember("mqtt:site/s1/smoke:m-17", T0)  # a message's own id: not a stamped key
    after.remember("frigate:123.4-abc:yard", T0)
    assert after.key(BASE, T0 + timedelta(seconds=30)) == stored
    assert after.key(BASE, T0 + timedelta(seconds=REDELIVERY_SECONDS + 1)) != stored


def test_the_memory_forgets_what_is_past_its_window() -> None:
    keys = Redeliveries()
    for i in range(10_001):
        keys.key(f"{BASE}{i}", T0)
    keys.key("mqtt:new:ff", T0 + timedelta(seconds=REDELIVERY_SECONDS + 1))
    assert len(keys._keys) == 1
