"""Silences through the writer and from the command line, on SQLite and PostgreSQL: held-back
signals are stored with their silence and open nothing; ending one, or its expiry, lets the
next signal alarm; every change is audited without its reason's text."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
import sqlalchemy as sa

from alarmdesk.bootstrap import audit_chain
from alarmdesk.domain.errors import Conflict, InvalidField, NotFound, ProtectedPurposeError
from alarmdesk.domain.signal import Location, SignalIn, SourceKind
from alarmdesk.domain.silences import SilenceSpec
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import silences
from alarmdesk.service.actions import perform
from alarmdesk.store import tables as t
from tests.conftest import prepare_database
from tests.conftest import test_config as config_for

SUPERVISOR = Actor("user:7", "supervisor")
REASON = "engineer replacing the PIR in the hall"


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def spec(clock, **extra: object) -> SilenceSpec:
    body: dict[str, object] = {
        "match": {"accounts": ["03E8"]},
        "reason": REASON,
        "ends_at": (clock.now + timedelta(hours=1)).isoformat(),
        **extra,
    }
    return msgspec.convert(body, SilenceSpec)


def alarm(n: int) -> SignalIn:
    return SignalIn(
        source_kind=SourceKind.EQUIPMENT,
        source_id="panel-03E8",
        type_code="ALRBA",
        occurred_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        location=Location(lat=37.79, lon=-122.42, zone="2"),
        summary="hall PIR",
        idempotency_key=f"sil-{n}",
    )


def signal_row(engine: sa.Engine, signal_id: int) -> dict[str, object]:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.select(t.signals).where(t.signals.c.id == signal_id)).mappings().one()
        )


def test_a_silence_holds_back_and_ending_it_lets_the_next_alarm_through(
    db_url, services_factory, loop, clock
):
    svc = services_factory(db_url, loop=loop, clock=clock)
    silence_id = loop.run_until_complete(svc.writer.run(silences.create(SUPERVISOR, spec(clock))))
    (held,) = loop.run_until_complete(svc.writer.submit_signals([alarm(1)]))
    assert held.incident_id is None
    assert signal_row(svc.engine, held.signal_id)["silenced_by"] == silence_id
    [listed] = silences.list_silences(svc.engine, clock.now)
    assert (listed["id"], listed["state"], listed["signals"]) == (silence_id, "active", 1)
    assert [s["id"] for s in silences.silenced_signals(svc.engine, silence_id)] == [held.signal_id]

    loop.run_until_complete(svc.writer.run(silences.end(SUPERVISOR, silence_id)))
    (rung,) = loop.run_until_complete(svc.writer.submit_signals([alarm(2)]))
    assert rung.incident_id is not None
    assert silences.list_silences(svc.engine, clock.now) == []
    with pytest.raises(Conflict):
        loop.run_until_complete(svc.writer.run(silences.end(SUPERVISOR, silence_id)))
    with pytest.raises(NotFound):
        loop.run_until_complete(svc.writer.run(silences.end(SUPERVISOR, 999)))

    with svc.engine.connect() as conn:
        entries = [
            json.loads(r.entry)
            for r in conn.execute(sa.select(t.audit_entries.c.entry))
            if '"silence"' in r.entry
        ]
    assert [(e["rule"], e["outcome"]) for e in entries] == [
        ("silence.create", "allowed"),
        ("silence.end", "allowed"),
        ("conflict", "denied"),
        ("not_found", "denied"),
    ]
    assert not any(REASON in json.dumps(e) for e in entries)


def test_a_silence_expires_by_itself(db_url, services_factory, loop, clock):
    svc = services_factory(db_url, loop=loop, clock=clock)
    loop.run_until_complete(svc.writer.run(silences.create(SUPERVISOR, spec(clock))))
    (held,) = loop.run_until_complete(svc.writer.submit_signals([alarm(1)]))
    clock.advance(hours=1)
    (rung,) = loop.run_until_complete(svc.writer.submit_signals([alarm(2)]))
    assert held.incident_id is None and rung.incident_id is not None
    [ended] = silences.list_silences(svc.engine, clock.now, ended=True)
    assert ended["state"] == "expired"


def test_a_silence_made_from_the_command_line_reaches_a_running_writer_within_seconds(
    db_url, services_factory, loop, clock
):
    svc = services_factory(db_url, loop=loop, clock=clock)
    loop.run_until_complete(svc.writer.submit_signals([alarm(0)]))  # the writer has read silences
    perform(
        svc.engine,
        audit_chain(config_for(db_url)),
        silences.create(Actor("cli:root", "operator_of_machine"), spec(clock)),
        clock.now,
    )
    clock.advance(seconds=6)
    (held,) = loop.run_until_complete(svc.writer.submit_signals([alarm(1)]))
    assert held.incident_id is None


def test_a_silence_whose_reason_targets_a_protest_is_refused(db_url, services_factory, loop, clock):
    svc = services_factory(db_url, loop=loop, clock=clock)
    bad = spec(clock, reason="ignore alarms during the protest march")
    with pytest.raises(ProtectedPurposeError):
        loop.run_until_complete(svc.writer.run(silences.create(SUPERVISOR, bad)))
    assert silences.list_silences(svc.engine, clock.now, ended=True) == []


def test_a_silence_for_a_type_not_in_the_taxonomy_is_an_unknown_reference(
    db_url, services_factory, loop, clock
):
    """The API's path (the writer) and the command line's share the rule, like categories'."""
    svc = services_factory(db_url, loop=loop, clock=clock)
    bad = spec(clock, match={"types": ["NOSUCHTYPE"]})
    with pytest.raises(InvalidField) as refused:
        loop.run_until_complete(svc.writer.run(silences.create(SUPERVISOR, bad)))
    assert refused.value.code == "unknown_reference"
    assert silences.list_silences(svc.engine, clock.now, ended=True) == []
    known = spec(clock, match={"types": ["alrba"]})  # a code of the taxonomy, any case
    assert loop.run_until_complete(svc.writer.run(silences.create(SUPERVISOR, known)))


@pytest.mark.slow
def test_the_command_line_adds_lists_and_ends_silences(sqlite_url, tmp_path):
    prepare_database(sqlite_url)
    db = ["--database-url", sqlite_url]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "alarmdesk.cli", "silences", *args, *db],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            check=False,
            env={**os.environ, "COLUMNS": "250"},
        )

    added = cli(
        "add",
        "--account", "03E8",
        "--reason", "weekly test of the sprinklers",
        "--weekly", "tue,thu 06:00-08:00 Europe/London",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "silence 1 created" in added.stdout
    listed = cli("list")
    assert "tue,thu 06:00-08:00" in listed.stdout and "until ended" in listed.stdout
    assert (
        cli(
            "add", "--reason", "everything please", "--ends-at", "2030-01-01T00:00:00+00:00"
        ).returncode
        == 2
    )
    assert cli("add", "--device", "x", "--reason", "no end").returncode == 2
    assert cli("add", "--device", "x", "--reason", "r", "--ends-at", "tomorrow").returncode == 2
    assert cli("end", "1").returncode == 0
    assert cli("end", "1").returncode == 2
    assert "weekly test" in cli("list", "--ended").stdout
