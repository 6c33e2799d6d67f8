"""What the consuming node does with each result of a partition's batch (service/cluster.py,
``_store_batch``): store, refuse for good, try again, or park after ``PARK_AFTER`` tries.

The writer here is a stand-in that answers what it is told to, so that every kind of result
is met; tests/integration/test_parked.py runs the same path on real NATS and PostgreSQL
with a real writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alarmdesk.bus.jetstream import QueuedSignal, message_id
from alarmdesk.domain.errors import IdempotencyKeyReused, WriterStopped
from alarmdesk.domain.signal import SignalIn, SourceKind
from alarmdesk.service import parked
from alarmdesk.service.batch import Queued
from alarmdesk.service.cluster import _Faults, _store_batch
from alarmdesk.service.metrics import Metrics
from alarmdesk.service.writer import FailedAlone
from alarmdesk.store.leases import Lease

Parking = list[list[tuple[str, int]]]  # what parked.park was asked, each time: (key, tries)
NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
LEASE = Lease("intake-0", "node-a", 1, NOW + timedelta(seconds=15))


def queued(n: int) -> QueuedSignal:
    signal = SignalIn(
        source_kind=SourceKind.EQUIPMENT,
        source_id="panel-1",
        type_code="BURG",
        occurred_at=NOW,
        summary=f"signal {n}",
        idempotency_key=f"k-{n}",
    )
    return QueuedSignal(signal, NOW, None)


class Writer:
    """Answers each signal (by its key) with the result it is given, and records what it was
    handed. Parking (``run``) answers a row id per signal ``parked.park`` was asked for."""

    def __init__(self, answers: dict[str, Any], parking: Parking) -> None:
        self.answers = answers
        self.parking = parking
        self.handed: list[list[str]] = []
        self.metrics = Metrics()

    async def submit_queued(self, requests: Sequence[Queued]) -> list[Any]:
        keys = [r.signals[0].idempotency_key or "" for r in requests]
        self.handed.append(keys)
        return [self.answers.get(k, []) for k in keys]

    async def run(self, action: Any) -> list[int]:
        return list(range(1, len(self.parking[-1]) + 1))


@pytest.fixture
def spy_park(monkeypatch: pytest.MonkeyPatch) -> Parking:
    """Records what ``parked.park`` is asked to park (key, tries)."""
    asked: list[list[tuple[str, int]]] = []
    park = parked.park

    def record(p: int, lease: Any, failures: Sequence[parked.Failure]) -> Any:
        asked.append([(f.queued.signal.idempotency_key or "", f.attempts) for f in failures])
        return park(p, lease, failures)

    monkeypatch.setattr(parked, "park", record)
    return asked


async def test_a_signal_failing_alone_is_tried_again_then_parked_and_skipped(
    spy_park: Parking,
) -> None:
    batch = [queued(1), queued(2), queued(3)]
    writer = Writer({"k-2": FailedAlone(ZeroDivisionError("a defect"))}, spy_park)
    faults = _Faults()
    for attempt in range(1, parked.PARK_AFTER):
        with pytest.raises(ZeroDivisionError):  # the batch is tried again
            await _store_batch(writer, faults, 0, LEASE, batch)  # type: ignore[arg-type]
        assert faults.tries == {message_id(batch[1].signal): attempt}
    await _store_batch(writer, faults, 0, LEASE, batch)  # type: ignore[arg-type]
    assert spy_park == [[("k-2", parked.PARK_AFTER)]]
    assert writer.metrics.registry.get_sample_value("alarmdesk_signals_parked_total") == 1
    assert writer.handed == [["k-1", "k-2", "k-3"]] * parked.PARK_AFTER
    # the batch is done: nothing is remembered for the next one
    assert faults.tries == {} and faults.parked == set()


async def test_a_parked_signal_is_not_handed_again_while_its_batch_is_retried(
    spy_park: Parking,
) -> None:
    """Parked, but another signal of the batch still needs a try: the batch comes again
    without the parked one."""
    batch = [queued(1), queued(2), queued(3)]
    writer = Writer(
        {"k-1": FailedAlone(ZeroDivisionError("x")), "k-3": ConnectionResetError("db away")},
        spy_park,
    )
    faults = _Faults()
    for _ in range(parked.PARK_AFTER):
        with pytest.raises((ZeroDivisionError, ConnectionResetError)):
            await _store_batch(writer, faults, 0, LEASE, batch)  # type: ignore[arg-type]
    assert spy_park == [[("k-1", parked.PARK_AFTER)]]
    del writer.answers["k-3"]  # the database is back
    await _store_batch(writer, faults, 0, LEASE, batch)  # type: ignore[arg-type]
    assert writer.handed[-1] == ["k-2", "k-3"]  # k-1 is parked: acknowledged with the batch
    assert len(spy_park) == 1


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(ConnectionResetError("db away"), id="a cause that may be every signal's"),
        pytest.param(WriterStopped("stopping"), id="the writer stopping (Unavailable)"),
    ],
)
async def test_what_is_not_a_signals_own_fault_is_tried_for_ever(
    spy_park: Parking, answer: Exception
) -> None:
    batch = [queued(1)]
    writer = Writer({"k-1": answer}, spy_park)
    faults = _Faults()
    for _ in range(parked.PARK_AFTER * 3):
        with pytest.raises(type(answer)):
            await _store_batch(writer, faults, 0, LEASE, batch)  # type: ignore[arg-type]
    assert spy_park == [] and faults.tries == {}


async def test_a_refusal_for_good_is_acknowledged_not_parked(spy_park: Parking) -> None:
    batch = [queued(1), queued(2)]
    writer = Writer({"k-1": IdempotencyKeyReused("k-1 was used for other content")}, spy_park)
    await _store_batch(writer, _Faults(), 0, LEASE, batch)  # type: ignore[arg-type]
    assert spy_park == [] and writer.handed == [["k-1", "k-2"]]
