"""The audit log over the API: only auditors read it, with a stated reason, and reading it
is itself an entry. The verifier key is public: anyone may check an export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import Stream

from alarmdesk.domain.errors import JustificationRequired
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import AuditEvent, Operation
from alarmdesk.store.audit import export_lines
from alarmdesk.web.api.common import actor_of, audit, needs, services


@get(
    "/api/v1/audit/export",
    opt=needs(Permission.AUDIT_READ),
    summary="The whole audit log with its signed checkpoints (JSON Lines)",
    description="Needs a justification; the export is logged before it starts. Verify it "
    "offline with `alarmdesk audit verify FILE --pubkey KEY`.",
)
async def export(
    request: Request[Any, Any, Any],
    justification: Annotated[str | None, QueryParameter(max_length=500)] = None,
) -> Stream:
    reason = (justification or "").strip()
    if len(reason) < 5:
        raise JustificationRequired(
            "an export of the audit log needs a justification", field="justification"
        )
    await audit(
        request,
        AuditEvent(actor_of(request), Operation.EXPORT, "audit_log", "", justification=reason),
    )
    engine = services(request).engine

    def lines() -> Iterator[bytes]:
        with engine.connect() as conn:
            for line in export_lines(conn):
                yield (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")

    return Stream(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit-log.jsonl"'},
    )


@get(
    "/api/v1/audit/pubkey",
    opt={"public": True},
    summary="The key that verifies the audit log's checkpoints",
)
async def pubkey(request: Request[Any, Any, Any]) -> dict[str, str]:
    chain = services(request).writer.audit
    return {
        "vkey": chain.signer.vkey if chain is not None else "",
        "origin": chain.origin if chain is not None else "",
    }


ROUTES = [export, pubkey]
