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
