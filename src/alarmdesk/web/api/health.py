"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from alarmdesk.web.api.common import services


@get("/api/v1/health", opt={"public": True}, summary="Liveness and readiness")
async def health(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    ok = services(request).writer.alive
    return Response(
        {"status": "ok" if ok else "degraded", "writer": ok},
        status_code=200 if ok else 503,
    )


ROUTES = [health]
