"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin

from alarmdesk import __version__
from alarmdesk.bootstrap import Services, build_services
from alarmdesk.config import Config
from alarmdesk.service.analytics import export_loop
from alarmdesk.service.retention import retention_loop
from alarmdesk.web import api, audit, console, reports, session, types
from alarmdesk.web.auth import (
    OPENAPI_PATH,
    Authenticator,
    LoginThrottle,
    auth_middleware,
    permission_guard,
)
from alarmdesk.web.errors import EXCEPTION_HANDLERS, audit_denial
from alarmdesk.web.fast_ingest import FastIngest
from alarmdesk.web.server import body_deadline
from alarmdesk.web.workers import WorkerPool


@asynccontextmanager
async def _worker_lifespan(svc: Services) -> AsyncIterator[None]:
    """An HTTP worker's: linked to the writer process, which runs the writer, the equipment
    receivers, webhooks, retention and exports; this process serves HTTP and its consoles."""
    assert svc.link is not None
    await svc.connect_link()
    svc.link.ready()
    try:
        yield
    finally:
        await svc.link.close()
        svc.hub.close()
        svc.engine.dispose()


def create_app(
    cfg: Config | None = None,
    *,
    svc: Services | None = None,
    fast_ingest: bool = True,
    workers: WorkerPool | None = None,
) -> Litestar:
    """Builds the app; the services start with the app and stop with it. ``fast_ingest``:
    the two ingest routes' common case is served in raw ASGI (web/fast_ingest.py).
    ``workers``: the HTTP worker processes this (writer) process starts once its writer runs
    and stops before it stops (web/workers.py). With ``svc.link`` set, this app is such a
    worker's: it writes nothing itself."""
    svc = svc or build_services(cfg or Config())

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        if svc.link is not None:
            async with _worker_lifespan(svc):
                yield
            return
        loop = asyncio.get_running_loop()
        writing: asyncio.Task[None] | None = None
        if workers is not None:
            workers.reserve_port()  # a port taken fails start-up here, before the writer
        if svc.node is None:
            svc.start(loop)
            svc.hub_after_stored()  # before the writer's first commit is offered (same loop)
            svc.start_webhooks(loop)
        else:  # distributed mode: serve intake at once, write once the writer lease is ours
            svc.check_schema()  # a database not upgraded fails start-up here too
            await svc.connect_node()
            svc.hub_after_stored()  # after the relay listens: a later commit is heard
            writing = asyncio.create_task(svc.become_writer(loop), name="become-writer")
        policy = svc.config.retention
        purge = asyncio.create_task(retention_loop(svc, policy, policy.schedule_hours))
        exports = asyncio.create_task(
            export_loop(svc, svc.config.analytics.export_minutes, svc.config.retention)
        )
        try:
            if workers is not None:
                await workers.start(svc)
            yield
        finally:
            if workers is not None:
                await workers.stop()  # first: their requests in flight need the writer
            purge.cancel()  # a running purge commits its current chunk, then stops
            exports.cancel()  # a running export is waited for
            for task in (purge, exports):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if writing is not None and not writing.done():
                writing.cancel()  # a standby stopping: it never wrote
                with contextlib.suppress(asyncio.CancelledError):
                    await writing
            if svc.webhooks is not None:
                await svc.webhooks.aclose()  # a delivery in flight is redone after a restart
            await svc.stop_node()  # before the writer: a batch in hand is committed first
            svc.stop()
            await svc.close_node()

    app = Litestar(
        route_handlers=[
            *api.ROUTES,
            *session.ROUTES,
            *types.ROUTES,
            *console.ROUTES,
            *reports.ROUTES,
            *audit.ROUTES,
        ],
        middleware=[body_deadline, auth_middleware],
        guards=[permission_guard],
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,
        after_exception=[audit_denial],
        openapi_config=OpenAPIConfig(
            title="alarmdesk",
            version=__version__,
            path=OPENAPI_PATH,
            render_plugins=[ScalarRenderPlugin()],
        ),
        request_max_body_size=None,  # the routes enforce their own limits
    )
    auth = svc.config.auth
    app.state.services = svc
    app.state.authenticator = Authenticator(svc, timedelta(hours=auth.session_hours))
    # Each process counts failed sign-ins for itself: with HTTP workers each allows its share
    # (at least one), so that an attacker whose connections the kernel spreads over all of
    # them gets no more tries than the limit.
    share = max(1, svc.config.server.workers) if svc.link is not None else 1
    app.state.login_throttle = LoginThrottle(
        max(1, auth.login_failures_per_name // share),
        max(1, auth.login_failures_per_address // share),
        auth.login_window_seconds,
    )
    app.state.cookie_secure = auth.cookie_secure
    if fast_ingest:
        app.asgi_handler = FastIngest(app.asgi_handler, svc, app.state.authenticator)
    return app
