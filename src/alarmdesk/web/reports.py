"""Reports over the API: the transparency report, for auditors and rights officers; the
response-time KPIs, for supervisors.

``GET /api/v1/reports/transparency?from=2026-01-01&to=2026-12-31&format=json|html`` (or
``period=2026``). Reading it is itself an audit entry (operation ``combine``: a report joins
data across incidents), committed with the report's closing checkpoint before it is sent. The
HTML form is a plain, printable page; a browser with a console session can open it directly.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from litestar import Request, Response, get
from litestar.params import QueryParameter

from alarmdesk.bootstrap import audit_chain
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.transparency import Period, render_html, render_json
from alarmdesk.service.heat import HeatReport, check_area, check_interval, heat_report
from alarmdesk.service.kpi_report import DEFAULT_TARGET, KpiReport, kpi_query, kpi_report
from alarmdesk.service.reports import transparency_report
from alarmdesk.web.api.common import actor_of, needs, services
from alarmdesk.web.api.schemas import AUTH, responses
from alarmdesk.web.params import query_period

FORMATS = ("json", "html")


@get(
    "/api/v1/reports/transparency",
    opt=needs(Permission.REPORT_READ),
    responses=responses(
        200,
        dict[str, Any],
        *AUTH,
        422,
        description="The report (JSON, or with format=html a printable page)",
    ),
    summary="The transparency report for a period",
    description="Query: `period` (YYYY, YYYY-MM or YYYY-Qn) or `from` and `to` (YYYY-MM-DD, both "
    "days included, or ISO 8601 times with an offset); `format` json (default) or html. "
    'Counts from 1 to 4 are shown as "<5". Includes the signed audit checkpoint closing the '
    "period and the log's public key. Reading the report is logged.",
)
async def get_transparency_report(
    request: Request[Any, Any, Any],
    period: Annotated[str | None, QueryParameter(max_length=16)] = None,
    start: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
    end: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
    fmt: Annotated[str, QueryParameter(name="format")] = "json",
) -> Response[Any]:
    if fmt not in FORMATS:
        raise InvalidField(
            f"format is json or html, not {fmt!r}", field="format", code="invalid_value"
        )
    span: Period = query_period(period, start, end)
    svc = services(request)
    # An appender of its own, like the command line's: the report is built, its closing
    # checkpoint signed and its reading logged in one transaction (service/reports.py).
    chain = audit_chain(svc.config)
    report = await anyio.to_thread.run_sync(
        lambda: transparency_report(
            svc.engine,
            chain,
            span,
            actor=actor_of(request),
            policy=svc.config.retention,
            config=svc.config.report,
            now=svc.clock(),
            fmt=fmt,
        )
    )
    if fmt == "html":
        return Response(render_html(report), media_type="text/html; charset=utf-8")
    return Response(render_json(report), media_type="application/json")


@get(
    "/api/v1/reports/kpi",
    opt=needs(Permission.KPI_READ),
    responses=responses(
        200, KpiReport, *AUTH, 422, description="The KPIs and NFPA 1710 compliance"
    ),
    summary="Response-time KPIs and NFPA 1710 compliance (docs/analytics.md)",
    description="Query: `from` and `to` (YYYY-MM-DD, both days included), `by` (comma-separated: "
    "period, station_area, unit_kind, type, priority, hour, desk, h3), `resolution` (of the H3 "
    "cells, 5 to 10, default 8), `timezone` (IANA), `period` (day, "
    "week, month, year), and either `source` (an import) or `own=true` (alarmdesk's own resolved "
    "and closed incidents). Percentiles are nearest-rank. Reading the report is logged.",
)
async def get_kpi_report(
    request: Request[Any, Any, Any],
    start: Annotated[str, QueryParameter(name="from", max_length=10)],
    end: Annotated[str, QueryParameter(name="to", max_length=10)],
    by: Annotated[str, QueryParameter(max_length=80)] = "",
    timezone: Annotated[str, QueryParameter(max_length=64)] = "UTC",
    period: Annotated[str, QueryParameter(max_length=8)] = "month",
    source: Annotated[str | None, QueryParameter(max_length=64)] = None,
    own: Annotated[bool, QueryParameter()] = False,
    target: Annotated[float, QueryParameter(gt=0, le=86400)] = DEFAULT_TARGET,
    resolution: Annotated[str, QueryParameter(max_length=4)] = str(DEFAULT_RESOLUTION),
) -> KpiReport:
    query = kpi_query(
        start,
        end,
        by=by,
        timezone=timezone,
        period=period,
        source=source,
        own=own,
        resolution=resolution,
    )
    svc = services(request)
    chain = audit_chain(svc.config)  # an appender of its own, as for the transparency report
    # Off the event loop: the alarm path never waits on a report.
    return await anyio.to_thread.run_sync(
        lambda: kpi_report(
            svc.engine,
            chain,
            query,
            actor=actor_of(request),
            now=svc.clock(),
            fmt="json",
            target_seconds=target,
        )
    )


@get(
    "/api/v1/reports/heat",
    opt=needs(Permission.KPI_READ),
    responses=responses(
        200, HeatReport, *AUTH, 422, description="Calls per H3 cell, a GeoJSON FeatureCollection"
    ),
    summary="The heat layer: calls and response times per H3 cell (docs/analytics.md)",
    description="Query: `from` and `to` (YYYY-MM-DD, both days included), `timezone` (IANA), "
    "`resolution` (H3, 5 to 10, default 8), `interval` (default call_to_on_scene: the p50 and "
    "p90 given per cell), `cell` (only the calls inside this H3 cell, of the resolution or "
    "coarser), `target` (seconds: the p90 a cell should keep under, echoed for the map), and "
    "either `source` (an import) or `own=true` (alarmdesk's own resolved and closed incidents). "
    "Each Feature is a cell's outline with its calls, count, p50 and p90; calls without a "
    "location are counted in `unlocated`. Percentiles are nearest-rank. Reading it is logged.",
)
async def get_heat_report(
    request: Request[Any, Any, Any],
    start: Annotated[str, QueryParameter(name="from", max_length=10)],
    end: Annotated[str, QueryParameter(name="to", max_length=10)],
    timezone: Annotated[str, QueryParameter(max_length=64)] = "UTC",
    resolution: Annotated[str, QueryParameter(max_length=8)] = str(DEFAULT_RESOLUTION),
    interval: Annotated[str, QueryParameter(max_length=32)] = "call_to_on_scene",
    cell: Annotated[str | None, QueryParameter(max_length=16)] = None,
    source: Annotated[str | None, QueryParameter(max_length=64)] = None,
    own: Annotated[bool, QueryParameter()] = False,
    target: Annotated[float, QueryParameter(gt=0, le=86400)] = DEFAULT_TARGET,
) -> HeatReport:
    query = kpi_query(start, end, timezone=timezone, source=source, own=own, resolution=resolution)
    measured = check_interval(interval)
    area = check_area(cell, query.resolution) if cell is not None else None
    svc = services(request)
    chain = audit_chain(svc.config)  # an appender of its own, as for the KPI report
    # Off the event loop, like the KPI report.
    return await anyio.to_thread.run_sync(
        lambda: heat_report(
            svc.engine,
            chain,
            query,
            actor=actor_of(request),
            now=svc.clock(),
            interval=measured,
            area=area,
            target_seconds=target,
        )
    )


ROUTES = [get_transparency_report, get_kpi_report, get_heat_report]
