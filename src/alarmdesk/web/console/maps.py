"""The map page and the map background files a deployment serves itself (a GeoJSON basemap,
a PMTiles archive with the range requests its reader needs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import anyio
from litestar import Request, Response, get
from litestar.response import File

from alarmdesk.domain.errors import NotFound
from alarmdesk.safeguards.access import Permission, allowed, visible_desks
from alarmdesk.service.queries import IncidentFilter
from alarmdesk.web.api import needs, services
from alarmdesk.web.console.pages import QUEUE_STATUSES, live_queue
from alarmdesk.web.console.render import render
from alarmdesk.web.console.settings import (
    DEMO_STREETS,
    is_url,
    map_config,
    map_settings,
    principal,
    reference,
)

MAP_LIMIT: Final = 2000  # markers the map starts with, the most urgent first
RANGE_LIMIT: Final = 16 * 1024 * 1024  # bytes of an archive one range request may read


@get("/map", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def map_page(request: Request[Any, Any, Any]) -> Response[str]:
    svc = services(request)
    who = principal(request)
    flt = IncidentFilter(statuses=tuple(QUEUE_STATUSES), desks=visible_desks(who, None) or ())
    queue = await live_queue(request, flt, limit=MAP_LIMIT)
    ref = await anyio.to_thread.run_sync(reference, svc)
    return render(
        request,
        "map.html",
        title="Map",
        boot={
            "items": queue.items,
            "last_event_id": queue.last_event_id,
            "types": ref.type_names(),
            "desks": sorted(who.desks),
            "map": map_config(request),
            # the heat overlay reads /api/v1/reports/heat: offered to who may read it
            "heat": allowed(who, Permission.KPI_READ),
        },
    )


@get("/kpi", opt=needs(Permission.KPI_READ), include_in_schema=False)
async def kpi_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Response times for supervisors: kpi.js asks /api/v1/reports/kpi and draws the p90 of each
    interval per group with Chart.js (vendored, served here), and the figures as tables; and
    /api/v1/reports/heat, drawn as H3 cells on the map (heat.js)."""
    return render(request, "kpi.html", title="Response times", boot={"map": map_config(request)})


@get("/units", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def units_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The unit status board: every unit, its status, its incident, time in status (units.js
    refreshes it from /api/v1/units)."""
    return render(request, "units.html", title="Units")


@get("/silences", opt=needs(Permission.INCIDENT_READ), include_in_schema=False)
async def silences_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Silences: what is held back and why; create and end them (silences.js, the API)."""
    return render(request, "silences.html", title="Silences")


def _local_file(value: str | None, what: str) -> Path:
    if not value or is_url(value):
        raise NotFound(f"no local {what} is configured")
    path = Path(value).expanduser()
    if not path.is_file():
        raise NotFound(f"the configured {what} {path} does not exist")
    return path


@get("/console/basemap.geojson", opt=needs(Permission.REFERENCE_READ), include_in_schema=False)
async def basemap_file(request: Request[Any, Any, Any]) -> File:
    path = _local_file(map_settings(services(request)).basemap_geojson, "basemap GeoJSON")
    return File(path, media_type="application/geo+json", content_disposition_type="inline")


@get("/console/tiles.pmtiles", opt=needs(Permission.REFERENCE_READ), include_in_schema=False)
async def pmtiles_file(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The configured PMTiles archive, else the demo city's streets (docs/basemap.md), with
    HTTP range requests (the reader needs them)."""
    configured = map_settings(services(request)).pmtiles
    path = _local_file(configured or str(DEMO_STREETS), "PMTiles archive")
    size = path.stat().st_size
    rng = request.headers.get("range", "")
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
    if not m:
        return Response(
            await anyio.Path(path).read_bytes(),
            media_type="application/octet-stream",
            headers=headers,
        )
    start = int(m.group(1))
    end = min(int(m.group(2)) if m.group(2) else size - 1, size - 1, start + RANGE_LIMIT)
    if start >= size or end < start:
        return Response(
            b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"}
        )

    def read() -> bytes:
        with path.open("rb") as fh:
            fh.seek(start)
            return fh.read(end - start + 1)

    data = await anyio.to_thread.run_sync(read)
    return Response(
        data,
        status_code=206,
        media_type="application/octet-stream",
        headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"},
    )


ROUTES: Final = [map_page, kpi_page, units_page, silences_page, basemap_file, pmtiles_file]
