"""The writer and repositories against real databases: SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import IdempotencyKeyReused, InvalidTransition, NotFound
from alarmdesk.domain.signal import Location, SignalIn, SourceKind
from alarmdesk.service import writer as writer_module
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.store.database import current_revision, head_revision


def signal(
    key: str | None = None,
    *,
    code: str = "FSTRU",
    lat: float = 50.0,
    lon: float = 5.0,
    kind: SourceKind = SourceKind.CALL,
    source: str = "ct-1",
    zone: str | None = None,
    summary: str = "smoke",
) -> SignalIn:
    return SignalIn(
        source_kind=kind,
        source_id=source,
        type_code=code,
        occurred_at=datetime(2026, 11, 25, 9, 59, tzinfo=UTC),
        location=Location(lat=lat, lon=lon, zone=zone),
        summary=summary,
        idempotency_key=key,
    )


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {tb.name: repo.count(conn, tb) for tb in (t.signals, t.incidents, t.events)}


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_migrations_bring_the_schema_to_head(db_url, services_factory, loop) -> None:
    svc = services_factory(db_url, loop=loop)
    assert current_revision(svc.engine) == head_revision()
    inspector = sa.inspect(svc.engine)
    for table in t.metadata.sorted_tables:
        columns = {col["name"] for col in inspector.get_columns(table.name)}
        assert columns == set(table.c.keys()), table.name
        # the migrations make the indexes the tables declare, and no others (each is a
        # B-tree every insert writes to)
        declared = {(ix.name, tuple(c.name for c in ix.columns)) for ix in table.indexes}
        made = {
            (ix["name"], tuple(ix["column_names"]))
            for ix in inspector.get_indexes(table.name)
            if not ix.get("duplicates_constraint")  # PostgreSQL: a unique constraint's own
        }
        assert made == declared, table.name


def test_the_silenced_signals_index_holds_only_silenced_signals(
    db_url, services_factory, loop
) -> None:
    """Nearly every signal is not silenced: those add no entry (and no page to write) to the
    index that finds a silence's signals, which still serves that look-up."""
    svc = services_factory(db_url, loop=loop)
    with svc.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            partial = conn.exec_driver_sql(
                "SELECT partial FROM pragma_index_list('signals')"
                " WHERE name = 'ix_signals_silenced_by_id'"
            ).scalar_one()
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM signals WHERE silenced_by = 7 ORDER BY id"
            ).all()
            assert "USING COVERING INDEX ix_signals_silenced_by_id" in plan[0][3]
        else:
            partial = conn.exec_driver_sql(
                "SELECT indpred IS NOT NULL FROM pg_index"
                " WHERE indexrelid = 'ix_signals_silenced_by_id'::regclass"
            ).scalar_one()
    assert partial


def test_a_committed_signal_is_stored_with_its_incident_and_events(
    db_url, services_factory, loop, clock
) -> None:
    svc = services_factory(db_url, loop=loop, clock=clock)
    (receipt,) = loop.run_until_complete(svc.writer.submit_signals([signal("k1")]))
    assert receipt.received_at == clock.now
    with svc.engine.connect() as conn:
        found = repo.get_incident(conn, receipt.incident_id)
    assert found is not None
    assert found["type_code"] == "FSTRU" and found["status"] == "new"
    assert found["desks"] == ["east"]
    assert [s["idempotency_key"] for s in found["signals"]] == ["k1"]
    assert [e["type"] for e in found["timeline"]] == ["incident.opened"]
    assert found["opened_at"] == clock.now.isoformat()


def test_a_resend_with_the_same_key_stores_nothing_new(db_url, services_factory, loop) -> None:
    svc = services_factory(db_url, loop=loop)
    first = loop.run_until_complete(svc.writer.submit_signals([signal("k1")]))
    before = counts(svc.engine)
    again = loop.run_until_complete(svc.writer.submit_signals([signal("k1")]))
    assert again == first
    assert counts(svc.engine) == before


def test_a_reused_key_with_other_content_is_refused_and_stores_nothing(
    db_url, services_factory, loop
) -> None:
    svc = services_factory(db_url, loop=loop)
    loop.run_until_complete(svc.writer.submit_signals([signal("k1")]))
    before = counts(svc.engine)
    with pytest.raises(IdempotencyKeyReused):
        loop.run_until_complete(
            svc.writer.submit_signals([signal("k2"), signal("k1", summary="other")])
        )
    assert counts(svc.engine) == before


