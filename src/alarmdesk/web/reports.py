"""Reports over the API: the transparency report, for auditors and rights officers; the
response-time KPIs, for supervisors.

``GET /api/v1/reports/transparency?from=2026-01-01&to=2026-12-31&format=json|html`` (or
``period=2026``). Reading it is itself an audit entry (operation ``combine``: a report joins
data across incidents), committed with the report's closing checkpoint before it is sent. The
HTML form is a plain, printable page; a browser with a console session can open it directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio
import msgspec
from litestar import MediaType, Request, Response, delete, get, put
from litestar.params import FromPath, QueryParameter

from alarmdesk.bootstrap import Services, audit_chain
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION
from alarmdesk.domain.signal import decode
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.transparency import Period, render_html, render_json
from alarmdesk.service import saved_reports
from alarmdesk.service.heat import HeatReport, check_area, check_interval, heat_report
from alarmdesk.service.kpi_report import (
    DEFAULT_TARGET,
    KpiReport,
    api_parameter,
    kpi_query,
    kpi_report,
)
from alarmdesk.service.reports import transparency_report
from alarmdesk.service.saved_reports import SavedReport, SavedReportSpec
from alarmdesk.web.api.common import actor_of, needs, read_body, services
from alarmdesk.web.api.schemas import AUTH, body, errors, responses
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
    report = await _off_loop(
        request,
        lambda svc, chain: transparency_report(
            svc.engine,
            chain,
            span,
            actor=actor_of(request),
            policy=svc.config.retention,
            config=svc.config.report,
            now=svc.clock(),
            fmt=fmt,
        ),
    )
    if fmt == "html":
        return Response(render_html(report), media_type=MediaType.HTML)  # + charset: Litestar
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
        option_name=api_parameter,  # a message names `from`, not the command line's `--from`
    )
    return await _off_loop(
        request,
        lambda svc, chain: kpi_report(
            svc.engine,
            chain,
            query,
            actor=actor_of(request),
            now=svc.clock(),
            fmt="json",
            target_seconds=target,
            analytics=svc.analytics,
        ),
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
    query = kpi_query(
        start,
        end,
        timezone=timezone,
        source=source,
        own=own,
        resolution=resolution,
        option_name=api_parameter,
    )
    measured = check_interval(interval)
    area = check_area(cell, query.resolution) if cell is not None else None
    return await _off_loop(
        request,
        lambda svc, chain: heat_report(
            svc.engine,
            chain,
            query,
            actor=actor_of(request),
            now=svc.clock(),
            interval=measured,
            area=area,
            target_seconds=target,
            analytics=svc.analytics,
        ),
    )


_saved_decoder = msgspec.json.Decoder(SavedReportSpec)
_T = TypeVar("_T")


async def _off_loop(request: Request[Any, Any, Any], build: Callable[[Services, Any], _T]) -> _T:
    """A report built in a worker thread, so the alarm path never waits on one, with an
    audit appender of its own, like the command line's: the report is read and its reading
    logged (and a transparency report's closing checkpoint signed) in one transaction.
    ``build`` gets the services and that appender (bootstrap.audit_chain; web/ names no
    store type)."""
    svc = services(request)
    chain = audit_chain(svc.config)
    return await anyio.to_thread.run_sync(lambda: build(svc, chain))


@get(
    "/api/v1/reports/saved",
    opt=needs(Permission.KPI_READ),
    responses=errors(*AUTH),
    summary="Saved KPI reports: each one's name and what it asks",
)
async def list_saved_reports(request: Request[Any, Any, Any]) -> list[SavedReport]:
    svc = services(request)
    return await anyio.to_thread.run_sync(lambda: saved_reports.list_saved(svc.engine))


@put(
    "/api/v1/reports/saved/{name:str}",
    opt=needs(Permission.KPI_READ),
    dependencies=body(SavedReportSpec),
    responses=errors(*AUTH, 408, 413, 422, 503),
    summary="Save a KPI report's options by name (replacing one of that name)",
    description="The name (a-z, 0-9, '.', '_', '-'), the description and the source are "
    "purpose-screened: one that targets people exercising rights is refused with "
    "`protected_purpose`, and the refusal is in the audit log. `days`: the last days it covers, "
    "today included in its `timezone`.",
)
async def save_report(request: Request[Any, Any, Any], name: FromPath[str]) -> SavedReport:
    spec: SavedReportSpec = decode(_saved_decoder, await read_body(request, 16 * 1024))
    svc = services(request)
    await svc.writer.run(
        saved_reports.save(actor_of(request), name, spec, option_name=api_parameter)
    )
    return await anyio.to_thread.run_sync(lambda: saved_reports.get_saved(svc.engine, name))


@delete(
    "/api/v1/reports/saved/{name:str}",
    status_code=204,
    opt=needs(Permission.KPI_READ),
    responses=errors(*AUTH, 404, 503),
    summary="Remove a saved KPI report",
)
async def remove_saved_report(request: Request[Any, Any, Any], name: FromPath[str]) -> None:
    await services(request).writer.run(saved_reports.remove(actor_of(request), name))


@get(
    "/api/v1/reports/saved/{name:str}/kpi",
    opt=needs(Permission.KPI_READ),
    responses=responses(200, KpiReport, *AUTH, 404, 422, description="The saved report's KPIs"),
    summary="Run a saved KPI report over its last days (docs/analytics.md, Saved reports)",
)
async def run_saved_report(request: Request[Any, Any, Any], name: FromPath[str]) -> KpiReport:
    return await _off_loop(
        request,
        lambda svc, chain: saved_reports.run_saved(
            svc.engine,
            chain,
            name,
            actor=actor_of(request),
            now=svc.clock(),
            fmt="json",
            analytics=svc.analytics,
            option_name=api_parameter,
        ),
    )


ROUTES = [
    get_transparency_report,
    get_kpi_report,
    get_heat_report,
    list_saved_reports,
    save_report,
    remove_saved_report,
    run_saved_report,
]
