"""The audit log over the API: only auditors read it, with a stated reason, and reading it
is itself an entry, committed (with a checkpoint covering it) before a line leaves. The
verifier key is public: anyone may check an export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

import anyio
from litestar import Request, get
from litestar.params import QueryParameter
from litestar.response import Stream

from alarmdesk.bootstrap import audit_chain
from alarmdesk.safeguards.access import Permission
from alarmdesk.safeguards.audit import check_justification
from alarmdesk.service import audit_log
from alarmdesk.web.api.common import actor_of, needs, services
from alarmdesk.web.api.schemas import AUTH, PubkeyOut, responses


@get(
    "/api/v1/audit/export",
    opt=needs(Permission.AUDIT_READ),
    responses=responses(
        200,
        str,
        400,
        *AUTH,
        422,
        description="One JSON object per line: entries and signed checkpoints",
        media_type="application/x-ndjson",
    ),
    summary="The whole audit log with its signed checkpoints (JSON Lines)",
    description="Needs a justification; the export is logged before it starts. Verify it "
    "offline with `alarmdesk audit verify FILE --pubkey KEY`.",
)
async def export(
    request: Request[Any, Any, Any],
    justification: Annotated[str | None, QueryParameter(max_length=500)] = None,
) -> Stream:
    reason = check_justification(
        justification, required=True, why="an export of the audit log needs a justification"
    )
    svc = services(request)
    chain = audit_chain(svc.config)  # an appender of its own, like the command line's
    await anyio.to_thread.run_sync(
        lambda: audit_log.record_export(
            svc.engine, chain, actor_of(request), "", reason, svc.clock()
        )
    )

    def lines() -> Iterator[bytes]:
        for line in audit_log.export_lines(svc.engine):
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
async def pubkey(request: Request[Any, Any, Any]) -> PubkeyOut:
    chain = services(request).writer.audit
    return PubkeyOut(
        vkey=chain.signer.vkey if chain is not None else "",
        origin=chain.origin if chain is not None else "",
    )


ROUTES = [export, pubkey]
