"""The HTTP worker pool's private directories (web/workers.py): a writer process that was
killed leaves its directory (the workers' configuration and secret); the next start deletes
it, and never one in use."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from pathlib import Path

import pytest

from alarmdesk.web.workers import DIR_PREFIX, remove_stale_dirs

pytestmark = pytest.mark.slow  # binds a socket


def test_only_the_directories_of_dead_pools_are_deleted() -> None:
    made = [Path(tempfile.mkdtemp(prefix=DIR_PREFIX)) for _ in range(4)]
    dead, listening, young, refused = made
    (dead / "worker.json").write_text("{}")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(listening / "link.sock"))
    server.listen()
    gone = socket.socket(socket.AF_UNIX)
    gone.bind(str(refused / "link.sock"))  # bound, never listening: its process died
    gone.close()
    old = time.time() - 7200
    for path in (dead, listening, refused):
        os.utime(path, (old, old))
    try:
        removed = remove_stale_dirs()
        assert dead in removed and refused in removed
        assert listening not in removed and young not in removed
        assert not dead.exists() and not refused.exists()
        assert listening.exists() and young.exists()
    finally:
        server.close()
        for path in made:
            if path.exists():
                for f in path.iterdir():
                    f.unlink()
                path.rmdir()


@pytest.mark.parametrize(
    ("workers", "linked", "per_name", "per_address"),
    [(0, False, 5, 20), (2, False, 5, 20), (2, True, 2, 10), (3, True, 1, 6), (8, True, 1, 2)],
)
def test_each_worker_allows_its_share_of_failed_sign_ins(
    sqlite_url: str, workers: int, linked: bool, per_name: int, per_address: int
) -> None:
    """Failed sign-ins are counted per process; the kernel spreads an attacker's connections
    over the workers, so each allows its share of the limits (at least one): together no
    more than one process would allow, while the writer process itself keeps the limits."""
    from alarmdesk.bootstrap import build_services
    from alarmdesk.bus.link import LinkClient
    from alarmdesk.web.app import create_app
    from tests.conftest import prepare_database, test_config

    prepare_database(sqlite_url)
    cfg = test_config(sqlite_url)
    cfg.server.workers = workers
    svc = build_services(cfg)
    if linked:
        svc.link = LinkClient(Path("/nonexistent/link.sock"), "secret")  # not connected here
    try:
        throttle = create_app(svc=svc).state.login_throttle
        assert (throttle.per_name, throttle.per_address) == (per_name, per_address)
    finally:
        svc.engine.dispose()