def test_concurrent_submissions_share_transactions(db_url, services_factory, loop) -> None:
    svc = services_factory(db_url, loop=loop)

    async def burst() -> list:
        return await asyncio.gather(
            *(
                svc.writer.submit_signals(
                    [signal(f"k{i}", source=f"panel-{i}", kind=SourceKind.EQUIPMENT, code="ALRBS")]
                )
                for i in range(300)
            )
        )

    receipts = loop.run_until_complete(burst())
    assert len({r[0].signal_id for r in receipts}) == 300
    assert counts(svc.engine)["signals"] == 300
    assert svc.writer.batches < 300  # group commit: several signals per transaction


def test_under_load_the_writer_gathers_requests_briefly_and_a_lone_one_never_waits(
    db_url, services_factory, loop
) -> None:
    """Group commit under load (writer.GATHER_BUSY): after a transaction of 8 requests or more,
    a request that arrives within ``gather`` of the first shares its transaction; after a
    quiet one, a request commits at once. The window is long here so that timing cannot
    decide the test; in service it is half a millisecond."""
    svc = services_factory(db_url, loop=loop)
    writer = svc.writer
    writer.gather = 2.0

    def one(key: str):
        return writer.submit_signals([signal(key, source=key, kind=SourceKind.EQUIPMENT)])

    started = time.monotonic()
    loop.run_until_complete(one("alone"))  # nothing before it: no wait
    assert time.monotonic() - started < 1.0

    async def two_apart() -> list:
        first = asyncio.ensure_future(one(f"first-{writer.batches}"))
        await asyncio.sleep(0.3)  # the writer holds the first, waiting for more
        second = asyncio.ensure_future(one(f"second-{writer.batches}"))
        return [r[0] for r in await asyncio.gather(first, second)]

    writer._last_requests = writer_module.GATHER_BUSY  # as after a busy transaction
    before = writer.batches
    first, second = loop.run_until_complete(two_apart())
    assert writer.batches == before + 1  # one transaction, one flush
    assert second.signal_id == first.signal_id + 1

    writer.gather = 0.0  # [writer] gather_ms = 0: never waits
    writer._last_requests = writer_module.GATHER_BUSY
    before = writer.batches
    loop.run_until_complete(two_apart())
    assert writer.batches == before + 2
    assert counts(svc.engine)["signals"] == 5


def test_commands_are_persisted_and_their_refusals_change_nothing(
    db_url, services_factory, loop, clock
) -> None:
    svc = services_factory(db_url, loop=loop, clock=clock)
    (r,) = loop.run_until_complete(svc.writer.submit_signals([signal("k1")]))
    run = loop.run_until_complete
    clock.advance(seconds=20)
    run(svc.writer.submit_command(c.Acknowledge(r.incident_id, "op")))
    clock.advance(seconds=40)
    view = run(svc.writer.submit_command(c.Dispatch(r.incident_id, "op", units=("E1", "E2"))))
    assert view["status"] == "dispatched" and view["units"] == ["E1", "E2"]
    before = counts(svc.engine)
    with pytest.raises(InvalidTransition):
        run(svc.writer.submit_command(c.Acknowledge(r.incident_id, "op")))
    assert counts(svc.engine) == before
    clock.advance(minutes=5)
    run(svc.writer.submit_command(c.Resolve(r.incident_id, "op", disposition="handled")))
    run(svc.writer.submit_command(c.Close(r.incident_id, "op")))
    with svc.engine.connect() as conn:
        found = repo.get_incident(conn, r.incident_id)
        units = {u.id: u for u in repo.load_units(conn)}
    assert found is not None and found["status"] == "closed"
    assert found["disposition"] == "handled"
    assert found["acknowledged_at"] == datetime(2026, 11, 25, 10, 0, 20, tzinfo=UTC).isoformat()
    assert [e["type"] for e in found["timeline"]] == [
        "incident.opened",
        "incident.transitioned",
        "incident.transitioned",
        "incident.transitioned",
        "incident.transitioned",
    ]
    assert units["E1"].status.value == "available" and units["E1"].incident_id is None
    # A closed incident is final: acting on it is a conflict, not "not found".
    with pytest.raises(InvalidTransition, match="closed"):
        run(svc.writer.submit_command(c.AddNote(r.incident_id, "op", text="late")))
    with pytest.raises(NotFound):
        run(svc.writer.submit_command(c.Acknowledge(99999, "op")))


