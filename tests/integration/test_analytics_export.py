"""The analytics export over a real database (SQLite and PostgreSQL): imported calls and
alarmdesk's own resolved incidents copied once each, incrementally; an export that stopped
between its parts and its manifest leaves no duplicate; the retention job's erasures leave
the store too; ``alarmdesk analytics export`` (docs/analytics.md, "The analytics store")."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from alarmdesk.analytics.parts import OlderFormat, PartStore
from alarmdesk.analytics.queries import Selection
from alarmdesk.bootstrap import analytics_store, audit_chain
from alarmdesk.config import Config
from alarmdesk.safeguards.retention_policy import RetentionConfig
from alarmdesk.service.analytics import ExportStopped, export, open_analytics, prune
from alarmdesk.service.retention import run_retention
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine, upgrade
from tests.conftest import test_config as config_for
from tests.integration.test_history_import import (
    NOW,
    WEEK_CALLS,
    audit,
    cli,
    import_week,
    said,
)
from tests.integration.test_history_import import week as week_records


@pytest.fixture
def cfg(db_url: str) -> Config:
    upgrade(db_url)
    return config_for(db_url)


@pytest.fixture
def engine(cfg: Config) -> Any:
    engine = make_engine(cfg.database.url)
    yield engine
    engine.dispose()


week = week_records

EVERYTHING = Selection(datetime(1900, 1, 1, tzinfo=UTC), datetime(2999, 1, 1, tzinfo=UTC))


def keys(parts: PartStore) -> list[tuple[bool, str | None, str]]:
    """Every call in the committed parts, as (own, source, call id)."""
    out: list[tuple[bool, str | None, str]] = []
    for files in parts.files(parts.manifest()):
        table = pq.read_table(files.calls, columns=["own", "source", "call_id"])
        out += list(
            zip(
                table.column("own").to_pylist(),
                table.column("source").to_pylist(),
                table.column("call_id").to_pylist(),
                strict=True,
            )
        )
    return out


def unit_rows(parts: PartStore) -> int:
    return sum(p.units for p in parts.manifest().parts)


def test_the_export_copies_each_imported_call_once_and_again_nothing(cfg, engine) -> None:
    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    chain = audit_chain(cfg)
    first = export(engine, parts, chain, now=NOW, part_calls=1500)
    assert (first.calls, first.units, first.parts) == (WEEK_CALLS, 7704, 3)
    again = export(engine, parts, chain, now=NOW)
    assert (again.calls, again.parts) == (0, 0)
    import_week(cfg, engine, source="sf-copy")  # the same file under another source
    third = export(engine, parts, chain, now=NOW)
    assert third.calls == WEEK_CALLS
    found = keys(parts)
    assert len(found) == len(set(found)) == 2 * WEEK_CALLS
    assert {s for _, s, _ in found} == {"sf", "sf-copy"}
    # one export entry per export that copied calls: counts and watermarks, never a call
    entries = audit(engine, "export")
    assert [e["detail"]["calls"] for e in entries] == [WEEK_CALLS, WEEK_CALLS]
    assert all(e["object_type"] == "analytics_store" for e in entries)
    assert entries[1]["detail"]["from"] == entries[0]["detail"]["to"]


def test_an_export_merges_small_parts_and_loses_none_of_their_calls(cfg, engine) -> None:
    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    chain = audit_chain(cfg)
    assert export(engine, parts, chain, now=NOW, part_calls=300).parts == 12  # 11 × 300 + 260
    import_week(cfg, engine, source="sf-copy")
    # with parts of 4,000, the twelve are small (under 1,000): merged into one; the new part
    # (3,560 calls) is not small and stays as it is
    assert export(engine, parts, chain, now=NOW, part_calls=4000).calls == WEEK_CALLS
    assert [p.calls for p in parts.manifest().parts] == [WEEK_CALLS, WEEK_CALLS]
    found = keys(parts)
    assert len(found) == len(set(found)) == 2 * WEEK_CALLS
    named = {n for p in parts.manifest().parts for n in p.file_names}
    assert {p.name for p in parts.directory.glob("*.parquet")} == named
    with open_analytics(parts) as figures:
        assert figures.count(EVERYTHING) == 2 * WEEK_CALLS


def test_reports_share_one_database_until_the_parts_change(cfg, engine) -> None:
    """One DuckDB per set of committed parts: a report after the first reads the files'
    footers from its cache; an export that commits parts starts a new one."""
    import threading

    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    chain = audit_chain(cfg)
    export(engine, parts, chain, now=NOW)
    with open_analytics(parts) as one, open_analytics(parts) as two:
        assert one._database is two._database and one.con is not two.con
        old = one._database
    import_week(cfg, engine, source="sf-copy")
    export(engine, parts, chain, now=NOW)
    counts: list[int] = []

    def report() -> None:
        with open_analytics(parts) as figures:
            counts.append(figures.count(EVERYTHING))

    threads = [threading.Thread(target=report) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert counts == [2 * WEEK_CALLS] * 4
    with open_analytics(parts) as after:
        assert after._database is not old


def test_a_store_of_an_earlier_format_is_exported_afresh(cfg, engine) -> None:
    """A store written by an earlier alarmdesk (format 1: unsorted files, a list of kinds in
    the calls) is not read; the next export writes it again from the database."""
    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    chain = audit_chain(cfg)
    parts.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    (parts.directory / "calls-000001.parquet").write_bytes(b"format 1's columns")
    (parts.directory / "units-000001.parquet").write_bytes(b"format 1's columns")
    old = {
        "database": parts.database,
        "format": 1,
        "watermark": {"history_id": 3000, "event_id": 0},  # …which the new export ignores
        "parts": [{"number": 1, "calls": 3000, "units": 6000}],
        "next_part": 2,
    }
    (parts.directory / "manifest.json").write_bytes(msgspec.json.encode(old))
    with pytest.raises(OlderFormat, match="format 1, this alarmdesk reads 2"):
        parts.manifest()
    assert prune(engine, parts, RetentionConfig(), NOW) == 0  # left to the export
    run = export(engine, parts, chain, now=NOW)
    assert (run.calls, run.strays) == (WEEK_CALLS, 2)  # all of them; the old files removed
    found = keys(parts)
    assert len(found) == len(set(found)) == WEEK_CALLS
    assert parts.manifest().format == 2


def test_the_store_is_readable_by_its_owner_only(cfg, engine) -> None:
    """Incident data past the audit log: the directory is 0700 whatever the umask, and a
    directory made beforehand with wider rights is narrowed."""
    import stat

    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    parts.directory.mkdir(parents=True, exist_ok=True)  # as a deployment might make it
    parts.directory.chmod(0o755)
    export(engine, parts, audit_chain(cfg), now=NOW)
    assert stat.S_IMODE(parts.directory.stat().st_mode) == 0o700
    assert any(parts.directory.glob("calls-*.parquet"))


class Crash(Exception):
    """Stands for the process dying."""


class StopsBeforeItsManifest(PartStore):
    """A store whose export dies after renaming its parts, before writing its manifest."""

    def commit(self, manifest: Any) -> None:
        raise Crash


def test_an_export_stopped_before_its_manifest_is_redone_without_duplicates(cfg, engine) -> None:
    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    chain = audit_chain(cfg)
    dying = StopsBeforeItsManifest(parts.directory, parts.database)
    with pytest.raises(Crash):
        export(engine, dying, chain, now=NOW, part_calls=1000)
    renamed = sorted(p.name for p in parts.directory.glob("calls-*.parquet"))
    assert len(renamed) == 4  # the parts are there under their final names…
    assert parts.manifest().parts == ()  # …but not committed: no query reads them
    with open_analytics(parts) as figures:
        assert figures.count(EVERYTHING) == 0
    run = export(engine, parts, chain, now=NOW)
    # 4 parts × (calls, kinds, units)
    assert run.strays == 12 and run.calls == WEEK_CALLS
    found = keys(parts)
    assert len(found) == len(set(found)) == WEEK_CALLS
    with open_analytics(parts) as figures:
        assert figures.count(EVERYTHING) == WEEK_CALLS


def test_an_export_told_to_stop_commits_nothing_and_the_next_one_does_it_all(cfg, engine) -> None:
    """A server shutting down stops its export at the next call, whatever the backlog: the
    parts written so far are never read, and the next export starts from the same place."""
    import threading

    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    chain = audit_chain(cfg)
    stop = threading.Event()
    seen = 0

    def counting() -> bool:
        nonlocal seen
        seen += 1
        return seen > 1500  # set after a part and a half of 1,000 calls

    class StopsMidway(threading.Event):
        def is_set(self) -> bool:
            return counting()

    with pytest.raises(ExportStopped):
        export(engine, parts, chain, now=NOW, part_calls=1000, stop=StopsMidway())
    assert parts.manifest().parts == ()
    with open_analytics(parts) as figures:
        assert figures.count(EVERYTHING) == 0
    assert not stop.is_set()
    run = export(engine, parts, chain, now=NOW, stop=stop)
    assert run.calls == WEEK_CALLS and run.strays == 3  # the one part written, its three files
    found = keys(parts)
    assert len(found) == len(set(found)) == WEEK_CALLS


def test_calls_the_retention_job_erases_leave_the_store(cfg, engine, week) -> None:
    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    chain = audit_chain(cfg)
    export(engine, parts, chain, now=NOW, part_calls=1000)
    medical = {r.call_id for r in week[0] if r.category.value == "medical"}
    medical_units = sum(len(r.units) for r in week[0] if r.call_id in medical)
    policy = RetentionConfig(incidents_days=3653, incidents_by_category={"medical": 3000})
    run = run_retention(engine, policy, chain, NOW, analytics=parts)
    assert run.history_calls == run.analytics_calls == len(medical)
    left = keys(parts)
    assert len(left) == WEEK_CALLS - len(medical)
    assert not medical & {c for _, _, c in left}
    assert unit_rows(parts) == 7704 - medical_units
    assert not list(parts.directory.glob("*.tmp"))
    # run again: nothing more to remove, the parts stay as they are
    names = sorted(p.name for p in parts.directory.iterdir())
    assert run_retention(engine, policy, chain, NOW, analytics=parts).analytics_calls == 0
    assert sorted(p.name for p in parts.directory.iterdir()) == names
    later = datetime.combine(date(2027, 12, 1), datetime.min.time(), UTC)
    run = run_retention(engine, policy, chain, later, analytics=parts)
    assert run.analytics_calls == WEEK_CALLS - len(medical)
    assert keys(parts) == [] and parts.manifest().parts == ()
    assert not list(parts.directory.glob("*.parquet"))


def test_a_dry_run_leaves_the_store_as_it_is(cfg, engine) -> None:
    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    export(engine, parts, audit_chain(cfg), now=NOW)
    later = datetime(2028, 1, 1, tzinfo=UTC)
    run = run_retention(
        engine, RetentionConfig(), audit_chain(cfg), later, dry_run=True, analytics=parts
    )
    assert run.analytics_calls == 0 and len(keys(parts)) == WEEK_CALLS


def test_own_incidents_are_exported_when_resolved_and_again_when_their_timeline_changes(
    db_url, desk_factory
) -> None:
    from alarmdesk.domain import commands as c
    from tests.conftest import FakeClock, prepare_database

    prepare_database(db_url)
    clock = FakeClock(datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    desk = desk_factory(db_url, clock)
    svc = desk.svc

    def alarm(key: str) -> int:
        return desk.call(key, lon=-0.1 + len(key) / 10)

    def resolve(inc: int, *, acknowledge: bool = True) -> None:
        if acknowledge:
            desk.command(c.Acknowledge(inc, "op"))
        clock.advance(seconds=30)
        desk.command(c.Resolve(inc, "op", disposition="handled"))

    chain = audit_chain(svc.config)
    first, second = alarm("a"), alarm("bb")
    resolve(first)
    assert export(svc.engine, svc.analytics, chain, now=clock()).calls == 1
    desk.command(c.Close(first, "op"))  # its timeline goes on
    desk.command(c.Dispatch(second, "op", units=("E1",)))
    resolve(second, acknowledge=False)
    open_one = alarm("ccc")  # still open: not a finished call
    assert open_one not in (first, second)
    # the second, and the first again (closed since): it replaces its earlier row
    assert export(svc.engine, svc.analytics, chain, now=clock()).calls == 2
    assert export(svc.engine, svc.analytics, chain, now=clock()).calls == 0
    assert sorted(keys(svc.analytics)) == [(True, None, str(first)), (True, None, str(second))]
    # resolving let the unit go: that is its clear time (domain/history/own.py)
    cleared = [
        row["cleared"]
        for files in svc.analytics.files(svc.analytics.manifest())
        for row in pq.read_table(files.units).to_pylist()
        if row["call_id"] == str(second)
    ]
    assert cleared == [clock().replace(tzinfo=None)]
    # the first's earlier row was rewritten away: only the committed files remain
    named = {n for p in svc.analytics.manifest().parts for n in p.file_names}
    assert {p.name for p in svc.analytics.directory.glob("*.parquet")} == named
    assert not [p for p in svc.analytics.directory.iterdir() if p.name.endswith(".tmp")]


def test_the_command_exports_and_says_what_it_did(cfg, engine, tmp_path: Path) -> None:
    import_week(cfg, engine)
    result = cli(cfg, tmp_path, "analytics", "export")
    assert result.exit_code == 0, result.output
    assert f"exported {WEEK_CALLS} calls (7704 unit responses) in 1 parts" in said(result)
    again = cli(cfg, tmp_path, "analytics", "export")
    assert "exported 0 calls" in said(again)


def test_a_store_of_another_database_exits_1(cfg, engine, tmp_path: Path) -> None:
    theirs = PartStore(Path(cfg.analytics.dir), "another")
    theirs.commit(theirs.manifest())
    result = cli(cfg, tmp_path, "analytics", "export")
    assert result.exit_code == 1
    assert "another database" in said(result)


def test_the_stored_calls_are_what_the_kpis_need_and_nothing_more(cfg, engine) -> None:
    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    export(engine, parts, audit_chain(cfg), now=NOW)
    files = parts.files(parts.manifest())[0]
    columns = {n for f in (files.calls, files.kinds, files.units) for n in pq.read_schema(f).names}
    # no free text, no people, no summaries, no addresses
    assert not {"summary", "address", "people", "payload", "name", "callback"} & columns
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(t.history_calls)).scalar()
            == WEEK_CALLS
        )


def test_a_store_follows_a_retention_run_made_elsewhere(cfg, engine, week) -> None:
    """Another node held the retention lease and erased the calls: this node's periodic
    export prunes its own store (service/analytics.prune)."""
    import_week(cfg, engine)
    parts = analytics_store(cfg, engine)
    chain = audit_chain(cfg)
    export(engine, parts, chain, now=NOW)
    policy = RetentionConfig(incidents_days=3653, incidents_by_category={"medical": 3000})
    elsewhere = run_retention(engine, policy, chain, NOW)  # no analytics store: another node
    assert elsewhere.history_calls > 0 and len(keys(parts)) == WEEK_CALLS
    assert prune(engine, parts, policy, NOW) == elsewhere.history_calls
    assert len(keys(parts)) == WEEK_CALLS - elsewhere.history_calls


def test_an_import_in_flight_on_postgresql_is_waited_for_not_skipped(postgres_url, week) -> None:
    """PostgreSQL numbers a call when it is inserted: an import chunk still open holds lower
    numbers than one that committed after it. The export waits for the open chunk, so the
    watermark never passes a call that commits later."""
    import threading

    from alarmdesk.store import history as store

    upgrade(postgres_url)
    cfg = config_for(postgres_url)
    engine = make_engine(postgres_url)
    records, _ = week
    try:
        parts = analytics_store(cfg, engine)
        slow = engine.connect()
        tx = slow.begin()
        store.store_calls(slow, "slow", records[:10], NOW)  # numbered first, not committed
        with engine.begin() as conn:
            store.store_calls(conn, "fast", records[10:20], NOW)  # numbered after, committed
        done: list[Any] = []
        exporting = threading.Thread(
            target=lambda: done.append(export(engine, parts, audit_chain(cfg), now=NOW))
        )
        exporting.start()
        exporting.join(1.0)
        assert exporting.is_alive(), "the export must wait for the import in flight"
        tx.commit()
        slow.close()
        exporting.join(30)
        assert done and done[0].calls == 20
        assert sorted(s for _, s, _ in keys(parts)) == ["fast"] * 10 + ["slow"] * 10
        assert export(engine, parts, audit_chain(cfg), now=NOW).calls == 0
    finally:
        engine.dispose()
