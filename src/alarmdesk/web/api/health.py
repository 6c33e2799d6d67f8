"""Liveness, readiness and metrics, for load balancers and Prometheus (docs/operations.md).

- ``/healthz``: alive — the process answers and its writer thread runs (in distributed mode,
  or it is a standby waiting for the writer lease: ``"status": "standby"``).
- ``/readyz``: ready to take signals — the writer runs, the database answers, the hub runs and
  the writer's backlog is under ``[writer] ready_backlog``; in distributed mode also: connected
  to NATS and the intake stream answers, and a standby is ready too (``"role": "standby"``:
  it queues intake in the log). A load balancer sends intake only to a ready node. On an HTTP
  worker (``[server] workers``) "the writer runs" and the backlog are the writer process's, as
  it tells its workers every second over the link.
- ``/metrics``: Prometheus text format (``service/metrics.py``); counts and durations only,
  so it is public like the two probes. ``[metrics] enabled = false`` turns it off (404).
- ``/api/v1/health``: the original probe, kept for existing monitors.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import sqlalchemy as sa
from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from alarmdesk.domain.errors import InvalidField, NotFound
from alarmdesk.service.metrics import CONTENT_TYPE
from alarmdesk.web.api.common import services
from alarmdesk.web.api.schemas import HealthOut, ReadyOut, errors

_STORE_TIMEOUT = 2.0  # seconds a readiness probe waits for the database


@get(
    "/api/v1/health",
    opt={"public": True},
    responses={503: ResponseSpec(HealthOut, description="The writer is not running")},
    summary="Liveness and readiness",
)
async def health(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    return _alive(request)


def _alive(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    svc = services(request)
    if svc.standby:  # alive, waiting for the writer lease another node holds
        return Response(HealthOut(status="standby", writer=False), status_code=200)
    ok = svc.writer_up
    return Response(
        HealthOut(status="ok" if ok else "degraded", writer=ok),
        status_code=200 if ok else 503,
    )


@get(
    "/healthz",
    opt={"public": True},
    responses={503: ResponseSpec(HealthOut, description="The writer is not running")},
    summary="Alive: the process answers and its writer runs",
)
async def healthz(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    return _alive(request)


def _store_answers(engine: sa.Engine) -> bool:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return True
    except Exception:
        return False


@get(
    "/readyz",
    opt={"public": True},
    responses={
        **errors(422),
        503: ResponseSpec(ReadyOut, description="Not ready: see which part"),
    },
    summary="Ready: writer running, database (and intake log) answering, backlog under its bound",
    description="Distributed mode: `role=writer` is ready only on the node that writes (for "
    "a balancer that must reach it); `role=standby` only on the others (a balancer may keep "
    "full-speed intake off the writer node, whose commits it would slow: docs/operations.md).",
)
async def readyz(
    request: Request[Any, Any, Any],
    role: Annotated[str | None, QueryParameter(max_length=8)] = None,
) -> Response[ReadyOut]:
    if role not in (None, "writer", "standby"):
        raise InvalidField("role is writer, standby or absent", field="role", code="invalid_value")
    svc = services(request)
    store = False
    with anyio.move_on_after(_STORE_TIMEOUT):
        store = await anyio.to_thread.run_sync(_store_answers, svc.engine, abandon_on_cancel=True)
    limit = svc.config.writer.ready_backlog
    backlog = svc.writer_backlog
    writer, bus, standby = svc.writer_up, not svc.hub.closed, svc.standby
    intake_log = None if svc.node is None else await svc.node.intake.reachable(_STORE_TIMEOUT)
    if svc.node is None:
        ready = writer and store and bus and backlog <= limit
        status = "ready" if ready else "not_ready"
    else:
        # Distributed mode: intake goes into the log, so a node is ready for it while the
        # log answers, a standby too (the writer node stores what it queues), and while the
        # database is away: then "degraded", signals held in the log until it returns.
        ready = bus and intake_log is True and (standby or writer)
        if role == "writer":
            ready = ready and not standby and store
        elif role == "standby":
            ready = ready and standby
        status = "not_ready" if not ready else ("ready" if store else "degraded")
    return Response(
        ReadyOut(
            status=status,
            writer=writer,
            store=store,
            bus=bus,
            backlog=backlog,
            backlog_limit=limit,
            intake_log=intake_log,
            role=None if svc.node is None else ("standby" if standby else "writer"),
        ),
        status_code=200 if ready else 503,
    )


@get(
    "/metrics",
    opt={"public": True},
    media_type=CONTENT_TYPE,
    responses={404: ResponseSpec(None, description="[metrics] enabled = false")},
    summary="Prometheus metrics (text format): counts and durations, never incident data",
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    if not svc.config.metrics.enabled:
        raise NotFound("metrics are turned off ([metrics] enabled = false)")
    body = await anyio.to_thread.run_sync(svc.writer.metrics.render)
    return Response(body, media_type=CONTENT_TYPE)


ROUTES = [health, healthz, readyz, metrics]
