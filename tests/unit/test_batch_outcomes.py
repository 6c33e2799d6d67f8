"""The writer's metrics per transaction: signals counted by source kind and outcome."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from alarmdesk.domain.errors import IdempotencyKeyReused
from alarmdesk.domain.signal import SignalIn, decode_one
from alarmdesk.service.batch import Work, outcomes

NOW = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def signal(kind: str, key: str) -> SignalIn:
    body = {
        "source_kind": kind,
        "source_id": "src-1",
        "type_code": "BA",
        "summary": "test",
        "occurred_at": NOW.isoformat(),
        "idempotency_key": key,
    }
    return decode_one(msgspec.json.encode(body), NOW)


def work(*signals: SignalIn, error: BaseException | None = None) -> Work:
    w = Work(None, None, signals=list(signals))  # type: ignore[arg-type]
    w.error = error
    return w


def test_counts_every_signal_once_per_kind_and_outcome_across_requests() -> None:
    works = [
        work(signal("equipment", "a")),
        work(signal("equipment", "b")),
        work(signal("call", "c"), signal("equipment", "d")),
        work(signal("call", "e"), error=IdempotencyKeyReused("reused")),
        Work(None, None),  # type: ignore[arg-type]  # a command: no signals, not counted
    ]
    assert sorted(outcomes(works, failed=False)) == [
        ("call", "idempotency_key_reused", 1),
        ("call", "stored", 1),
        ("equipment", "stored", 3),
    ]


def test_a_failed_transaction_counts_every_signal_as_failed() -> None:
    works = [work(signal("equipment", "a")), work(signal("call", "b"), signal("call", "c"))]
    assert sorted(outcomes(works, failed=True)) == [
        ("call", "failed", 2),
        ("equipment", "failed", 1),
    ]


def test_nothing_to_count() -> None:
    assert outcomes([], failed=False) == []
