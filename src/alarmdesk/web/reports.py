"""Reports over the API: the transparency report, for auditors and rights officers.

``GET /api/v1/reports/transparency?from=2026-01-01&to=2026-12-31&format=json|html`` (or
``period=2026``). Reading it is itself an audit entry (operation ``combine``: a report joins
data across incidents), committed before the report is sent. The HTML form is a plain,
printable page; a browser with a console session can open it directly.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from litestar import Request, Response, get
from litestar.params import QueryParameter

from alarmdesk.domain.errors import InvalidField
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.safeguards.transparency import Period, render_html, render_json
from alarmdesk.service.reports import build_report
from alarmdesk.store.audit import AuditChain
from alarmdesk.web.api.common import actor_of, audit, needs, services
from alarmdesk.web.params import query_period

FORMATS = ("json", "html")


@get(
    "/api/v1/reports/transparency",
    opt=needs(Permission.REPORT_READ),
    summary="The transparency report for a period",
    description="Query: `period` (YYYY, YYYY-MM or YYYY-Qn) or `from` and `to` (YYYY-MM-DD, both "
    "days included, or ISO 8601 times with an offset); `format` json (default) or html. "
    'Counts from 1 to 4 are shown as "<5". Includes the signed audit checkpoint closing the '
    "period and the log's public key. Reading the report is logged.",
)
async def transparency_report(
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
    writer_chain = svc.writer.audit
    chain = (
        AuditChain(
            writer_chain.signer,
            writer_chain.origin,
            every=writer_chain.every,
            interval=writer_chain.interval,
        )
        if writer_chain is not None
        else None
    )
    now = svc.clock()

    def build() -> dict[str, Any]:
        with svc.engine.begin() as conn:
            return build_report(
                conn,
                span,
                chain=chain,
                policy=svc.config.retention,
                now=now,
                config=svc.config.report,
            )

    report = await anyio.to_thread.run_sync(build)
    await audit(
        request,
        AuditEvent(
            actor_of(request),
            Operation.COMBINE,
            "transparency_report",
            f"{span.start.isoformat()}/{span.end.isoformat()}",
            detail={"format": fmt},
        ),
    )
    if fmt == "html":
        return Response(render_html(report), media_type="text/html; charset=utf-8")
    return Response(render_json(report), media_type="application/json")


ROUTES = [transparency_report]
