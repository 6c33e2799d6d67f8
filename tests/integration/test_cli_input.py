"""The command line refuses what it cannot use with one line and an exit code (2: bad input,
1: alarmdesk cannot serve now), never a traceback, and stores nothing the API would refuse."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.conftest import prepare_database
from tests.integration.test_cli import run

pytestmark = pytest.mark.slow  # each test runs the command line as a process


def cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    """The command line as is (no --database-url appended), stdin given as bytes."""
    return subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def refused(r: subprocess.CompletedProcess[str], code: int = 2) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    return r.stderr


def rows(db: str, table: sa.Table) -> list[sa.RowMapping]:
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.select(table)).mappings())
    finally:
        engine.dispose()


@pytest.fixture
def any_db(db_url, tmp_path, monkeypatch) -> str:
    prepare_database(db_url)
    monkeypatch.chdir(tmp_path)
    return db_url


ID_COMMANDS = [
    ("tokens", "revoke"),
    ("silences", "end"),
    ("webhooks", "remove"),
    ("webhooks", "deliveries"),
    ("parked", "retry"),
]


@pytest.mark.parametrize("command", ID_COMMANDS, ids=lambda c: " ".join(c))
@pytest.mark.parametrize("big", ["2147483648", "9223372036854775808", "0"])
def test_an_id_no_row_can_have_is_a_usage_error(any_db, command, big) -> None:
    refused(run(*command, big, env_url=any_db))


def test_an_id_in_range_that_names_nothing_is_not_found(any_db) -> None:
    assert "no active token" in refused(run("tokens", "revoke", "2147483647", env_url=any_db))


@pytest.mark.parametrize(
    "bad", ["garbage", "mysql://x@localhost/y", "postgresql+asyncpg://x@localhost/y"]
)
@pytest.mark.parametrize("command", [("users", "list"), ("db", "upgrade"), ("serve",)])
def test_a_database_url_alarmdesk_does_not_support_names_what_it_does(
    tmp_path, monkeypatch, bad, command
) -> None:
    monkeypatch.chdir(tmp_path)
    err = refused(run(*command, env_url=bad))
    assert "sqlite" in err and "postgresql" in err


@pytest.mark.parametrize("command", [("users", "list"), ("db", "upgrade"), ("serve",)])
def test_a_database_that_cannot_be_reached_exits_1_for_every_command(
    tmp_path, monkeypatch, command
) -> None:
    monkeypatch.chdir(tmp_path)
    for bad in [
        "postgresql://postgres@127.0.0.1:1/x",
        "postgresql://postgres@127.0.0.1:5432/alarmdesk_doesnotexist",
        f"sqlite:///{tmp_path}",  # a directory
    ]:
        assert "the database cannot be reached" in refused(run(*command, env_url=bad), 1)


def test_only_db_upgrade_creates_a_database(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no" / "dir" / "x.db"
    for command in [("users", "list"), ("demo", "load"), ("serve",), ("types", "list")]:
        err = refused(run(*command, env_url=f"sqlite:///{missing}"), 1)
        assert f"no database at {missing}" in err and "db upgrade" in err
        assert not (tmp_path / "no").exists()
    assert run("db", "upgrade", env_url=f"sqlite:///{missing}").returncode == 0
    assert missing.is_file()


def test_an_empty_database_url_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "--database-url" in refused(run("users", "list", env_url=""))


@pytest.mark.parametrize(
    "option", [("--port", "99999"), ("--port", "-1"), ("--dc09-port", "70000")]
)
def test_a_port_out_of_range_is_a_usage_error(url, option) -> None:
    refused(run("serve", *option, env_url=url))


@pytest.mark.parametrize(
    "args",
    [
        ("--rate", "inf", "--token", "adk_x"),
        ("--duration", "inf", "--token", "adk_x"),
        ("--rate", "nan", "--token", "adk_x"),
        ("--token", "tökén"),
    ],
)
def test_simulate_refuses_what_it_cannot_send(tmp_path, args) -> None:
    r = cli("simulate", "--url", "http://127.0.0.1:1", *args)
    assert r.returncode == 2 and b"Traceback" not in r.stderr, r.stderr


def test_simulate_refuses_a_token_file_that_is_not_text(tmp_path) -> None:
    f = tmp_path / "token"
    f.write_bytes(b"\xff\xfe\xfdadk_\n")
    r = cli("simulate", "--url", "http://127.0.0.1:1", "--token-file", str(f))
    assert r.returncode == 2 and b"Traceback" not in r.stderr, r.stderr


def test_a_password_that_is_not_utf8_is_refused_and_no_user_made(url) -> None:
    r = cli(
        "users",
        "add",
        "bob",
        "--role",
        "operator",
        "--desk",
        "west",
        "--password-stdin",
        "--database-url",
        url,
        stdin=b"\xff\xfe\xfdabcdefghijklmnop\n",
    )
    assert r.returncode == 2 and b"Traceback" not in r.stderr, r.stderr
    assert rows(url, t.users) == []


@pytest.mark.parametrize("bad", ["https://[red]x[/].org/", "http://[::1"])
def test_a_webhook_url_that_is_not_a_url_is_invalid(url, bad) -> None:
    assert "invalid_value" in refused(run("webhooks", "add", bad, env_url=url))


@pytest.mark.parametrize("name", ["a\x1b[31mred", "", " ", "x" * 100_000])
def test_a_token_name_is_one_line_of_1_to_64_characters(url, name) -> None:
    refused(run("tokens", "create", "--role", "intake", "--name", name, env_url=url))
    assert rows(url, t.api_tokens) == []


def _user(db: str, name: str, role: str) -> None:
    r = run(
        "users", "add", name, "--role", role, "--desk", "*", "--password-stdin",
        stdin="correct horse battery\n", env_url=db,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def _type_add(
    db: str, *extra: str, name: str = "Fires in libraries"
) -> subprocess.CompletedProcess[str]:
    return run(
        "types", "add", "LIBFIRE", "--name", name, "--category", "fire", "--priority", "2",
        "--purpose", "fires-in-libraries", "--legal-basis", "fire-act-s3", *extra, env_url=db,
    )  # fmt: skip


@pytest.mark.parametrize(
    "extra",
    [
        ("--name", "n\x1b[31m"),
        ("--name", ""),
        ("--definition", "a\x07b"),  # (argv cannot hold NUL)
        ("--sop", "step\x1b"),
    ],
)
def test_a_custom_type_is_checked_like_the_apis(url, extra) -> None:
    _user(url, "ada", "admin")
    args = extra if extra[0] != "--name" else ()
    name = extra[1] if extra[0] == "--name" else "Fires in libraries"
    assert "invalid_value" in refused(_type_add(url, "--as", "ada", *args, name=name))
    assert not [r for r in rows(url, t.incident_types) if r["code"] == "LIBFIRE"]


def test_a_custom_type_is_proposed_by_a_user_who_exists(url) -> None:
    assert "no active user 'nobody'" in refused(_type_add(url, "--as", "nobody"))
    _user(url, "ada", "admin")
    assert _type_add(url, "--as", "ada").returncode == 0


def test_accounts_name_desks_the_centre_has(url) -> None:
    r = run(
        "users", "add", "bob", "--role", "operator", "--desk", "nosuchdesk", "--password-stdin",
        stdin="correct horse battery\n", env_url=url,
    )  # fmt: skip
    assert "unknown_reference" in refused(r)
    r = run(
        "tokens", "create", "--role", "operator", "--name", "x", "--desk", "nosuch", env_url=url
    )
    assert "unknown_reference" in refused(r)
    r = run("tokens", "create", "--role", "intake", "--name", "x", "--desk", "west", env_url=url)
    refused(r)
    assert rows(url, t.users) == [] and rows(url, t.api_tokens) == []


def test_a_silence_names_a_type_the_taxonomy_has(url) -> None:
    ends = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    r = run(
        "silences",
        "add",
        "--reason",
        "maint",
        "--type",
        "NOSUCHTYPE",
        "--ends-at",
        ends,
        env_url=url,
    )
    assert "unknown_reference" in refused(r)
    assert rows(url, t.silences) == []


def test_demo_accounts_are_audited_and_a_second_load_says_what_it_did(
    sqlite_url, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("db", "upgrade", env_url=sqlite_url).returncode == 0
    token_file = tmp_path / "token"
    first = run("demo", "load", "--token-file", str(token_file), env_url=sqlite_url)
    assert first.returncode == 0, first.stderr
    entries = rows(sqlite_url, t.audit_entries)
    text = "\n".join(str(dict(e)) for e in entries)
    assert text.count("users.add") == 8 and text.count("tokens.create") == 1, text
    token_file.unlink()
    second = run("demo", "load", "--token-file", str(token_file), env_url=sqlite_url)
    assert second.returncode == 0, second.stderr
    assert "demo city loaded: \n" not in second.stdout
    assert "not shown again" in second.stdout and str(token_file) in second.stdout
    assert not token_file.exists()
