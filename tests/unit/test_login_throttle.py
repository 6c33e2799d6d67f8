"""The sign-in throttle: a name locked per address, a wider bound per name over all
addresses, and a full table pruned, never cleared."""

from __future__ import annotations

import pytest

from alarmdesk.domain.errors import TooManyAttempts
from alarmdesk.web.auth import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_name_locked_from_one_address_signs_in_from_another() -> None:
    t = LoginThrottle(per_name=5, per_address=20, window=900, clock=Clock())
    for _ in range(5):
        t.check("operator", "10.9.9.9")
        t.failed("Operator", "10.9.9.9")
    with pytest.raises(TooManyAttempts):
        t.check("OPERATOR", "10.9.9.9")
    t.check("operator", "10.1.1.1")  # the operator's own console


def test_a_name_tried_from_many_addresses_meets_the_wider_bound() -> None:
    t = LoginThrottle(per_name=5, per_address=20, window=900, clock=Clock())
    for i in range(5 * LoginThrottle.NAME_SPREAD):
        address = f"10.0.0.{i // 5}"
        t.check("operator", address)
        t.failed("operator", address)
    with pytest.raises(TooManyAttempts):
        t.check("operator", "10.0.99.1")


def test_a_full_table_forgets_what_is_past_its_window_and_keeps_the_locks() -> None:
    clock = Clock()
    t = LoginThrottle(per_name=5, per_address=20, window=900, clock=clock)
    t.MAX_KEYS = 60
    for i in range(10):
        t.failed(f"old{i}", f"10.1.0.{i}")  # 30 keys
    clock.now += 1000  # those are past the window now
    for _ in range(5):
        t.failed("operator", "10.9.9.9")
    for i in range(10):
        t.failed(f"name{i}", f"10.2.0.{i}")  # over 60 keys: pruned
    assert len(t._fails) <= 60
    assert not any(key.startswith("n:old") for key in t._fails)
    with pytest.raises(TooManyAttempts):
        t.check("operator", "10.9.9.9")  # a flood of names no longer resets every lock
