"""``alarmdesk config plan|apply|export`` against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from alarmdesk.bootstrap import audit_chain
from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import SetupError
from alarmdesk.domain.signal import Location, SignalIn, SourceKind
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import centre, centre_files, dispatch, queries
from alarmdesk.service.actions import perform
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from alarmdesk.store.repository import IncidentFilter
from tests.conftest import REPO_ROOT, FakeClock, prepare_database
from tests.conftest import test_config as config_for

ADMIN = Actor("cli:test", "operator_of_machine")
EXAMPLE = REPO_ROOT / "docs" / "examples" / "small-arc"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def setup(db_url):
    prepare_database(db_url)
    cfg = config_for(db_url)
    engine = make_engine(db_url)
    chain = audit_chain(cfg)

    def apply(path: Path) -> centre.Plan:
        return perform(engine, chain, centre.apply(ADMIN, centre_files.load(path), engine), NOW)

    yield engine, apply
    engine.dispose()


def apply_example(db_url: str) -> None:
    """A prepared database with the worked example applied (from the command line)."""
    prepare_database(db_url)
    engine = make_engine(db_url)
    try:
        perform(
            engine,
            audit_chain(config_for(db_url)),
            centre.apply(ADMIN, centre_files.load(EXAMPLE)),
            NOW,
        )
    finally:
        engine.dispose()


def _entries(engine: sa.Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.audit_entries.c.entry).order_by(t.audit_entries.c.seq))
        return [json.loads(r.entry) for r in rows]


def _count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_applying_the_example_twice_changes_nothing_the_second_time(setup):
    engine, apply = setup
    first = apply(EXAMPLE)
    assert first.counts()["panels"]["added"] == 20
    stored = centre.stored_records(engine)
    assert len(stored["panels"]) == 20 and len(stored["cameras"]) == 2
    assert list(stored["desks"]) == ["intruder", "fire", "technical"]
    assert apply(EXAMPLE).empty
    assert centre.plan(engine, centre_files.load(EXAMPLE)).empty
    entries = [e for e in _entries(engine) if e["object_type"] == "centre"]
    assert len(entries) == 2
    assert entries[0]["detail"]["counts"]["units"]["added"] == 3
    keys = [
        r["settings"]["key_hex"]
        for r in centre.stored_records(engine)["panels"].values()
        if "key_hex" in r["settings"]
    ]
    assert keys and not any(k in json.dumps(entries) for k in keys)


def copy_example(folder: Path, old: str = "", new: str = "") -> Path:
    """The worked example in ``folder``, with ``old`` replaced by ``new`` in its files."""
    folder.mkdir()
    for p in EXAMPLE.glob("*.yaml"):
        (folder / p.name).write_text(p.read_text().replace(old, new) if old else p.read_text())
    return folder


def test_the_transaction_writes_the_plan_made_ahead_unless_an_apply_came_between(
    setup, db_url, tmp_path
):
    """An apply is planned in the caller's thread (reading and diffing every stored item:
    1.0 s for 100,000 panels), so that the writer, and every alarm behind it, does not wait
    for it; its transaction only checks that no apply moved the set-up's revision since.
    If one did, it plans again against what that apply stored."""
    engine, apply = setup
    apply(EXAMPLE)
    renamed = copy_example(tmp_path / "renamed", "Pharmacy Oudegracht 10", "Pharmacy Renamed")
    extra = copy_example(
        tmp_path / "extra",
        "panels:\n",
        "panels:\n  - {account: '5999', site: Kiosk Neude, lat: 52.09, lon: 5.12}\n",
    )
    chain = audit_chain(config_for(db_url))
    reads: list[str] = []

    def record(_c, _cur, statement: str, *_rest) -> None:
        if "devices.zones" in statement:  # the stored set-up read whole (read_records)
            reads.append(statement)

    # Planned ahead; nothing came between: the transaction reads no stored item.
    ahead = centre.apply(ADMIN, centre_files.load(renamed), engine)
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        plan = perform(engine, chain, ahead, NOW)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert reads == []
    assert [(c.id, c.fields) for c in plan.changed] == [("panel-5001", ("site",))]

    # Planned ahead, then another apply added a panel: planned again, the panel removed.
    ahead = centre.apply(ADMIN, centre_files.load(EXAMPLE), engine)
    assert apply(extra).counts()["panels"]["added"] == 1
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        plan = perform(engine, chain, ahead, NOW)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert len(reads) == 1
    # (the plan made ahead changed 5001 back and removed nothing; the extra files had
    # already changed it back)
    assert [c.id for c in plan.removed] == ["panel-5999"] and not plan.changed
    stored = centre.stored_records(engine)["panels"]
    assert "panel-5999" not in stored and stored["panel-5001"]["site"] == "Pharmacy Oudegracht 10"
    assert apply(EXAMPLE).empty


def test_an_export_applied_back_changes_nothing_and_keeps_the_keys(setup, tmp_path):
    engine, apply = setup
    apply(EXAMPLE)
    stored = centre.stored_records(engine)
    centre_files.write(tmp_path / "out", centre_files.dump(stored, include_secrets=False))
    assert "<redacted>" in (tmp_path / "out" / "panels.yaml").read_text()
    assert apply(tmp_path / "out").empty
    assert centre.stored_records(engine) == stored


def test_a_refused_name_stops_the_whole_apply_and_the_refusal_is_audited(setup, tmp_path):
    engine, apply = setup
    folder = tmp_path / "c"
    folder.mkdir()
    for p in EXAMPLE.glob("*.yaml"):
        (folder / p.name).write_text(p.read_text())
    cameras = folder / "cameras.yaml"
    cameras.write_text(cameras.read_text().replace("Gate, yard: Yard", "Gate, yard: Rally watch"))
    before = centre.stored_records(engine)
    with pytest.raises(SetupError) as info:
        apply(folder)
    assert info.value.code == "protected_purpose"
    assert info.value.where == f"{cameras}:8"
    assert centre.stored_records(engine) == before
    [entry] = [e for e in _entries(engine) if e["object_type"] == "centre"]
    assert entry["outcome"] == "denied" and entry["rule"] == "protected_purpose"


def test_removing_a_unit_on_an_incident_or_a_panel_with_an_open_incident_is_refused(
    setup, tmp_path
):
    engine, apply = setup
    apply(EXAMPLE)
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.units)
            .where(t.units.c.id == "PATROL-2")
            .values(status="dispatched", incident_id=7)
        )
        conn.execute(
            sa.insert(t.incidents).values(
                id=7,
                type_code="ALRBA",
                category="property",
                priority=2,
                status="dispatched",
                condition="active",
                source_kind="equipment",
                source_id="panel-5001",
                location=None,
                summary="",
                correlation_key=None,
                desks=["intruder"],
                units=["PATROL-2"],
                signal_count=1,
                version=1,
                first_seen=NOW,
                last_seen=NOW,
                opened_at=NOW,
            )
        )
    folder = tmp_path / "c"
    folder.mkdir()
    for p in EXAMPLE.glob("*.yaml"):
        (folder / p.name).write_text(p.read_text())
    response = folder / "response.yaml"
    response.write_text(response.read_text().split("  - id: PATROL-2")[0])
    with pytest.raises(SetupError) as info:
        apply(folder)
    assert info.value.code == "in_use" and "PATROL-2" in info.value.message
    assert _count(engine, t.units) == 3
    (folder / "panels.yaml").write_text(
        (folder / "panels.yaml").read_text().replace("account: '5001'", "account: '6001'")
    )
    response.write_text(EXAMPLE.joinpath("response.yaml").read_text())
    with pytest.raises(SetupError) as info:
        apply(folder)
    assert info.value.code == "in_use" and "panel-5001" in info.value.message


def test_a_changed_unit_keeps_its_status_and_position(setup, tmp_path):
    engine, apply = setup
    apply(EXAMPLE)
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.units)
            .where(t.units.c.id == "TECH-1")
            .values(status="out_of_service", lat=52.1, lon=5.2)
        )
    folder = tmp_path / "c"
    folder.mkdir()
    for p in EXAMPLE.glob("*.yaml"):
        text = p.read_text().replace(
            "capabilities: [alarm_service]", "capabilities: [alarm_service, cctv]"
        )
        (folder / p.name).write_text(text)
    plan = apply(folder)
    assert [(c.id, c.fields) for c in plan.changed] == [("TECH-1", ("capabilities",))]
    with engine.connect() as conn:
        row = conn.execute(sa.select(t.units).where(t.units.c.id == "TECH-1")).mappings().one()
    assert (row["status"], row["lat"], row["capabilities"]) == (
        "out_of_service",
        52.1,
        ["alarm_service", "cctv"],
    )


def test_a_unit_moved_to_another_station_waits_there_or_keeps_its_reported_position(
    setup, tmp_path
):
    engine, apply = setup
    apply(EXAMPLE)
    with engine.begin() as conn:  # PATROL-2 is out on a job: its AVL position is its own
        conn.execute(
            sa.update(t.units)
            .where(t.units.c.id == "PATROL-2")
            .values(status="en_route", lat=52.2, lon=5.3)
        )
        conn.execute(  # TECH-1 never had a position (a unit made before its station had one)
            sa.update(t.units).where(t.units.c.id == "TECH-1").values(lat=None, lon=None)
        )
    folder = tmp_path / "moved"
    shutil.copytree(EXAMPLE, folder)
    response = folder / "response.yaml"
    text = response.read_text().replace(
        "units:\n", "  - {id: NORTH, name: North post, lat: 52.15, lon: 5.16}\nunits:\n", 1
    )
    for unit in ("PATROL-1", "PATROL-2", "TECH-1"):
        text = text.replace(f"id: {unit}\n    kind", f"id: {unit}\n    station: NORTH\n    kind")
    response.write_text(text.replace("    station: HQ\n", ""))
    plan = apply(folder)
    assert {c.id for c in plan.changed} >= {"PATROL-1", "PATROL-2", "TECH-1"}
    with engine.connect() as conn:
        where = {
            r.id: (r.station_id, r.lat, r.lon)
            for r in conn.execute(
                sa.select(t.units.c.id, t.units.c.station_id, t.units.c.lat, t.units.c.lon)
            )
        }
    assert where["PATROL-1"] == ("NORTH", 52.15, 5.16)  # available at home: now at the new home
    assert where["TECH-1"] == ("NORTH", 52.15, 5.16)  # no position: its station's
    assert where["PATROL-2"] == ("NORTH", 52.2, 5.3)  # on a job: where it reported


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_command_line_plans_applies_exports_and_refuses_with_exit_codes(sqlite_url, tmp_path):
    prepare_database(sqlite_url)
    db = ("--database-url", sqlite_url)
    plan = _cli("config", "plan", str(EXAMPLE), "--json", *db, cwd=tmp_path)
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["counts"]["panels"]["added"] == 20
    applied = _cli("config", "apply", str(EXAMPLE), *db, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    shown = {line.split()[1] for line in applied.stdout.splitlines() if line.startswith("  + ")}
    assert {"panel", "escalation", "routing", "procedure"} <= shown, shown  # not "escalatio"
    again = _cli("config", "plan", str(EXAMPLE), *db, cwd=tmp_path)
    assert again.returncode == 0 and "No changes" in again.stdout
    export = _cli("config", "export", str(tmp_path / "out"), *db, cwd=tmp_path)
    assert export.returncode == 0, export.stderr
    assert "<redacted>" in (tmp_path / "out" / "panels.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("desks:\n  - id: d\n    name: Demonstration monitoring\n")
    refused = _cli("config", "apply", str(bad), *db, cwd=tmp_path)
    assert refused.returncode == 3
    assert f"{bad}:3" in refused.stderr.replace("\n", "")
    broken = _cli("config", "plan", str(tmp_path / "missing"), *db, cwd=tmp_path)
    assert broken.returncode == 2
    schema = _cli("config", "schema", cwd=tmp_path)
    assert json.loads(schema.stdout)["title"] == "alarmdesk centre set-up"


def test_applied_routing_rules_route_new_incidents_after_a_restart_and_record_the_rule(
    db_url, services_factory
):
    apply_example(db_url)
    loop = asyncio.new_event_loop()
    try:
        svc = services_factory(db_url, loop=loop, prepare=False, clock=lambda: NOW)
        fire, alarm = loop.run_until_complete(
            svc.writer.submit_signals(
                [
                    SignalIn(
                        source_kind=SourceKind.EQUIPMENT,
                        source_id="panel-5001",
                        type_code=code,
                        occurred_at=NOW,
                        location=Location(lat=52.09, lon=5.12, site="Jeweller Twijnstraat 13"),
                        summary="",
                        idempotency_key=f"route-{code}",
                    )
                    for code in ("FSTRU", "ALRBA")
                ]
            )
        )
        found, _ = queries.list_incidents(svc.engine, IncidentFilter(), limit=10, before_id=None)
        incidents = {i["id"]: i for i in found}
        svc.stop()
    finally:
        loop.close()
    assert (incidents[fire.incident_id]["desks"], incidents[fire.incident_id]["routed_by"]) == (
        ["fire"],
        ["fire"],
    )
    # 13:00 in Utrecht is not "18:00-07:00": the parent rule routes the jeweller's alarm
    assert incidents[alarm.incident_id]["routed_by"] == ["intruder"]


def test_a_routing_rule_naming_an_unknown_type_is_refused_where_it_is_written(setup, tmp_path):
    _, apply = setup
    path = tmp_path / "routing.yaml"
    path.write_text(
        "desks:\n  - {id: d, name: Desk}\nrouting:\n"
        "  - id: r\n    match: {types: [NOSUCHTYPE]}\n    desks: [d]\n"
    )
    with pytest.raises(SetupError) as info:
        apply(path)
    assert info.value.code == "unknown_reference" and info.value.where == f"{path}:5"


def test_the_recommendation_follows_the_applied_response_plan_and_the_dispatch_records_it(
    db_url, services_factory
):
    apply_example(db_url)
    loop = asyncio.new_event_loop()
    try:
        svc = services_factory(db_url, loop=loop, prepare=False, clock=lambda: NOW)
        (receipt,) = loop.run_until_complete(
            svc.writer.submit_signals(
                [
                    SignalIn(
                        source_kind=SourceKind.EQUIPMENT,
                        source_id="panel-5003",
                        type_code="ALRBA",
                        occurred_at=NOW,
                        location=Location(lat=52.0907, lon=5.1314),
                        summary="",
                        idempotency_key="rec-1",
                    )
                ]
            )
        )
        rec = dispatch.recommendation(svc.engine, receipt.incident_id)
        assert [n["label"] for n in rec["needs"]] == ["patrol"]
        [pick] = rec["units"]
        assert pick["unit_id"] in {"PATROL-1", "PATROL-2"} and pick["eta_s"] > 0
        result = loop.run_until_complete(
            svc.writer.submit_command(
                c.Dispatch(
                    receipt.incident_id, "user:1", units=("PATROL-2",), recommended=("PATROL-1",)
                ),
                ADMIN,
            )
        )
        assert result["status"] == "dispatched"
        with svc.engine.connect() as conn:
            detail = conn.execute(
                sa.select(t.events.c.detail)
                .where(t.events.c.incident_id == receipt.incident_id)
                .order_by(t.events.c.id.desc())
            ).first()
        assert detail is not None
        assert detail.detail["recommended"] == ["PATROL-1"] and detail.detail["override"] is True
        svc.stop()
    finally:
        loop.close()


def test_a_running_writer_takes_up_an_apply_from_the_command_line_within_seconds(
    db_url, services_factory
):
    prepare_database(db_url)
    clock = FakeClock(NOW)
    loop = asyncio.new_event_loop()
    try:
        svc = services_factory(db_url, loop=loop, prepare=False, clock=clock)

        def alarm(key: str) -> SignalIn:
            return SignalIn(
                source_kind=SourceKind.EQUIPMENT,
                source_id="panel-5001",
                type_code="FSTRU",
                occurred_at=NOW,
                location=Location(lat=52.09 + len(key) / 100, lon=5.12),
                summary="",
                idempotency_key=key,
            )

        (before,) = loop.run_until_complete(svc.writer.submit_signals([alarm("a")]))
        loop.run_until_complete(  # the apply removes its desk: it must not be open
            svc.writer.submit_command(
                c.Cancel(before.incident_id, "op", reason="false_alarm"), ADMIN
            )
        )
        perform(  # another process: the command line
            svc.engine,
            audit_chain(config_for(db_url)),
            centre.apply(ADMIN, centre_files.load(EXAMPLE)),
            NOW,
        )
        clock.advance(seconds=6)
        (after,) = loop.run_until_complete(svc.writer.submit_signals([alarm("bb")]))
        found = {
            i["id"]: i
            for i in queries.list_incidents(svc.engine, IncidentFilter(), limit=10, before_id=None)[
                0
            ]
        }
        assert found[before.incident_id]["routed_by"] == ["desks"]
        assert found[after.incident_id]["routed_by"] == ["fire"]
        assert found[after.incident_id]["escalation"]["policy"] == "fire-p1"
        assert "PATROL-1" in svc.writer.pipeline.units  # units applied are dispatchable
        svc.stop()
    finally:
        loop.close()


def test_a_centre_s_own_procedure_replaces_the_type_s_for_incidents_opened_after_the_apply(
    db_url, services_factory, tmp_path
):
    prepare_database(db_url)
    clock = FakeClock(NOW)
    loop = asyncio.new_event_loop()
    try:
        svc = services_factory(db_url, loop=loop, prepare=False, clock=clock)

        def alarm(key: str) -> SignalIn:
            return SignalIn(
                source_kind=SourceKind.EQUIPMENT,
                source_id=f"panel-{key}",
                type_code="ALRBA",
                occurred_at=NOW,
                location=Location(lat=52.09, lon=5.12 + len(key) / 100),
                summary="",
                idempotency_key=key,
            )

        chain = audit_chain(config_for(db_url))
        perform(svc.engine, chain, centre.apply(ADMIN, centre_files.load(EXAMPLE)), NOW)
        clock.advance(seconds=6)
        (before,) = loop.run_until_complete(svc.writer.submit_signals([alarm("a")]))
        own = tmp_path / "own"
        shutil.copytree(EXAMPLE, own)
        (own / "procedures.yaml").write_text(
            "procedures:\n  - type: alrba\n    steps: ['!Call the keyholder', Check the CCTV]\n"
        )
        # from the command line, while the writer runs
        perform(svc.engine, chain, centre.apply(ADMIN, centre_files.load(own)), NOW)
        clock.advance(seconds=6)
        (after,) = loop.run_until_complete(svc.writer.submit_signals([alarm("bb")]))
        inc = svc.writer.pipeline.incidents
        old, new = inc[before.incident_id].procedure, inc[after.incident_id].procedure
        assert old is not None and new is not None
        assert [s.text for s in new.steps] == ["Call the keyholder", "Check the CCTV"]
        assert [s.mandatory for s in new.steps] == [True, False]
        assert [s.text for s in old.steps] != [s.text for s in new.steps]  # frozen when opened
        with svc.engine.connect() as conn:
            assert repo.load_taxonomy(conn).get("ALRBA").sop == (
                "!Call the keyholder",
                "Check the CCTV",
            )
        svc.stop()
    finally:
        loop.close()


def test_a_procedure_for_a_type_the_taxonomy_lacks_is_refused_where_it_is_written(setup, tmp_path):
    _, apply = setup
    bad = tmp_path / "bad.yaml"
    bad.write_text("procedures:\n  - type: NOSUCHTYPE\n    steps: [Look]\n")
    with pytest.raises(SetupError) as info:
        apply(bad)
    assert info.value.code == "unknown_reference"
    assert info.value.where == f"{bad}:2"
