"""Report assembly: the transparency report from the store's queries, and the audit entry
that records who produced it, in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.safeguards.retention_policy import ReportConfig, RetentionConfig
from alarmdesk.safeguards.transparency import FORMAT_VERSION, METHOD, Period, suppress
from alarmdesk.store import report_queries as q
from alarmdesk.store.audit import AuditChain

__all__ = ["build_report", "transparency_report"]


def build_report(
    conn: sa.Connection,
    period: Period,
    *,
    chain: AuditChain | None,
    policy: RetentionConfig,
    now: datetime,
    config: ReportConfig | None = None,
    sign: bool = True,
    verify: bool = True,
) -> dict[str, Any]:
    """The report as a JSON-ready dict. ``conn`` should be in a transaction: when the period
    has no closing checkpoint yet and ``sign`` is true, one is signed with ``chain``."""
    config = config or ReportConfig()
    start, end = period.start, period.end
    audit = q.audit_figures(conn, start, end)
    return {
        "report": "alarmdesk transparency report",
        "format_version": FORMAT_VERSION,
        "organisation": config.organisation,
        "use_policy_url": config.use_policy_url,
        "period": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "provisional": end > now,
        },
        "generated_at": now.isoformat(),
        "method": METHOD,
        "use": q.use(conn, start, end),
        "data": q.data(conn, start, end, audit.total),
        "custom_types": q.custom_types(conn, start, end),
        "access": audit.access(),
        "sharing": audit.sharing(),
        "erasures": audit.erasures(),
        "configuration_changes": audit.configuration(),
        "retention": policy.describe(),
        "complaints": suppress(config.complaints),
        "costs": config.costs or None,
        "audit_log": q.audit_log(conn, end, chain, now, sign=sign, verify=verify),
    }


def transparency_report(
    engine: sa.Engine,
    chain: AuditChain,
    period: Period,
    *,
    actor: Actor,
    policy: RetentionConfig,
    config: ReportConfig,
    now: datetime,
    fmt: str,
    verify: bool = True,
) -> dict[str, Any]:
    """Builds the report and records that ``actor`` produced it, in one transaction.

    ``chain`` must be an appender of its own (not the writer's): it syncs with the log under
    the audit lock, like the command line's.
    """
    with engine.begin() as conn:
        report = build_report(
            conn, period, chain=chain, policy=policy, now=now, config=config, verify=verify
        )
        chain.append(
            conn,
            [
                AuditEvent(
                    actor,
                    Operation.COMBINE,
                    "transparency_report",
                    f"{period.start.isoformat()}/{period.end.isoformat()}",
                    detail={"format": fmt},
                )
            ],
            now,
        )
    return report
