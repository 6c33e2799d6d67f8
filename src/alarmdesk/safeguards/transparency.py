"""The transparency report: what the centre did with its data in a period, checkable by anyone.

docs/architecture.md, "The line we hold", 5, and the ACLU's Community Control Over Police
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import jinja2

from alarmdesk.safeguards.access import Role
from alarmdesk.safeguards.audit import Operation, Outcome
from alarmdesk.safeguards.retention_policy import DataClass, ReportConfig

__all__ = [
    "FORMAT_VERSION",
    "MAX_PROBLEMS",
    "METHOD",
    "SUPPRESSED",
    "AuditFigures",
    "Period",
    "ReportConfig",
    "iso",
    "parse_period",
    "render_html",
    "render_json",
    "suppress",
    "suppressed",
]

SUPPRESSED = "<5"
FORMAT_VERSION = 1
MAX_PROBLEMS = 50

Count = int | str


def suppress(n: int) -> Count:
    """A count as published: 0 and 5 or more as they are, 1 to 4 as ``"<5"``."""
    return n if n == 0 or n >= 5 else SUPPRESSED


def suppressed(counts: Mapping[str, int]) -> dict[str, Count]:
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
        try:
            return _midnight(day + timedelta(days=1) if end else day)
        except OverflowError:
            raise ValueError(f"{text!r} is out of range") from None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither YYYY-MM-DD nor an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ValueError(f"{text!r} needs a UTC offset (e.g. +00:00 or Z)")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range once made UTC") from None


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


def iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    return str(value)


def _counter() -> Counter[str]:
    return Counter()


@dataclass
class AuditFigures:
    """One pass over the period's audit entries."""

    total: int = 0
    erased: int = 0
    # A retention run appends one erase entry per chunk it erased, all at the run's time:
    # a run is its actor and that time, however many classes and chunks it erased.
    erase_runs: set[tuple[str, str]] = field(default_factory=set)
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
            self.erase_runs.add((str(entry.get("actor", "")), str(entry.get("at", ""))))
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
            "by_operation": suppressed({op.value: self.by_op[op.value] for op in Operation}),
            "by_role": suppressed(dict(sorted(roles.items()))),
            "by_operation_and_role": by_op_role,
            "denials": {
                "total": suppress(self.denied_by_op.total()),
                "by_operation": suppressed(
                    {op.value: self.denied_by_op[op.value] for op in Operation}
                ),
                "by_rule": suppressed(dict(sorted(self.denied_by_rule.items()))),
                "by_role": suppressed(dict(sorted(denied_roles.items()))),
            },
        }

    def sharing(self) -> dict[str, Any]:
        return {
            "exports_total": suppress(self.exports.total()),
            "exports_by_recipient": suppressed(dict(sorted(self.exports.items()))),
            "disclosures_total": suppress(self.disclosures.total()),
            "disclosures_by_recipient": suppressed(dict(sorted(self.disclosures.items()))),
        }

    def erasures(self) -> dict[str, Any]:
        by_class = {cls.value: self.erased_by_class[cls.value] for cls in DataClass}
        other = sum(n for k, n in self.erased_by_class.items() if k not in by_class)
        if other:
            by_class["other"] = other
        return {"runs": suppress(len(self.erase_runs)), "by_data_class": suppressed(by_class)}

    def configuration(self) -> dict[str, Any]:
        return {
            "total": suppress(self.config_by_object.total()),
            "by_object_type": suppressed(dict(sorted(self.config_by_object.items()))),
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
