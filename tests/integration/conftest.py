"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest

from tests.conftest import prepare_database


@pytest.fixture
def url(sqlite_url, tmp_path, monkeypatch) -> str:
    """A prepared SQLite database, the working directory a temporary one (the audit key
    lands in ./var)."""
    prepare_database(sqlite_url)
    monkeypatch.chdir(tmp_path)
    return sqlite_url
