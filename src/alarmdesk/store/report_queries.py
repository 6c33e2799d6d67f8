"""The transparency report's queries: counts from the database and the audit log's closing
checkpoint and verification. The figures' rules (suppression, the period) are pure and live in
``safeguards/transparency.py``; assembling the report is ``service/reports.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.events import EventType
from alarmdesk.domain.signal import SourceKind
from alarmdesk.safeguards.auditlog_file import (
    checkpoint_line,
    entry_line,
    erased_line,
    verify_export,
)
from alarmdesk.safeguards.transparency import (
    MAX_PROBLEMS,
    AuditFigures,
    iso,
    suppress,
    suppressed,
)
from alarmdesk.store import tables as t
from alarmdesk.store.audit import AuditChain, lock_audit
from alarmdesk.store.retention import MEDIA_KEYS

__all__ = ["audit_figures", "audit_log", "custom_types", "data", "use"]


def _between(
    column: sa.ColumnElement[Any], start: datetime, end: datetime
) -> sa.ColumnElement[bool]:
    return sa.and_(column >= start, column < end)


def _count(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    return int(
        conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
    )


def use(conn: sa.Connection, start: datetime, end: datetime) -> dict[str, Any]:
    i, s, ty = t.incidents, t.signals, t.incident_types
    opened = _between(i.c.opened_at, start, end)
    by_category = {c.value: 0 for c in HarmCategory}
    for category, n in conn.execute(
        sa.select(i.c.category, sa.func.count()).where(opened).group_by(i.c.category)
    ):
        by_category[str(category)] = int(n)
    by_type: dict[str, dict[str, Any]] = {}
    q = (
        sa.select(i.c.type_code, i.c.category, ty.c.name, ty.c.origin, sa.func.count())
        .select_from(i.outerjoin(ty, ty.c.code == i.c.type_code))
        .where(opened)
        .group_by(i.c.type_code, i.c.category, ty.c.name, ty.c.origin)
    )
    raw: dict[str, tuple[str, str, str, int]] = {}
    for code, category, name, origin, n in conn.execute(q):
        # An incident reclassified across categories counts under its type, whatever category.
        prev = raw.get(code)
        total = int(n) + (prev[3] if prev else 0)
        raw[code] = (name or code, str(category), origin or "unknown", total)
    for code, (name, category, origin, n) in sorted(raw.items(), key=lambda kv: (-kv[1][3], kv[0])):
        by_type[code] = {
            "name": name,
            "category": category,
            "origin": origin,
            "count": suppress(n),
        }
    received = _between(s.c.received_at, start, end)
    by_kind = {k.value: 0 for k in SourceKind}
    for kind, n in conn.execute(
        sa.select(s.c.source_kind, sa.func.count()).where(received).group_by(s.c.source_kind)
    ):
        by_kind[str(kind)] = int(n)
    return {
        "incidents_opened": suppress(sum(by_category.values())),
        "incidents_by_category": suppressed(by_category),
        "incidents_by_type": by_type,
        "signals_received": suppress(sum(by_kind.values())),
        "signals_by_source_kind": suppressed(by_kind),
        "signals_without_incident": suppress(
            _count(conn, s, sa.and_(received, s.c.incident_id.is_(None)))
        ),
    }


def data(conn: sa.Connection, start: datetime, end: datetime, audit_entries: int) -> dict[str, Any]:
    s, e = t.signals, t.events
    received = _between(s.c.received_at, start, end)
    note = e.c.detail["note"].as_string()
    notes = _count(
        conn,
        e,
        sa.and_(
            _between(e.c.at, start, end),
            sa.or_(e.c.type == EventType.NOTED.value, note.is_not(None)),
        ),
    )
    people = 0
    for (value,) in conn.execute(
        sa.select(s.c.payload["people"]).where(
            received, s.c.payload["people"].as_string().is_not(None)
        )
    ):
        if isinstance(value, list):
            people += len(value)
    media = _count(
        conn,
        s,
        sa.and_(received, sa.or_(*(s.c.payload[k].as_string().is_not(None) for k in MEDIA_KEYS))),
    )
    return {
        "signals": suppress(_count(conn, s, received)),
        "incidents": suppress(
            _count(conn, t.incidents, _between(t.incidents.c.opened_at, start, end))
        ),
        "notes": suppress(notes),
        "people": suppress(people),
        "signals_with_media_references": suppress(media),
        "audit_entries": suppress(audit_entries),
    }


def custom_types(conn: sa.Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every custom type, approved or not, with its purpose, approvers and use in the period.

    Reads the columns the database has: the purpose/approval columns arrive with migration
    0004; an older schema reports custom types without them.
    """
    inspector = sa.inspect(conn)
    present = {c["name"] for c in inspector.get_columns("incident_types")}
    ty = t.incident_types
    wanted = [
        "code",
        "name",
        "category",
        "status",
        "purpose",
        "legal_basis",
        "author",
        "created_at",
    ]
    cols = [ty.c[name] for name in wanted if name in present and name in ty.c]
    rows = (
        conn.execute(sa.select(*cols).where(ty.c.origin == "custom").order_by(ty.c.code))
        .mappings()
        .all()
    )
    if not rows:
        return []
    approvals: dict[str, list[dict[str, Any]]] = {}
    table = getattr(t, "incident_type_approvals", None)
    if isinstance(table, sa.Table) and inspector.has_table(table.name):
        for r in conn.execute(sa.select(table).order_by(table.c.code, table.c.at)).mappings():
            approvals.setdefault(r["code"], []).append(
                {"name": r["approver"], "role": r["role"], "at": iso(r["at"])}
            )
    i = t.incidents
    counts: dict[str, int] = {
        str(code): int(n)
        for code, n in conn.execute(
            sa.select(i.c.type_code, sa.func.count())
            .where(
                _between(i.c.opened_at, start, end), i.c.type_code.in_([r["code"] for r in rows])
            )
            .group_by(i.c.type_code)
        )
    }
    out = []
    for r in rows:
        out.append(
            {
                "code": r["code"],
                "name": r["name"],
                "category": r["category"],
                "status": r.get("status", "active"),
                "purpose": r.get("purpose", ""),
                "legal_basis": r.get("legal_basis", ""),
                "author": r.get("author", ""),
                "created_at": iso(r.get("created_at")),
                "approvers": approvals.get(r["code"], []),
                "incidents_opened": suppress(int(counts.get(r["code"], 0))),
            }
        )
    return out


