"""The transparency report: what the centre did with its data in a period, checkable by anyone.

shared/DESIGN.md, "The line we hold", 5, and the ACLU's Community Control Over Police
Surveillance model (annual report): use, data kinds and amounts, sharing by recipient, custom
types with their purposes and approvers, access counts and denials, deletions, complaints,
audit findings and costs, with the signed checkpoint of the audit log that closes the period
and the log's public key, so the access figures can be recounted from an export.

How the figures are made (also printed in the report):

* The period is half-open, ``[from, to)``, in UTC. Dates given as ``YYYY-MM-DD`` are whole
  UTC days and both ends are included (``--to 2026-12-31`` runs to the end of that day).
* Use and data figures come from the database as it is when the report is generated: what
  retention erased since is no longer counted there (it is counted under erasures).
* Access, denial, sharing, erasure and configuration figures come from the audit entries
  whose time falls in the period. Entries whose content retention erased are counted apart
  (``access.erased_entries``): nothing can say what they were.
* Counts from 1 to 4 are shown as ``"<5"``; a true zero is shown as 0. (Totals are shown
  too, so a single suppressed cell can sometimes be bounded by subtraction: the rule hides
  small counts, it is not full statistical disclosure control.)
* The closing checkpoint is the first signed checkpoint made at or after the period's end;
  if there is none yet and entries are uncovered, one is signed for the report. The audit
  finding is the result of verifying the log, from its first entry up to that checkpoint,
  against the public key.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import jinja2
import sqlalchemy as sa

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.events import EventType
from alarmdesk.domain.signal import SourceKind
from alarmdesk.safeguards.access import Role
from alarmdesk.safeguards.audit import Operation, Outcome
from alarmdesk.safeguards.auditlog_file import (
    checkpoint_line,
    entry_line,
    erased_line,
    verify_export,
)
from alarmdesk.safeguards.retention_policy import DataClass, ReportConfig, RetentionConfig
from alarmdesk.store import tables as t
from alarmdesk.store.audit import AuditChain
from alarmdesk.store.retention import MEDIA_KEYS, lock_audit

__all__ = [
    "SUPPRESSED",
    "Period",
    "ReportConfig",
    "build_report",
    "parse_period",
    "render_html",
    "render_json",
    "suppress",
]

SUPPRESSED = "<5"
FORMAT_VERSION = 1
MAX_PROBLEMS = 50

Count = int | str


def suppress(n: int) -> Count:
    """A count as published: 0 and 5 or more as they are, 1 to 4 as ``"<5"``."""
    return n if n == 0 or n >= 5 else SUPPRESSED


def _sup(counts: Mapping[str, int]) -> dict[str, Count]:
    return {k: suppress(v) for k, v in counts.items()}


# -- the period ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime  # included
    end: datetime  # excluded

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a period needs aware (UTC) times")
        if self.end <= self.start:
            raise ValueError("the period ends before it starts")


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR = re.compile(r"(\d{4})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})-[Qq]([1-4])")


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=UTC)


def parse_bound(text: str, *, end: bool) -> datetime:
    """``YYYY-MM-DD`` (a whole UTC day; an end date includes that day) or an ISO 8601 time
    with an offset (taken as is). Raises :class:`ValueError`."""
    text = text.strip()
    if _DAY.fullmatch(text):
        day = date.fromisoformat(text)
        return _midnight(day + timedelta(days=1) if end else day)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither YYYY-MM-DD nor an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} needs a UTC offset (e.g. +00:00 or Z)")
    return when.astimezone(UTC)


def parse_period(
    period: str | None = None, start: str | None = None, end: str | None = None
) -> Period:
    """A period from ``2026``, ``2026-03`` or ``2026-Q2``, or from ``start`` and ``end``
    (see :func:`parse_bound`). Raises :class:`ValueError` for anything else."""
    if period is not None:
        if start is not None or end is not None:
            raise ValueError("give a period, or from and to, not both")
        text = period.strip()
        if m := _YEAR.fullmatch(text):
            y = int(m[1])
            return Period(_midnight(date(y, 1, 1)), _midnight(date(y + 1, 1, 1)))
        if m := _QUARTER.fullmatch(text):
            y, q = int(m[1]), int(m[2])
            first = date(y, 3 * q - 2, 1)
            last = date(y + 1, 1, 1) if q == 4 else date(y, 3 * q + 1, 1)
            return Period(_midnight(first), _midnight(last))
        if m := _MONTH.fullmatch(text):
            y, mo = int(m[1]), int(m[2])
            if not 1 <= mo <= 12:
                raise ValueError(f"no month {mo}")
            nxt = date(y + 1, 1, 1) if mo == 12 else date(y, mo + 1, 1)
            return Period(_midnight(date(y, mo, 1)), _midnight(nxt))
        raise ValueError(f"period {period!r}: expected YYYY, YYYY-MM or YYYY-Qn")
    if start is None or end is None:
        raise ValueError("give both from and to (or a period)")
    return Period(parse_bound(start, end=False), parse_bound(end, end=True))


# -- building ---------------------------------------------------------------------------------


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
    audit = _audit_figures(conn, start, end)
    report: dict[str, Any] = {
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
        "use": _use(conn, start, end),
        "data": _data(conn, start, end, audit.total),
        "custom_types": _custom_types(conn, start, end),
        "access": audit.access(),
        "sharing": audit.sharing(),
        "erasures": audit.erasures(),
        "configuration_changes": audit.configuration(),
        "retention": policy.describe(),
        "complaints": suppress(config.complaints),
        "costs": config.costs or None,
        "audit_log": _audit_log(conn, end, chain, now, sign=sign, verify=verify),
    }
    return report


METHOD = [
    "The period is [from, to) in UTC.",
    'Counts from 1 to 4 are shown as "<5"; a true zero is shown as 0.',
    "Use and data figures are counted in the database when the report is generated; what "
    "retention erased before then is counted under erasures, not there.",
    "Access, denial, sharing, erasure and configuration figures are counted from the audit "
    "entries timed within the period; entries whose content retention erased are counted "
    "apart. Anyone with an export of the audit log can recount them up to the closing "
    "checkpoint and verify it with the public key (alarmdesk audit verify).",
]


def _between(
    column: sa.ColumnElement[Any], start: datetime, end: datetime
) -> sa.ColumnElement[bool]:
    return sa.and_(column >= start, column < end)


def _count(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> int:
    return int(
        conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
    )


def _use(conn: sa.Connection, start: datetime, end: datetime) -> dict[str, Any]:
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
        "incidents_by_category": _sup(by_category),
        "incidents_by_type": by_type,
        "signals_received": suppress(sum(by_kind.values())),
        "signals_by_source_kind": _sup(by_kind),
        "signals_without_incident": suppress(
            _count(conn, s, sa.and_(received, s.c.incident_id.is_(None)))
        ),
    }


def _data(
    conn: sa.Connection, start: datetime, end: datetime, audit_entries: int
) -> dict[str, Any]:
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


def _custom_types(conn: sa.Connection, start: datetime, end: datetime) -> list[dict[str, Any]]:
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
                {"name": r["approver"], "role": r["role"], "at": _iso(r["at"])}
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
                "created_at": _iso(r.get("created_at")),
                "approvers": approvals.get(r["code"], []),
                "incidents_opened": suppress(int(counts.get(r["code"], 0))),
            }
        )
    return out


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def _counter() -> Counter[str]:
    return Counter()


@dataclass
class _AuditFigures:
    """One pass over the period's audit entries."""

    total: int = 0
    erased: int = 0
    erase_runs: int = 0
    by_op: Counter[str] = field(default_factory=_counter)
    by_role: Counter[str] = field(default_factory=_counter)
    by_op_role: Counter[tuple[str, str]] = field(default_factory=Counter)
    denied_by_op: Counter[str] = field(default_factory=_counter)
    denied_by_rule: Counter[str] = field(default_factory=_counter)
    denied_by_role: Counter[str] = field(default_factory=_counter)
    exports: Counter[str] = field(default_factory=_counter)
    disclosures: Counter[str] = field(default_factory=_counter)
    erased_by_class: Counter[str] = field(default_factory=_counter)
    config_by_object: Counter[str] = field(default_factory=_counter)

    def add(self, entry: Mapping[str, Any]) -> None:
        op, role = str(entry.get("op", "")), str(entry.get("role", ""))
        self.by_op[op] += 1
        self.by_role[role] += 1
        self.by_op_role[op, role] += 1
        raw = entry.get("detail")
        detail: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        if entry.get("outcome") == Outcome.DENIED.value:
            self.denied_by_op[op] += 1
            self.denied_by_rule[str(entry.get("rule") or "unspecified")] += 1
            self.denied_by_role[role] += 1
            return
        if op in (Operation.EXPORT.value, Operation.DISCLOSE.value):
            recipient = str(detail.get("recipient") or entry.get("object_type") or "unspecified")
            (self.exports if op == Operation.EXPORT.value else self.disclosures)[recipient] += 1
        elif op == Operation.ERASE.value:
            self.erase_runs += 1
            count = detail.get("count")
            n = count if isinstance(count, int) and not isinstance(count, bool) else 0
            self.erased_by_class[str(entry.get("object_type") or "unspecified")] += n
        elif op == Operation.CONFIGURE.value:
            self.config_by_object[str(entry.get("object_type") or "unspecified")] += 1

    def access(self) -> dict[str, Any]:
        roles = dict.fromkeys([*(r.value for r in Role), "system"], 0)
        roles.update(self.by_role)
        by_op_role: dict[str, dict[str, Count]] = {}
        for (op, role), n in sorted(self.by_op_role.items()):
            by_op_role.setdefault(op, {})[role] = suppress(n)
        denied_roles = dict.fromkeys([r.value for r in Role], 0)
        denied_roles.update(self.denied_by_role)
        return {
            "entries": suppress(self.total),
            "erased_entries": suppress(self.erased),
            "by_operation": _sup({op.value: self.by_op[op.value] for op in Operation}),
            "by_role": _sup(dict(sorted(roles.items()))),
            "by_operation_and_role": by_op_role,
            "denials": {
                "total": suppress(self.denied_by_op.total()),
                "by_operation": _sup({op.value: self.denied_by_op[op.value] for op in Operation}),
                "by_rule": _sup(dict(sorted(self.denied_by_rule.items()))),
                "by_role": _sup(dict(sorted(denied_roles.items()))),
            },
        }

    def sharing(self) -> dict[str, Any]:
        return {
            "exports_total": suppress(self.exports.total()),
            "exports_by_recipient": _sup(dict(sorted(self.exports.items()))),
            "disclosures_total": suppress(self.disclosures.total()),
            "disclosures_by_recipient": _sup(dict(sorted(self.disclosures.items()))),
        }

    def erasures(self) -> dict[str, Any]:
        by_class = {cls.value: self.erased_by_class[cls.value] for cls in DataClass}
        other = sum(n for k, n in self.erased_by_class.items() if k not in by_class)
        if other:
            by_class["other"] = other
        return {"runs": suppress(self.erase_runs), "by_data_class": _sup(by_class)}

    def configuration(self) -> dict[str, Any]:
        return {
            "total": suppress(self.config_by_object.total()),
            "by_object_type": _sup(dict(sorted(self.config_by_object.items()))),
        }


