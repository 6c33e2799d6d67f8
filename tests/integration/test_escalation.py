"""Escalation through the writer, on SQLite and PostgreSQL: steps fire at their time from the
stored incident, once each, across a restart of the writer; and the writer wakes by itself."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from alarmdesk.bootstrap import audit_chain
from alarmdesk.domain.signal import Location, SignalIn, SourceKind
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import centre, centre_files
from alarmdesk.service.actions import perform
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.conftest import REPO_ROOT, FakeClock, prepare_database
from tests.conftest import test_config as config_for

EXAMPLE = REPO_ROOT / "docs" / "examples" / "small-arc"
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def apply(db_url: str, folder: Path) -> None:
    engine = make_engine(db_url)
    try:
        perform(
            engine,
            audit_chain(config_for(db_url)),
            centre.apply(Actor("cli:test", "operator_of_machine"), centre_files.load(folder)),
            T0,
        )
    finally:
        engine.dispose()


def fire_alarm(key: str) -> SignalIn:
    return SignalIn(
        source_kind=SourceKind.EQUIPMENT,
        source_id="panel-5001",
        type_code="FSTRU",
        occurred_at=T0,
        location=Location(lat=52.09, lon=5.12, zone="4"),
        summary="fire alarm",
        idempotency_key=key,
    )


def escalations(engine: sa.Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.events.c.detail)
            .where(t.events.c.type == "incident.escalated")
            .order_by(t.events.c.id)
        )
        return [dict(r.detail) for r in rows]


def test_steps_fire_at_their_time_once_each_across_a_restart(db_url, services_factory):
    prepare_database(db_url)
    apply(db_url, EXAMPLE)
    clock = FakeClock(T0)
    loop = asyncio.new_event_loop()
    try:
        svc = services_factory(db_url, loop=loop, clock=clock, prepare=False)
        (receipt,) = loop.run_until_complete(svc.writer.submit_signals([fire_alarm("f1")]))
        clock.advance(seconds=59)
        loop.run_until_complete(svc.writer.fire_due())
        assert escalations(svc.engine) == []
        clock.advance(seconds=1)
        loop.run_until_complete(svc.writer.fire_due())
        loop.run_until_complete(svc.writer.fire_due())
        assert [e["step"] for e in escalations(svc.engine)] == [1]
        svc.stop()

        clock.advance(seconds=60)  # step 2 falls due while alarmdesk is down
        again = services_factory(db_url, loop=loop, clock=clock, prepare=False)
        loop.run_until_complete(again.writer.fire_due())
        loop.run_until_complete(again.writer.fire_due())
        steps = escalations(again.engine)
        assert [e["step"] for e in steps] == [1, 2]
        assert steps[1]["add_desks"] == ["technical"]
        with again.engine.connect() as conn:
            desks = {
                r.desk_id
                for r in conn.execute(
                    sa.select(t.incident_desks.c.desk_id).where(
                        t.incident_desks.c.incident_id == receipt.incident_id
                    )
                )
            }
        assert desks == {"fire", "technical"}  # the technical desk's queue has it now
        again.stop()
    finally:
        loop.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_writer_fires_a_due_step_by_itself(db_url, services_factory, tmp_path):
    prepare_database(db_url)
    folder = tmp_path / "centre"
    folder.mkdir()
    for p in EXAMPLE.glob("*.yaml"):
        text = p.read_text().replace("{after_seconds: 60, alert: true}", "{after_seconds: 5}", 1)
        (folder / p.name).write_text(text)
    apply(db_url, folder)
    loop = asyncio.new_event_loop()
    try:
        svc = services_factory(db_url, loop=loop, prepare=False)
        loop.run_until_complete(svc.writer.submit_signals([fire_alarm("f2")]))
        deadline = time.monotonic() + 15
        while not escalations(svc.engine) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [e["step"] for e in escalations(svc.engine)] == [1]
        svc.stop()
    finally:
        loop.close()