def test_state_is_rebuilt_from_the_database_after_a_restart(db_url, services_factory, loop) -> None:
    svc = services_factory(db_url, loop=loop)
    run = loop.run_until_complete
    (r,) = run(
        svc.writer.submit_signals(
            [signal("k1", kind=SourceKind.EQUIPMENT, code="ALRBS", source="panel-9", zone="2")]
        )
    )
    run(svc.writer.submit_command(c.Dispatch(r.incident_id, "op", units=("E3",))))
    svc.stop()
    again = services_factory(db_url, loop=loop, prepare=False)
    (r2,) = run(
        again.writer.submit_signals(
            [signal("k2", kind=SourceKind.EQUIPMENT, code="ALRBS", source="panel-9", zone="2")]
        )
    )
    assert r2.incident_id == r.incident_id, "the repeat folds into the incident opened before"
    assert r2.signal_id == r.signal_id + 1
    assert again.writer.pipeline is not None
    assert again.writer.pipeline.units["E3"].incident_id == r.incident_id


def test_events_have_monotonic_ids_and_replay_in_order(db_url, services_factory, loop) -> None:
    svc = services_factory(db_url, loop=loop)
    run = loop.run_until_complete
    for i in range(5):
        run(svc.writer.submit_signals([signal(f"k{i}", lat=50 + i, lon=5)]))
    with svc.engine.connect() as conn:
        rows = repo.events_after(conn, 2, 100)
    assert [r["id"] for r in rows] == [3, 4, 5]


def test_incidents_are_listed_with_filters_and_cursor_paging(
    db_url, services_factory, loop
) -> None:
    svc = services_factory(db_url, loop=loop)
    run = loop.run_until_complete
    for i in range(7):
        run(svc.writer.submit_signals([signal(f"w{i}", lat=50 + i * 0.5, lon=-5)]))
    for i in range(3):
        run(svc.writer.submit_signals([signal(f"e{i}", code="CARDIAC", lat=50 + i * 0.5, lon=5)]))
    with svc.engine.connect() as conn:
        page, cursor = repo.list_incidents(
            conn, repo.IncidentFilter(desks=("west",)), limit=4, before_id=None
        )
        assert len(page) == 4 and cursor is not None
        rest, end = repo.list_incidents(
            conn,
            repo.IncidentFilter(desks=("west",)),
            limit=4,
            before_id=repo.decode_cursor(cursor),
        )
        assert len(rest) == 3 and end is None
        ids = [x["id"] for x in page + rest]
        assert ids == sorted(ids, reverse=True)
        cardiac, _ = repo.list_incidents(
            conn,
            repo.IncidentFilter(type_codes=("CARDIAC",), priorities=(1,)),
            limit=50,
            before_id=None,
        )
        assert len(cardiac) == 3


def test_every_collected_signal_is_on_record_in_fewer_audit_entries(
    db_url, services_factory, loop
) -> None:
    import json

    from alarmdesk.safeguards.audit import Actor

    svc = services_factory(db_url, loop=loop)
    panel = Actor("token:9", "intake", "abcd", "127.0.0.1")

    async def burst() -> list:
        return await asyncio.gather(
            *(
                svc.writer.submit_signals(
                    [signal(f"k{i}", source=f"panel-{i}", kind=SourceKind.EQUIPMENT, code="ALRBS")],
                    actor=panel,
                )
                for i in range(200)
            )
        )

    loop.run_until_complete(burst())
    with svc.engine.connect() as conn:
        entries = [json.loads(r.entry) for r in conn.execute(sa.select(t.audit_entries.c.entry))]
    collect = [e for e in entries if e["op"] == "collect"]
    assert sum(e["detail"]["count"] for e in collect) == 200
    assert sum(e["detail"]["requests"] for e in collect) == 200
    assert all(e["actor"] == "token:9" and e["credential"] == "abcd" for e in collect)
    assert len(collect) == svc.writer.batches  # one per transaction, not one per request
