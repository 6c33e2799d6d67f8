"""People's accounts from the command line: a dismissed employee disabled, a password reset,
their sessions ended; names that read as another user's refused. Each audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from alarmdesk.store import accounts
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.integration.test_cli import run

pytestmark = pytest.mark.slow  # the command line as a process

OLD, NEW = "correct horse battery", "another horse battery"


def add(url: str, name: str) -> None:
    r = run(
        "users", "add", name, "--role", "operator", "--desk", "*", "--password-stdin",
        stdin=OLD + "\n", env_url=url,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_a_user_is_disabled_enabled_and_given_a_new_password_ending_their_sessions(url) -> None:
    add(url, "nina")
    engine = make_engine(url)
    try:
        now = datetime.now(UTC)
        with engine.begin() as conn:
            principal = accounts.check_password(conn, "nina", OLD)
            assert principal is not None
            secret = accounts.create_session(conn, principal, now, timedelta(hours=8))[0]
        assert run("users", "disable", "nina", env_url=url).returncode == 0
        with engine.connect() as conn:
            assert accounts.check_password(conn, "nina", OLD) is None
            assert accounts.load_session(conn, secret, now) is None
        listed = run("users", "list", env_url=url)
        assert "(disabled)" in listed.stdout
        assert run("users", "enable", "nina", env_url=url).returncode == 0
        with engine.begin() as conn:
            principal = accounts.check_password(conn, "nina", OLD)
            assert principal is not None
            secret = accounts.create_session(conn, principal, now, timedelta(hours=8))[0]
        r = run("users", "passwd", "nina", "--password-stdin", stdin=NEW + "\n", env_url=url)
        assert r.returncode == 0, r.stderr
        with engine.connect() as conn:
            assert accounts.check_password(conn, "nina", OLD) is None
            assert accounts.check_password(conn, "nina", NEW) is not None
            assert accounts.load_session(conn, secret, now) is None
            rules = [
                r.entry
                for r in conn.execute(sa.select(t.audit_entries.c.entry))
                if '"users.' in r.entry
            ]
        assert [next(x for x in ("add", "disable", "enable", "password") if f"users.{x}" in e)
                for e in rules] == ["add", "disable", "enable", "password"]  # fmt: skip
    finally:
        engine.dispose()


def test_a_short_password_or_an_unknown_user_is_refused(url) -> None:
    add(url, "omar")
    short = run("users", "passwd", "omar", "--password-stdin", stdin="short\n", env_url=url)
    assert short.returncode != 0 and "weak_password" in short.stderr
    for command in (("disable", "nobody"), ("enable", "nobody")):
        r = run("users", *command, env_url=url)
        assert r.returncode != 0 and "no user 'nobody'" in r.stderr


@pytest.mark.parametrize("name", ["Operator", "\uff4fperator"])
def test_a_name_that_reads_as_another_users_is_refused(url, name) -> None:
    add(url, "operator")
    r = run(
        "users", "add", name, "--role", "operator", "--desk", "*", "--password-stdin",
        stdin=OLD + "\n", env_url=url,
    )  # fmt: skip
    assert r.returncode != 0, r.stdout