def _audit_figures(conn: sa.Connection, start: datetime, end: datetime) -> _AuditFigures:
    a = t.audit_entries
    figures = _AuditFigures()
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


def _audit_log(
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
        "at": _iso(row["at"]),
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


# -- rendering --------------------------------------------------------------------------------


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


_ENV = jinja2.Environment(
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Transparency report {{ r.period.from[:10] }} – {{ r.period.to[:10] }}</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
         padding: 0 1rem; color: #111; }
  h1 { font-size: 1.6rem; margin-bottom: .2rem; }
  h2 { font-size: 1.2rem; border-bottom: 1px solid #999; margin-top: 2rem; }
  h3 { font-size: 1rem; margin-bottom: .3rem; }
  table { border-collapse: collapse; margin: .5rem 0 1rem; }
  th, td { border: 1px solid #bbb; padding: .2rem .6rem; text-align: left;
           vertical-align: top; }
  td.n { text-align: right; font-variant-numeric: tabular-nums; }
  pre, code { font: 13px/1.4 ui-monospace, monospace; overflow-wrap: anywhere; }
  pre { background: #f4f4f4; padding: .6rem; white-space: pre-wrap; }
  .meta { color: #444; }
  .ok { color: #064; font-weight: bold; }
  .bad { color: #a00; font-weight: bold; }
  @media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; }
                 table, pre { break-inside: avoid; } }
</style>
</head>
<body>
{% macro counts(title, d, key="", value="count") %}
<h3>{{ title }}</h3>
{% if d %}
<table><thead><tr><th>{{ key }}</th><th>{{ value }}</th></tr></thead><tbody>
{% for k, v in d.items() %}<tr><td>{{ k }}</td><td class="n">{{ v }}</td></tr>
{% endfor %}</tbody></table>
{% else %}<p>None.</p>{% endif %}
{% endmacro %}
<h1>Transparency report</h1>
<p class="meta">{% if r.organisation %}{{ r.organisation }} · {% endif %}
Period {{ r.period.from }} to {{ r.period.to }} (end excluded){% if r.period.provisional %}
· <strong>provisional: the period has not ended</strong>{% endif %}<br>
Generated {{ r.generated_at }} · format version {{ r.format_version }}
{% if r.use_policy_url %}· use policy:
<a href="{{ r.use_policy_url }}">{{ r.use_policy_url }}</a>{% endif %}</p>

<h2>How to read this report</h2>
<ul>{% for line in r.method %}<li>{{ line }}</li>{% endfor %}</ul>

<h2>1. Use</h2>
<p>Incidents opened: <strong>{{ r.use.incidents_opened }}</strong>.
Signals received: <strong>{{ r.use.signals_received }}</strong>,
of which belonging to no incident: {{ r.use.signals_without_incident }}.</p>
{{ counts("Incidents by harm category", r.use.incidents_by_category, "category") }}
<h3>Incidents by type</h3>
{% if r.use.incidents_by_type %}
<table><thead><tr><th>code</th><th>type</th><th>category</th><th>origin</th><th>count</th></tr></thead><tbody>
{% for code, x in r.use.incidents_by_type.items() %}<tr><td>{{ code }}</td><td>{{ x.name }}</td>
<td>{{ x.category }}</td><td>{{ x.origin }}</td><td class="n">{{ x.count }}</td></tr>
{% endfor %}</tbody></table>
{% else %}<p>None.</p>{% endif %}
{{ counts("Signals by source", r.use.signals_by_source_kind, "source") }}

<h2>2. Data kinds and amounts</h2>
{{ counts("Collected in the period, as held when the report was generated", r.data, "kind") }}

<h2>3. Custom incident types</h2>
{% if r.custom_types %}
{% for x in r.custom_types %}
<h3>{{ x.code }} — {{ x.name }}</h3>
<table><tbody>
<tr><th>category</th><td>{{ x.category }}</td></tr>
<tr><th>status</th><td>{{ x.status }}</td></tr>
<tr><th>purpose</th><td>{{ x.purpose or "—" }}</td></tr>
<tr><th>legal basis</th><td>{{ x.legal_basis or "—" }}</td></tr>
<tr><th>proposed by</th><td>{{ x.author or "—" }}
{%- if x.created_at %} on {{ x.created_at }}{% endif %}</td></tr>
<tr><th>approved by</th><td>
{%- for a in x.approvers %}{{ a.name }} ({{ a.role }}, {{ a.at }})
{%- if not loop.last %}; {% endif %}{% else %}nobody yet{% endfor %}</td></tr>
<tr><th>incidents opened in the period</th><td class="n">{{ x.incidents_opened }}</td></tr>
</tbody></table>
{% endfor %}
{% else %}<p>No custom incident types exist: only the standard taxonomy is in use.</p>{% endif %}

<h2>4. Access to data</h2>
<p>Audit entries in the period: <strong>{{ r.access.entries }}</strong>; of these, erased by
retention (content no longer readable): {{ r.access.erased_entries }}.</p>
{{ counts("Entries by operation", r.access.by_operation, "operation") }}
{{ counts("Entries by role", r.access.by_role, "role") }}
<h3>Entries by operation and role</h3>
{% if r.access.by_operation_and_role %}
<table><thead><tr><th>operation</th><th>role</th><th>count</th></tr></thead><tbody>
{% for op, roles in r.access.by_operation_and_role.items() %}{% for role, n in roles.items() %}
<tr><td>{{ op }}</td><td>{{ role }}</td><td class="n">{{ n }}</td></tr>
{% endfor %}{% endfor %}</tbody></table>
{% else %}<p>None.</p>{% endif %}
<h3>Denials</h3>
<p>Requests refused: <strong>{{ r.access.denials.total }}</strong>.</p>
{{ counts("Denials by operation", r.access.denials.by_operation, "operation") }}
{{ counts("Denials by rule", r.access.denials.by_rule, "rule") }}
{{ counts("Denials by role", r.access.denials.by_role, "role") }}

<h2>5. Sharing</h2>
<p>Exports: <strong>{{ r.sharing.exports_total }}</strong>. Disclosures to other
organisations or systems: <strong>{{ r.sharing.disclosures_total }}</strong>.</p>
{{ counts("Exports by recipient", r.sharing.exports_by_recipient, "recipient") }}
{{ counts("Disclosures by recipient", r.sharing.disclosures_by_recipient, "recipient") }}

<h2>6. Deletions</h2>
<p>Retention runs that erased something: {{ r.erasures.runs }}.</p>
{{ counts("Records erased by data class", r.erasures.by_data_class, "data class") }}

<h2>7. Configuration changes</h2>
<p>Changes: <strong>{{ r.configuration_changes.total }}</strong>.</p>
{{ counts("By object", r.configuration_changes.by_object_type, "object") }}

<h2>8. Retention settings</h2>
<table><thead><tr><th>data class</th><th>what</th><th>kept (days)</th>
<th>ceiling (days)</th></tr></thead><tbody>
{% for name, x in r.retention.classes.items() %}<tr><td>{{ name }}</td><td>{{ x.what }}</td>
<td class="n">{{ x.days }}</td><td class="n">{{ x.ceiling_days }}</td></tr>
{% endfor %}</tbody></table>
{{ counts("Final incidents kept, by harm category", r.retention.incidents_by_category,
           "category", "days") }}

<h2>9. Complaints and costs</h2>
<p>Complaints received: <strong>{{ r.complaints }}</strong>.<br>
Costs: {{ r.costs if r.costs else "not reported" }}.</p>

<h2>10. Audit findings</h2>
{% set log = r.audit_log %}
<p>Public key of the audit log (verifies every checkpoint):<br>
<code>{{ log.public_key or "none" }}</code></p>
{% if log.checkpoint %}
<p>Checkpoint closing the period: tree size <strong>{{ log.checkpoint.size }}</strong>, signed
{{ log.checkpoint.at }}
{%- if log.checkpoint.signed_for_this_report %} (signed for this report){% endif %}.
{% if not log.checkpoint.covers_period %}<span class="bad">It does not cover every entry of the
period yet.</span>{% endif %}</p>
<pre>{{ log.checkpoint.note }}</pre>
{% else %}<p>No checkpoint closes the period.</p>{% endif %}
<p>Result of verifying the log up to that checkpoint:
{% if log.finding.result == "verified" %}<span class="ok">verified</span>
({{ log.finding.entries_checked }} entries, {{ log.finding.erased_entries }} erased by retention,
{{ log.finding.checkpoints_checked }} checkpoints).
{% elif log.finding.result == "problems_found" %}<span class="bad">problems found</span>:</p>
<ul>{% for p in log.finding.problems %}<li>{{ p }}</li>{% endfor %}</ul><p>
{% else %}not verified ({{ log.finding.reason }}).{% endif %}</p>
<p class="meta">To check: export the log (<code>alarmdesk audit export</code>), then
<code>alarmdesk audit verify FILE --pubkey KEY</code>; recount the entries timed within the
period.</p>
</body>
</html>
"""

_TEMPLATE = _ENV.from_string(TEMPLATE)


def render_html(report: Mapping[str, Any]) -> str:
    return _TEMPLATE.render(r=report)
