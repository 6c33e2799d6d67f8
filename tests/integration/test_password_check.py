"""Password sign-in against the real store: the hash an unknown name is checked against (so
that it takes as long as a known one) is made on the first sign-in, not when the module is
imported, which every command-line start does."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from alarmdesk.store import accounts
from alarmdesk.store.database import make_engine, upgrade

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


def _engine_with_ana(url: str) -> sa.Engine:
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        accounts.create_user(conn, "ana", PASSWORD, "operator", ["*"], NOW)
    return engine


@pytest.mark.slow  # imports in a fresh interpreter
def test_importing_the_accounts_store_hashes_no_password() -> None:
    code = "import alarmdesk.store.accounts as a; print(a._dummy_hash.cache_info().currsize)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "0"


def test_the_first_sign_in_makes_the_unknown_name_hash_whether_the_name_is_known_or_not(
    sqlite_url: str,
) -> None:
    engine = _engine_with_ana(sqlite_url)
    accounts._dummy_hash.cache_clear()
    with engine.connect() as conn:
        assert accounts.check_password(conn, "ana", PASSWORD) is not None
    assert accounts._dummy_hash.cache_info().currsize == 1
    engine.dispose()


def test_a_wrong_password_and_an_unknown_name_are_refused_alike(sqlite_url: str) -> None:
    engine = _engine_with_ana(sqlite_url)
    accounts._dummy_hash.cache_clear()
    with engine.connect() as conn:
        assert accounts.check_password(conn, "bob", PASSWORD) is None
        assert accounts.check_password(conn, "ana", "wrong horse battery") is None
        principal = accounts.check_password(conn, "ana", PASSWORD)
    assert principal is not None and principal.role.value == "operator"
    engine.dispose()
