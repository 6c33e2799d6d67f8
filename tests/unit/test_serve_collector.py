"""``alarmdesk serve`` runs with the cyclic garbage collector tuned for a server: collections
rarer than CPython's default, never off (issue 11; bench/README.md has the measurement)."""

from __future__ import annotations

import gc

import pytest

from alarmdesk.config import Config
from alarmdesk.web import server


def test_the_server_runs_with_the_collector_on_and_its_thresholds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, object] = {}

    class Stub:
        def run(self) -> None:
            seen["thresholds"] = gc.get_threshold()
            seen["enabled"] = gc.isenabled()

    monkeypatch.setattr(server, "uvicorn_server", lambda app, cfg: Stub())
    before = gc.get_threshold()
    try:
        server.run(lambda *a: None, Config())  # type: ignore[arg-type]
    finally:
        gc.set_threshold(*before)
    assert seen == {"thresholds": server.GC_THRESHOLDS, "enabled": True}
    young, middle, old = server.GC_THRESHOLDS
    assert young > 700 and middle >= 10 and old >= 10  # rarer than CPython's (700, 10, 10)
