"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get
from litestar.openapi.datastructures import ResponseSpec

from alarmdesk.web.api.common import services
from alarmdesk.web.api.schemas import HealthOut


@get(
    "/api/v1/health",
    opt={"public": True},
    responses={503: ResponseSpec(HealthOut, description="The writer is not running")},
    summary="Liveness and readiness",
)
async def health(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    ok = services(request).writer.alive
    return Response(
        HealthOut(status="ok" if ok else "degraded", writer=ok),
        status_code=200 if ok else 503,
    )


ROUTES = [health]
