"""The writer's driver-level inserts and updates (store/bulk.py) store what SQLAlchemy Core
would: the same values read back through the tables, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest
import sqlalchemy as sa

from alarmdesk.store import tables as t
from alarmdesk.store.bulk import BulkInsert, BulkUpdate, read_planned, select_in, stored_time
from alarmdesk.store.database import make_engine
from tests.conftest import prepare_database

AT = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)


def event_row(id_: int, **over: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": id_,
        "incident_id": 7,
        "type": "incident.opened",
        "at": AT,
        "actor": "ct-1",
        "desks": ["east"],
        "detail": {"signal_id": id_, "note": "ünïcode ✓"},
        "snapshot": {"id": 7, "nested": {"list": [1, 2.5, None, True]}},
    }
    row.update(over)
    return row


def test_bulk_insert_stores_what_core_stores(db_url: str) -> None:
    prepare_database(db_url)
    engine = make_engine(db_url)
    bulk = BulkInsert(t.events, engine.dialect.name)
    # another offset: stored as the same instant in UTC
    cet = AT.astimezone(timezone(timedelta(hours=1)))
    snapshot = event_row(0)["snapshot"]
    # an already encoded snapshot (IncidentEvent.snapshot_json) is stored as the dict is
    raw = event_row(4, snapshot=msgspec.Raw(msgspec.json.encode(snapshot)))
    rows = [event_row(1), event_row(2, at=cet), raw]
    with engine.begin() as conn:
        bulk.execute(conn, rows)
        conn.execute(t.events.insert(), [event_row(3)])  # SQLAlchemy Core, for comparison
    with engine.connect() as conn:
        got = {r.id: r._asdict() for r in conn.execute(sa.select(t.events))}
    engine.dispose()
    assert got[1] == rows[0]
    assert got[2] == {**rows[1], "at": AT}
    assert got[3] == event_row(3)
    assert got[4] == event_row(4)


def test_bulk_insert_leaves_a_missing_column_null(db_url: str) -> None:
    prepare_database(db_url)
    engine = make_engine(db_url)
    bulk = BulkInsert(t.incident_desks, engine.dialect.name)
    with engine.begin() as conn:
        bulk.execute(conn, [{"incident_id": 1, "desk_id": "east"}])
    with engine.connect() as conn:
        got = [r._asdict() for r in conn.execute(sa.select(t.incident_desks))]
    engine.dispose()
    assert got == [{"incident_id": 1, "desk_id": "east"}]


def test_bulk_update_sets_the_named_columns_of_each_keyed_row(db_url: str) -> None:
    prepare_database(db_url)
    engine = make_engine(db_url)
    insert = BulkInsert(t.events, engine.dialect.name)
    update = BulkUpdate(t.events, ("actor", "at", "detail"), "id", engine.dialect.name)
    later = AT + timedelta(minutes=5)
    with engine.begin() as conn:
        insert.execute(conn, [event_row(1), event_row(2), event_row(3)])
        update.execute(
            conn,
            [
                {"id": 1, "actor": "op-1", "at": later, "detail": {"n": 1}},
                {"id": 3, "actor": "op-3", "at": later, "detail": {"n": 3}},
            ],
        )
        update.execute(conn, [])  # nothing to do: no statement
    with engine.connect() as conn:
        got = {r.id: r._asdict() for r in conn.execute(sa.select(t.events))}
    engine.dispose()
    assert got[1] == event_row(1, actor="op-1", at=later, detail={"n": 1})
    assert got[2] == event_row(2)  # untouched
    assert got[3] == event_row(3, actor="op-3", at=later, detail={"n": 3})


def test_select_in_reads_times_as_core_reads_them(db_url: str) -> None:
    """The idempotency look-up's driver-level read: the times it gives equal what the table's
    ``UTCDateTime`` gives through Core, whether Core or the driver-level insert wrote them."""
    prepare_database(db_url)
    engine = make_engine(db_url)
    name = engine.dialect.name
    cet = AT.astimezone(timezone(timedelta(hours=1)))
    rows = [event_row(1), event_row(2, at=cet), event_row(3, at=AT.replace(microsecond=0))]
    with engine.begin() as conn:
        BulkInsert(t.events, name).execute(conn, rows[:2])
        conn.execute(t.events.insert(), rows[2:])  # SQLAlchemy Core's own text
    sql = select_in(t.events, ("id", "at", "actor"), "id", 4, name)
    with engine.connect() as conn:
        core = {r.id: r.at for r in conn.execute(sa.select(t.events.c.id, t.events.c.at))}
        driver = {i: stored_time(at) for i, at, _ in conn.exec_driver_sql(sql, (1, 2, 3, 99))}
    engine.dispose()
    assert driver == core == {1: AT, 2: AT, 3: AT.replace(microsecond=0)}
    assert all(at.tzinfo is UTC for at in driver.values() if at is not None)
    assert stored_time(None) is None


def test_read_planned_reads_what_the_driver_reads(db_url: str) -> None:
    prepare_database(db_url)
    engine = make_engine(db_url)
    name = engine.dialect.name
    with engine.begin() as conn:
        BulkInsert(t.events, name).execute(conn, [event_row(1), event_row(2, actor="op-2")])
    sql = select_in(t.events, ("id", "actor", "at"), "id", 3, name)
    with engine.begin() as conn:
        planned = read_planned(conn, sql, (1, 2, 99))
        driver = [tuple(r) for r in conn.exec_driver_sql(sql, (1, 2, 99))]
    engine.dispose()
    assert sorted(planned) == sorted(driver)
    assert sorted((i, a, stored_time(at)) for i, a, at in planned) == [
        (1, "ct-1", AT),
        (2, "op-2", AT),
    ]


def prepared_statements(conn: sa.Connection, like: str) -> int:
    found = conn.exec_driver_sql(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", (like,)
    ).scalar()
    return int(found or 0)


@pytest.mark.postgres
def test_read_planned_is_never_a_prepared_statement_on_postgresql(postgres_url: str) -> None:
    """psycopg prepares a statement it has run five times, and PostgreSQL may then keep one
    generic plan for it, costed when the table was empty: the idempotency look-up slowed
    down as ``signals`` grew (bench/README.md). Read this way it is planned every time."""
    prepare_database(postgres_url)
    engine = make_engine(postgres_url)
    sql = select_in(t.signals, ("id",), "idempotency_key", 2, "postgresql")
    with engine.connect() as conn:
        for i in range(12):
            with conn.begin():
                assert read_planned(conn, sql, (f"k-{i}", "other")) == []
        with conn.begin():
            assert prepared_statements(conn, '%FROM "signals"%') == 0
        # the control: the same read through the connection is prepared by then
        for i in range(12):
            with conn.begin():
                assert list(conn.exec_driver_sql(sql, (f"k-{i}", "other"))) == []
        with conn.begin():
            assert prepared_statements(conn, '%FROM "signals"%') == 1
    engine.dispose()
