"""The e2e tests' fixtures beyond tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import prepare_database
from tests.e2e.nodes import Cluster


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, nats_url: str) -> Iterator[Cluster]:
    prepare_database(postgres_url)
    made = Cluster(tmp_path, postgres_url, nats_url)
    try:
        yield made
    finally:
        made.kill_all()
        made.delete_stream()
