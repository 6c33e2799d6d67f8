"""The command line: exit codes and messages people and scripts rely on."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa

from alarmdesk.bus.jetstream import QueuedSignal
from alarmdesk.domain.signal import Location, SignalIn, SourceKind
from alarmdesk.store import parked as parked_store
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.unit.test_eido import valid

pytestmark = pytest.mark.slow  # each test runs the command line as a process


def run(*args: str, stdin: str = "", env_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", *args, "--database-url", env_url],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _proposer(url: str, name: str) -> None:
    """A user who may propose a type (`types add --as` names an active one)."""
    r = run(
        "users", "add", name, "--role", "supervisor", "--desk", "*", "--password-stdin",
        stdin="correct horse battery\n", env_url=url,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_a_protected_purpose_exits_with_3_and_names_the_rule(url) -> None:
    _proposer(url, "someone")
    r = run(
        "types",
        "add",
        "DEMO",
        "--name",
        "Demonstration watch",
        "--category",
        "other_harm",
        "--priority",
        "3",
        "--purpose",
        "Keep an eye on demonstrators",
        "--legal-basis",
        "Public order act",
        "--as",
        "someone",
        env_url=url,
    )
    assert r.returncode == 3
    assert "protected_purpose" in r.stderr and "rule assembly" in r.stderr


def test_an_unknown_category_exits_with_2(url) -> None:
    r = run(
        "types",
        "add",
        "X1",
        "--name",
        "Thing",
        "--category",
        "politics",
        "--priority",
        "3",
        "--purpose",
        "Something harmful enough",
        "--legal-basis",
        "Act 1",
        "--as",
        "me",
        env_url=url,
    )
    assert r.returncode == 2 and "unknown_category" in r.stderr


def test_a_procedure_with_an_empty_step_exits_with_2(url) -> None:
    """`types add --sop " "` proposed a type whose procedure had an empty step."""
    _proposer(url, "me")
    r = run(
        "types",
        "add",
        "LIBFIRE",
        "--name",
        "Lithium battery fire",
        "--category",
        "fire",
        "--priority",
        "2",
        "--purpose",
        "Battery fires re-ignite and need special agents",
        "--legal-basis",
        "Fire Act s.7",
        "--as",
        "me",
        "--sop",
        "Send foam tender",
        "--sop",
        "  ",
        env_url=url,
    )
    assert r.returncode == 2 and "invalid_value" in r.stderr, r.stderr
    listed = run("types", "list", "--custom", env_url=url)
    assert "LIBFIRE" not in listed.stdout


def test_users_and_tokens_are_created_and_audited(url) -> None:
    r = run(
        "users",
        "add",
        "olga",
        "--role",
        "operator",
        "--desk",
        "west",
        "--password-stdin",
        stdin="a long enough password\n",
        env_url=url,
    )
    assert r.returncode == 0, r.stderr
    weak = run(
        "users",
        "add",
        "ivan",
        "--role",
        "operator",
        "--desk",
        "west",
        "--password-stdin",
        stdin="short\n",
        env_url=url,
    )
    assert weak.returncode == 2 and "weak_password" in weak.stderr
    tok = run("tokens", "create", "--role", "intake", "--name", "receiver", env_url=url)
    assert tok.returncode == 0 and tok.stdout.strip().startswith("adk_")
    export = run("audit", "export", "log.jsonl", "--justification", "test export", env_url=url)
    assert export.returncode == 0, export.stderr
    key = subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", "audit", "pubkey"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ok = subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", "audit", "verify", "log.jsonl", "--pubkey", key],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "verified" in ok.stdout
    text = Path("log.jsonl").read_text()
    assert "users.add" in text and "tokens.create" in text
    assert "a long enough password" not in text
    Path("log.jsonl").write_text(text.replace("users.add", "users.del"))
    bad = subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", "audit", "verify", "log.jsonl", "--pubkey", key],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "ROOT_MISMATCH" in bad.stderr


def test_loading_the_demo_city_twice_keeps_it_whole(sqlite_url, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("db", "upgrade", env_url=sqlite_url).returncode == 0
    for _ in range(2):
        r = run("demo", "load", env_url=sqlite_url)
        assert r.returncode == 0, r.stderr
    again = run("db", "upgrade", env_url=sqlite_url)
    assert again.returncode == 0, again.stderr


def test_export_eido_writes_the_file_and_logs_the_disclosure(
    url, tmp_path, services_factory
) -> None:
    loop = asyncio.new_event_loop()
    svc = services_factory(url, loop=loop, prepare=False)
    call = SignalIn(
        source_kind=SourceKind.CALL,
        source_id="ct-1",
        type_code="FSTRU",
        occurred_at=datetime(2026, 11, 25, 9, 59, tzinfo=UTC),
        location=Location(lat=50.0, lon=-5.0, address="Quay 2"),
        summary="smoke from a roof",
        payload={"people": [{"role": "caller", "name": "Ann", "callback": "+44 20 7946 0000"}]},
    )
    (receipt,) = loop.run_until_complete(svc.writer.submit_signals([call]))
    svc.stop()
    loop.close()
    inc = str(receipt.incident_id)

    missing = run("export", "eido", inc, env_url=url)
    assert missing.returncode == 2 and "missing_field" in missing.stderr
    refused = run("export", "eido", inc, "--recipient", "Immigration enforcement", env_url=url)
    assert refused.returncode == 3 and "protected_purpose" in refused.stderr
    unknown = run("export", "eido", "999", "--recipient", "Fire Brigade", env_url=url)
    assert unknown.returncode == 2 and "not_found" in unknown.stderr
    nowhere = run(
        "export", "eido", inc, "--recipient", "Fire Brigade", "-o", "no/such/x.json", env_url=url
    )
    assert nowhere.returncode == 2 and not Path("no").exists()

    r = run("export", "eido", inc, "--recipient", "Fire Brigade", "-o", "eido.json", env_url=url)
    assert r.returncode == 0, r.stderr
    doc = json.loads(Path("eido.json").read_text("utf-8"))
    valid(doc)
    (person,) = doc["personComponent"]
    assert person["personIncidentRoleRegistryText"] == ["Caller"]
    assert doc["callbackComponent"][0]["callBackInformationUri"] == ["tel:+442079460000"]
    printed = run("export", "eido", inc, "--recipient", "Coastguard", env_url=url)
    assert printed.returncode == 0 and json.loads(printed.stdout) == doc

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.audit_entries.c.entry).order_by(t.audit_entries.c.seq))
        log = [e for e in (json.loads(r.entry) for r in rows) if e["op"] == "disclose"]
    engine.dispose()
    assert [(e["object_id"], e["detail"]["recipient"]) for e in log] == [
        (inc, "Fire Brigade"),
        (inc, "Coastguard"),
    ]
    assert all(e["actor"].startswith("cli:") for e in log)


def test_text_people_typed_is_listed_as_it_is_never_read_as_markup(url) -> None:
    """A list prints what was stored as text: markup in a silence's reason or device, or in
    a parked signal's source, is shown, not drawn, and never stops the list (``[/]`` made
    ``silences list`` exit 1 with a traceback, so no silence could be seen)."""
    reason = "[/] maintenance [red]visit[/red] <b>x</b>"
    added = run(
        "silences",
        "add",
        "--reason",
        reason,
        "--device",
        "panel-[b]",
        "--ends-at",
        (datetime.now(UTC) + timedelta(days=30)).isoformat(),  # a one-off: 90 days at most
        env_url=url,
    )
    assert added.returncode == 0, added.stderr
    listed = subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", "silences", "list", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300"},  # each cell on one line
    )
    assert listed.returncode == 0, listed.stderr
    assert reason in listed.stdout and "devices: panel-[b]" in listed.stdout

    signal = SignalIn(
        source_kind=SourceKind.EQUIPMENT,
        source_id="[/]panel-[b]",
        type_code="BURG",
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
        summary="x",
        idempotency_key="k-1",
    )
    queued = QueuedSignal(signal, datetime(2026, 12, 1, tzinfo=UTC), None)
    engine = make_engine(url)
    with engine.begin() as conn:
        parked_store.park(
            conn,
            [
                parked_store.Parking(
                    "k-1#d", 3, queued.received_at, msgspec.to_builtins(queued), "E: [/]", 3
                )
            ],
            datetime(2026, 12, 1, tzinfo=UTC),
        )
    engine.dispose()
    shown = subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", "parked", "list", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "300"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "equipment:[/]panel-[b]" in shown.stdout and "E: [/]" in shown.stdout
    as_json = run("parked", "list", "--json", env_url=url)
    assert json.loads(as_json.stdout)["source"] == "equipment:[/]panel-[b]"


def test_a_database_not_upgraded_or_not_reachable_is_a_message_not_a_traceback(
    tmp_path, monkeypatch
) -> None:
    """Every command that reads the database checks it first: one never upgraded names the
    command to run, one that cannot be reached says so; both exit 1 with no traceback."""
    monkeypatch.chdir(tmp_path)
    empty = f"sqlite:///{tmp_path / 'never-upgraded.db'}"
    (tmp_path / "never-upgraded.db").touch()  # a database, empty (no file: see test_cli_input)
    for args in (["silences", "list"], ["parked", "list"], ["users", "list"], ["types", "list"]):
        r = run(*args, env_url=empty)
        assert r.returncode == 1, (args, r.stderr)
        assert "run `alarmdesk db upgrade`" in r.stderr and "schema_not_ready" in r.stderr
        assert "Traceback" not in r.stderr
    away = run("silences", "list", env_url="postgresql://postgres@127.0.0.1:1/nothing")
    assert away.returncode == 1 and "the database cannot be reached" in away.stderr
    assert "Traceback" not in away.stderr
    upgraded = subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", "db", "upgrade", "--database-url", empty],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    assert run("silences", "list", env_url=empty).returncode == 0
