"""Leases (store/leases.py): one holder at a time, renewals keep the fencing token, an
expired lease passes to another node with a new token, a released one at once; and of many
nodes asking at once on PostgreSQL or SQLite, exactly one wins."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from alarmdesk.store import leases
from alarmdesk.store.database import make_engine, upgrade

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=30)


@pytest.fixture
def engine(db_url: str):
    upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def test_one_holder_at_a_time_and_the_token_fences_a_takeover(engine) -> None:
    a = leases.acquire(engine, "retention", "node-a", TTL, T0)
    assert a is not None and a.token == 1 and a.expires_at == T0 + TTL
    assert leases.acquire(engine, "retention", "node-b", TTL, T0 + timedelta(seconds=10)) is None
    renewed = leases.acquire(engine, "retention", "node-a", TTL, T0 + timedelta(seconds=20))
    assert renewed is not None and renewed.token == 1  # a renewal keeps the token
    # a's renewal lapses at T0 + 50 s: b takes over with a new token, and a is refused
    assert leases.acquire(engine, "retention", "node-b", TTL, T0 + timedelta(seconds=49)) is None
    b = leases.acquire(engine, "retention", "node-b", TTL, T0 + timedelta(seconds=50))
    assert b is not None and b.token == 2
    assert leases.acquire(engine, "retention", "node-a", TTL, T0 + timedelta(seconds=51)) is None
    # a's stale lease cannot release b's
    assert not leases.release(engine, renewed, T0 + timedelta(seconds=52))
    assert leases.release(engine, b, T0 + timedelta(seconds=53))
    again = leases.acquire(engine, "retention", "node-a", TTL, T0 + timedelta(seconds=53))
    assert again is not None and again.token == 3
    # leases of other names are independent
    assert leases.acquire(engine, "other", "node-b", TTL, T0 + timedelta(seconds=53)) is not None


def test_of_many_nodes_asking_at_once_exactly_one_wins(engine) -> None:
    for round_ in range(3):
        name = f"race-{round_}"
        start = threading.Barrier(8)
        won: list[str] = []

        def ask(
            node: str,
            name: str = name,
            start: threading.Barrier = start,
            won: list[str] = won,
        ) -> None:
            start.wait()
            if leases.acquire(engine, name, node, TTL, T0) is not None:
                won.append(node)

        threads = [threading.Thread(target=ask, args=(f"node-{i}",)) for i in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert len(won) == 1, won
