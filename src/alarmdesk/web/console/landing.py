"""Start pages of the roles that do not handle incidents: an auditor's audit log (export with
a justification, the verifier key), a rights officer's transparency report and custom types
awaiting approval, an administrator's accounts. Each reads through the service layer, and
reading personal data (accounts, authors and approvers of types) is itself audited."""

from __future__ import annotations

from datetime import date
from typing import Any, Final

import anyio
from litestar import Request, Response, get

from alarmdesk.safeguards.access import Permission, allowed
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.service import accounts, centre, custom_types
from alarmdesk.web.api import actor_of, audit, needs, services
from alarmdesk.web.console.render import render
from alarmdesk.web.console.settings import principal


@get("/audit", opt=needs(Permission.AUDIT_READ), include_in_schema=False)
async def audit_page(request: Request[Any, Any, Any]) -> Response[str]:
    chain = services(request).writer.audit
    return render(
        request,
        "audit.html",
        title="Audit log",
        vkey=chain.signer.vkey if chain is not None else "",
        origin=chain.origin if chain is not None else "",
    )


@get("/transparency", opt=needs(Permission.REPORT_READ), include_in_schema=False)
async def transparency_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The report's period picker (the report itself: ``/api/v1/reports/transparency``) and,
    for those who approve them, the custom types that wait for an approval."""
    svc = services(request)
    who = principal(request)
    pending: list[dict[str, Any]] | None = None
    if allowed(who, Permission.TYPES_APPROVE):
        types = await anyio.to_thread.run_sync(
            lambda: custom_types.list_types(svc.engine, custom=True)
        )
        pending = [x for x in types if x["status"] == "pending"]
        await audit(
            request,
            AuditEvent(
                actor_of(request),
                Operation.CONSULT,
                "incident_types",
                "",
                detail={"status": "pending", "results": len(pending)},
            ),
        )
    today = svc.clock().date()
    return render(
        request,
        "transparency.html",
        title="Transparency report",
        pending=pending,
        me=who.name,
        year=today.year,
        start=date(today.year, 1, 1).isoformat(),
        end=today.isoformat(),
    )


@get("/accounts", opt=needs(Permission.ACCOUNTS_MANAGE), include_in_schema=False)
async def accounts_page(request: Request[Any, Any, Any]) -> Response[str]:
    svc = services(request)
    users = await anyio.to_thread.run_sync(accounts.list_users, svc.engine)
    await audit(
        request,
        AuditEvent(
            actor_of(request), Operation.CONSULT, "accounts", "", detail={"results": len(users)}
        ),
    )
    return render(request, "accounts.html", title="Accounts", users=users)


@get("/setup", opt=needs(Permission.SETUP_MANAGE), include_in_schema=False)
async def setup_page(request: Request[Any, Any, Any]) -> Response[str]:
    """The centre's set-up as one YAML text (keys redacted) to read and edit; Plan and Apply
    send it to the API, with the same rules as ``alarmdesk config`` (setup.js)."""
    text = await anyio.to_thread.run_sync(centre.export_text, services(request).engine)
    await audit(request, AuditEvent(actor_of(request), Operation.CONSULT, "centre", ""))
    return render(request, "setup.html", title="Set-up", text=text)


ROUTES: Final = [audit_page, transparency_page, accounts_page, setup_page]
