"""Distributed mode: a queued signal that fails alone, try after try, is parked and its
partition goes on; nothing is dropped, and the command line puts it back once the fault is
mended (service/parked.py, docs/operations.md "A signal that cannot be stored").

On real NATS JetStream and real PostgreSQL, with a defect planted on the pipeline for some
signals (as tests/e2e/test_bad_input.py plants one for the single-machine path).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy as sa

from alarmdesk.bootstrap import audit_chain
from alarmdesk.bus.jetstream import LogSettings, QueuedSignal
from alarmdesk.domain.signal import SignalIn, SourceKind
from alarmdesk.safeguards.audit import Actor
from alarmdesk.safeguards.retention_policy import RetentionConfig
from alarmdesk.service import handlers, parked
from alarmdesk.service.cluster import Node
from alarmdesk.service.retention import run_retention
from alarmdesk.store import parked as parked_store
from alarmdesk.store import tables as t
from alarmdesk.store.audit import export_lines

ACTOR = Actor("token:1", "intake", "ab" * 8, "127.0.0.1")
POISON = "meets a defect"


def panel_signal(n: int, summary: str = "") -> SignalIn:
    return SignalIn(
        source_kind=SourceKind.EQUIPMENT,
        source_id="panel-7",
        type_code="BURG",
        occurred_at=datetime.now(UTC),
        summary=summary or f"signal {n}",
        idempotency_key=f"panel-7-{n}",
    )


def plant_defect(monkeypatch: pytest.MonkeyPatch) -> None:
    apply_signals = handlers.apply_signals

    def meets_a_bug(state: Any, signals: Any, *args: Any) -> Any:
        if any(s.summary == POISON for s in signals):
            raise ZeroDivisionError("a defect this signal meets")
        return apply_signals(state, signals, *args)

    monkeypatch.setattr(handlers, "apply_signals", meets_a_bug)


def stored(engine: sa.Engine) -> list[str]:
    s = t.signals
    with engine.connect() as conn:
        return list(conn.execute(sa.select(s.c.idempotency_key).order_by(s.c.id)).scalars())


def parked_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return parked_store.parked_rows(conn, retried=True)


def parked_again(engine: sa.Engine) -> list[dict[str, Any]]:
    """Parked signals waiting after a retry: put back, failed again, parked again."""
    return [r for r in parked_rows(engine) if r["retried_at"] is None and r["retries"]]


def audit(engine: sa.Engine, object_type: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        lines = [x["entry"] for x in export_lines(conn) if x["kind"] == "entry"]
    return [e for e in lines if e["object_type"] == object_type]


async def until(check: Any, within: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not reached in time"
        await asyncio.sleep(0.05)


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", "parked", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},  # a table's cells on one line each
    )


@pytest.mark.postgres
@pytest.mark.slow  # parks after three tries a second apart, and runs the command line
async def test_a_signal_that_fails_alone_is_parked_its_partition_goes_on_and_it_comes_back(
    services_factory: Any,
    postgres_url: str,
    nats_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    svc = services_factory(postgres_url, loop=asyncio.get_running_loop())
    engine = svc.engine
    stream = f"TEST_{uuid.uuid4().hex[:10]}"
    node = Node(LogSettings(nats_url, stream, partitions=1), engine, "node-a")
    await node.connect()
    plant_defect(monkeypatch)
    # One partition, in this order: a good signal, four that meet the defect (more than the
    # writer tries alone in one transaction: the fourth is left untried at first), and six
    # good ones behind them. Published before the node consumes: one batch.
    sent = [panel_signal(0)]
    sent += [panel_signal(n, POISON) for n in range(1, 5)]
    sent += [panel_signal(n) for n in range(5, 11)]
    for s in sent:
        await node.publish([s], ACTOR)
    taken_at = datetime.now(UTC)
    good = [s.idempotency_key for s in sent if s.summary != POISON]
    bad = [s.idempotency_key for s in sent if s.summary == POISON]
    node.start_consuming(svc.writer)
    try:
        await until(lambda: len(parked_rows(engine)) == 4 and len(stored(engine)) == 7, 90)
        # the signals behind the four were stored (in their order), the four parked
        assert stored(engine) == good
        rows = parked_rows(engine)
        assert [r["queued"]["signal"]["idempotency_key"] for r in rows] == bad
        for r in rows:
            assert r["attempts"] == parked.PARK_AFTER
            assert r["error"] == "ZeroDivisionError: a defect this signal meets"
            assert r["partition"] == 0 and r["retried_at"] is None and r["retries"] == 0
            queued = r["queued"]
            assert queued["actor"]["id"] == "token:1"  # the sender, for the retry's audit
            assert datetime.fromisoformat(queued["received_at"]) <= taken_at
        # acknowledged, the parked ones too: the log holds nothing more for the partition
        assert await _drained(node, stream)
        parked_total = "alarmdesk_signals_parked_total"
        assert svc.writer.metrics.registry.get_sample_value(parked_total) == 4
        collected = audit(engine, "parked_signal")
        assert [(e["op"], e["actor"], e["rule"]) for e in collected] == [
            ("collect", "token:1", "parked")
        ] * 4
        assert {e["object_id"] for e in collected} == {str(r["id"]) for r in rows}
        assert all(e["detail"]["error"] == "ZeroDivisionError" for e in collected)

        # The command line lists them (an audited read), as a table and as JSON lines.
        config = tmp_path / "alarmdesk.toml"
        config.write_text(
            f'[database]\nurl = "{postgres_url}"\n'
            f'[audit]\nkey_file = "{svc.config.audit.key_file}"\n'
            f'[nats]\nurl = "{nats_url}"\nstream = "{stream}"\npartitions = 1\n'
        )
        listed = await asyncio.to_thread(cli, config, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        lines = [json.loads(line) for line in listed.stdout.splitlines()]
        assert [x["idempotency_key"] for x in lines] == bad
        assert lines[0]["source"] == "equipment:panel-7" and lines[0]["type_code"] == "BURG"
        table = await asyncio.to_thread(cli, config, "list")
        assert "ZeroDivisionError" in table.stdout and "panel-7" in table.stdout
        assert [e["rule"] for e in audit(engine, "parked_signals")] == ["parked.list"] * 2

        # Bad requests: nothing named, an id that is not waiting.
        nothing = await asyncio.to_thread(cli, config, "retry")
        assert nothing.returncode == 2 and "--all" in nothing.stderr
        unknown = await asyncio.to_thread(cli, config, "retry", "999999")
        assert unknown.returncode == 2 and "999999" in unknown.stderr
        assert "not_found" in unknown.stderr

        # Put back while the defect still holds: it fails again and is parked again, in its
        # row (its retry counted), while the partition goes on.
        first = str(rows[0]["id"])
        still = await asyncio.to_thread(cli, config, "retry", first)
        assert still.returncode == 0, still.stderr
        await until(lambda: len(parked_again(engine)) == 1, 60)
        (row,) = parked_again(engine)
        assert row["id"] == rows[0]["id"] and row["attempts"] == parked.PARK_AFTER
        assert row["parked_at"] > rows[0]["parked_at"] and len(stored(engine)) == 7

        # The fault mended (an upgrade): the first is put back and stored, as it was sent.
        monkeypatch.undo()
        again = await asyncio.to_thread(cli, config, "retry", first)
        assert again.returncode == 0, again.stderr
        assert "1 parked signal(s) put back" in again.stdout
        await until(lambda: len(stored(engine)) == 8)
        s = t.signals
        with engine.connect() as conn:
            back = conn.execute(sa.select(s).where(s.c.idempotency_key == bad[0])).one()
        assert back.received_at == datetime.fromisoformat(rows[0]["queued"]["received_at"])
        # once put back it is no longer waiting: a second retry of it is refused
        twice = await asyncio.to_thread(cli, config, "retry", first)
        assert twice.returncode == 2 and "not_found" in twice.stderr
        # the rest, all at once
        rest = await asyncio.to_thread(cli, config, "retry", "--all")
        assert rest.returncode == 0, rest.stderr
        assert "3 parked signal(s) put back" in rest.stdout
        await until(lambda: len(stored(engine)) == 11)
        assert sorted(stored(engine)) == sorted(good + bad)  # each once
        after = parked_rows(engine)
        assert [r["retries"] for r in after] == [2, 1, 1, 1]
        assert all(r["retried_at"] is not None for r in after)
        assert (await asyncio.to_thread(cli, config, "list")).stdout.strip() == (
            "no parked signals"
        )
        entries = audit(engine, "parked_signal")[4:]
        assert [(e["op"], e["rule"], e["detail"].get("count")) for e in entries] == [
            ("alter", "parked.retry", 1),  # put back with the defect still there
            ("collect", "parked", None),  # parked again
            ("alter", "parked.retry", 1),
            ("alter", "parked.retry", 3),
        ]
    finally:
        await node.stop()
        await node.intake.delete_stream()
        await node.close()


async def _drained(node: Node, stream: str) -> bool:
    """The stream holds no message (acknowledged ones leave a work-queue stream)."""
    for _ in range(100):
        if (await node.intake.js.stream_info(stream)).state.messages == 0:
            return True
        await asyncio.sleep(0.05)
    return False


def test_parked_signals_expire_with_the_signals_class(db_url: str, services_factory: Any) -> None:
    """Parked signals are signal data: erased once the signals period has passed since they
    were received, waiting or put back, with an ``erase`` entry that counts them."""
    svc = services_factory(db_url)
    engine = svc.engine
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def item(n: int, received: datetime) -> parked_store.Parking:
        q = QueuedSignal(panel_signal(n, POISON), received, ACTOR)
        return parked_store.Parking(
            f"panel-7-{n}#x", 0, received, msgspec.to_builtins(q), "E: x", 3
        )

    with engine.begin() as conn:
        ids = parked_store.park(conn, [item(1, t0), item(2, t0 + timedelta(days=20))], t0)
        parked_store.mark_retried(conn, [(ids[0], t0)], t0)
    policy = RetentionConfig(signals_days=10)
    chain = audit_chain(svc.config)
    dry = run_retention(engine, policy, chain, t0 + timedelta(days=15), dry_run=True)
    assert dry.counts["signals"] == 1
    done = run_retention(engine, policy, chain, t0 + timedelta(days=15))
    assert done.counts["signals"] == 1
    assert [r["id"] for r in parked_rows(engine)] == ids[1:]
    erased = [e for e in audit(engine, "signals") if e["op"] == "erase"]
    assert [e["detail"]["parked_signals"] for e in erased] == [1]
    run_retention(engine, policy, chain, t0 + timedelta(days=31))
    assert parked_rows(engine) == []
