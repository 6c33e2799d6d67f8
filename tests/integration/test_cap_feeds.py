"""CAP feeds: the intake service polls an Atom feed served on 127.0.0.1 and stores each alert
once as a feed signal; a refused entry is skipped and the feed goes on."""

from __future__ import annotations

import asyncio
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from alarmdesk.bootstrap import build_services
from alarmdesk.store import tables as t
from tests.conftest import prepare_database
from tests.conftest import test_config as config_for

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parent.parent / "fixtures" / "cap"


def feed(base: str) -> bytes:
    entries = "".join(
        f"<entry><id>{name}</id><updated>2026-01-01T00:00:00+00:00</updated>"
        f'<link rel="alternate" type="application/cap+xml" href="{base}/{name}"/></entry>'
        for name in ("australia.cap", "canada.cap", "invalid.cap")
    )
    # One alert inline, as some feeds carry them.
    inline = (FIXTURES / "valid" / "earthquake-iso8859-1.cap").read_bytes()
    inline_alert = inline.split(b"?>", 1)[1].decode("iso-8859-1")
    return (
        '<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<id>test</id><title>t</title><updated>2026-01-01T00:00:00+00:00</updated>"
        f"{entries}<entry><id>inline</id><updated>2026-01-01T00:00:00+00:00</updated>"
        f"<content type='text/xml'>{inline_alert}</content></entry></feed>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}

    def do_GET(self) -> None:
        name = self.path.strip("/")
        Handler.hits[name] = Handler.hits.get(name, 0) + 1
        if name == "feed.atom":
            body = feed(f"http://127.0.0.1:{self.server.server_address[1]}")
        else:
            path = FIXTURES / ("invalid" if name.startswith("invalid") else "valid") / name
            body = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_the_intake_service_polls_a_cap_feed_and_stores_each_alert_once(sqlite_url) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prepare_database(sqlite_url)
    cfg = config_for(sqlite_url)
    cfg.intake.cap_feeds = [f"http://127.0.0.1:{server.server_address[1]}/feed.atom"]
    cfg.intake.cap_poll_seconds = 1.0
    svc = build_services(cfg)
    loop = asyncio.new_event_loop()
    try:
        svc.start(loop)
        assert svc.intake is not None and svc.intake.cap is not None
        poller = svc.intake.cap

        async def polled(times: int) -> None:
            deadline = time.monotonic() + 20
            while poller.polls < times:
                assert time.monotonic() < deadline, "the feed was not polled"
                await asyncio.sleep(0.05)

        loop.run_until_complete(polled(3))
        with svc.engine.connect() as conn:
            rows = conn.execute(sa.select(t.signals.c.source_kind, t.signals.c.payload)).all()
        assert sorted(r.payload["cap"]["sender"] for r in rows) == [
            "cap@ec.gc.ca",
            "http://earthquake.usgs.gov/research/monitoring/anss/neic/",
            "webmaster@rfs.nsw.gov.au",
        ]
        state = poller.feeds[cfg.intake.cap_feeds[0]]
        assert (state.stored, state.refused, state.failures) == (3, 1, 0)
        assert Handler.hits["australia.cap"] == 1  # an entry seen is not fetched again
        assert Handler.hits["feed.atom"] >= 3
    finally:
        if svc.intake is not None:
            loop.run_until_complete(svc.intake.aclose())  # its HTTP client closes
        svc.stop()
        loop.close()
        server.shutdown()
        server.server_close()