def audit_figures(conn: sa.Connection, start: datetime, end: datetime) -> AuditFigures:
    a = t.audit_entries
    figures = AuditFigures()
    # Statement-level option: Connection.execution_options() would stick to the connection
    # and turn later statements (the checkpoint INSERT) into server-side cursors.
    query = (
        sa.select(a.c.entry)
        .where(_between(a.c.at, start, end))
        .order_by(a.c.seq)
        .execution_options(yield_per=5000)
    )
    with conn.execute(query) as result:
        for (text,) in result:
            figures.total += 1
            if text is None:
                figures.erased += 1
                continue
            try:
                entry = json.loads(text)
            except ValueError:
                entry = {}
            if isinstance(entry, dict):
                figures.add(entry)
    return figures


# -- the log: key, closing checkpoint, finding ---------------------------------------------------


def audit_log(
    conn: sa.Connection,
    end: datetime,
    chain: AuditChain | None,
    now: datetime,
    *,
    sign: bool,
    verify: bool,
) -> dict[str, Any]:
    a, cp = t.audit_entries, t.audit_checkpoints
    out: dict[str, Any] = {
        "public_key": chain.signer.vkey if chain is not None else None,
        "origin": chain.origin if chain is not None else None,
        "checkpoint": None,
        "finding": {"result": "not_verified", "reason": "no closing checkpoint"},
    }
    row = (
        conn.execute(
            sa.select(cp.c.size, cp.c.at, cp.c.note)
            .where(cp.c.at >= end)
            .order_by(cp.c.size)
            .limit(1)
        )
        .mappings()
        .first()
    )
    signed = False
    if row is None:
        top = conn.execute(sa.select(sa.func.max(a.c.seq))).scalar()
        total = 0 if top is None else int(top) + 1
        latest = (
            conn.execute(
                sa.select(cp.c.size, cp.c.at, cp.c.note).order_by(cp.c.size.desc()).limit(1)
            )
            .mappings()
            .first()
        )
        if (latest is None or int(latest["size"]) < total) and sign and chain is not None:
            lock_audit(conn)
            if chain.checkpoint(conn, now) is not None:
                signed = True
                latest = (
                    conn.execute(
                        sa.select(cp.c.size, cp.c.at, cp.c.note).where(cp.c.size == chain.size)
                    )
                    .mappings()
                    .first()
                )
        row = latest
    if row is None:
        return out
    size = int(row["size"])
    before_end = _count(conn, a, a.c.at < end)
    out["checkpoint"] = {
        "size": size,
        "at": iso(row["at"]),
        "note": row["note"],
        "signed_for_this_report": signed,
        "covers_period": size >= before_end,
    }
    if chain is None:
        out["finding"] = {"result": "not_verified", "reason": "no public key"}
    elif not verify:
        out["finding"] = {"result": "not_verified", "reason": "verification skipped"}
    else:
        out["finding"] = _verify(conn, size, row["note"], chain)
    return out


def _lines_up_to(conn: sa.Connection, size: int) -> Iterator[str]:
    """The export (``store.audit.export_lines`` format) of the first ``size`` entries with the
    checkpoints among them, as JSON lines."""
    a, cp = t.audit_entries, t.audit_checkpoints
    checkpoints = {
        int(r.size): r.note
        for r in conn.execute(sa.select(cp.c.size, cp.c.note).where(cp.c.size <= size))
    }

    def dump(line: Mapping[str, Any]) -> str:
        return json.dumps(line, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    query = (
        sa.select(a.c.seq, a.c.leaf_hash, a.c.entry)
        .where(a.c.seq < size)
        .order_by(a.c.seq)
        .execution_options(yield_per=2000)
    )
    with conn.execute(query) as result:
        for r in result:
            seq = int(r.seq)
            if r.entry is None:
                yield dump(erased_line(seq, bytes(r.leaf_hash)))
            else:
                yield dump(entry_line(seq, json.loads(r.entry)))
            if (note := checkpoints.get(seq + 1)) is not None:
                yield dump(checkpoint_line(note))


def _verify(conn: sa.Connection, size: int, note: str, chain: AuditChain) -> dict[str, Any]:
    rep = verify_export(
        _lines_up_to(conn, size),
        chain.signer.vkey,
        trusted_checkpoints=[note],
        expected_origin=chain.origin,
    )
    return {
        "result": "verified" if rep.ok else "problems_found",
        "entries_checked": rep.entries,
        "erased_entries": rep.erased,
        "checkpoints_checked": rep.checkpoints,
        "last_verified_size": rep.last_verified_size,
        "problems": rep.problems[:MAX_PROBLEMS],
        "problems_total": len(rep.problems),
    }
