"""An HTTP worker process: ``python -m alarmdesk.web.worker <pool directory>``, started by
the writer process's :class:`~alarmdesk.web.workers.WorkerPool`, never by hand.

It reads its configuration and the link's secret from the pool's private directory, serves
the whole HTTP API on its own ``SO_REUSEPORT`` socket of the shared port, and hands the
writer's work to the writer process over the link (bus/link.py). It stops when the link ends:
no worker outlives its writer.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

import msgspec

from alarmdesk import logs
from alarmdesk.bootstrap import build_services
from alarmdesk.bus.link import LinkClient
from alarmdesk.web.app import create_app
from alarmdesk.web.server import GC_THRESHOLDS, uvicorn_server
from alarmdesk.web.workers import WorkerSpec, listening_socket


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m alarmdesk.web.worker <pool directory>", file=sys.stderr)
        return 2
    logs.configure()
    logs.bind(process="http-worker", pid=os.getpid())  # its lines apart from the writer's
    pool = Path(args[0])
    spec = msgspec.json.decode((pool / "worker.json").read_bytes(), type=WorkerSpec)
    cfg = spec.config
    svc = build_services(cfg)
    svc.link = LinkClient(pool / "link.sock", spec.secret)
    server = uvicorn_server(create_app(svc=svc), cfg)

    def stop() -> None:
        server.should_exit = True

    svc.link.on_lost = stop
    sock = listening_socket(cfg.server.host, cfg.server.port)
    gc.set_threshold(*GC_THRESHOLDS)
    server.run(sockets=[sock])
    return 0 if server.started else 3


if __name__ == "__main__":
    sys.exit(main())
