"""Plan, apply and export a centre's set-up (``alarmdesk config plan|apply|export``).

Apply is one :class:`~alarmdesk.service.actions.Action`: the set-up is planned (read and
diffed) in the caller's thread against the set-up's revision and, if another apply moved the
revision meanwhile, planned again inside the transaction that writes it; the removals the
running centre forbids (a unit on an incident, a device or desk with open incidents) refuse
the whole apply, and the audit entry (who, how many of each kind added, changed, removed, and
their ids; never a secret) commits with it. Applying the same files twice changes nothing and
leaves an entry that says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from alarmdesk.domain.centre import Centre, Where, check
from alarmdesk.domain.centre_plan import Plan, diff, records, redact, resolve_secrets, specs_of
from alarmdesk.domain.errors import AlarmdeskError, SetupError
from alarmdesk.domain.routing import rule_ids
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation, Outcome
from alarmdesk.service import centre_files
from alarmdesk.service.actions import Action
from alarmdesk.service.centre_files import Located
from alarmdesk.store import repository as repo
from alarmdesk.store.centre import busy, read_records, revision, write_plan

__all__ = ["apply", "check_types", "export", "export_text", "plan", "stored_records"]

AUDITED_IDS = 100  # ids named per list in the audit entry; the counts are always whole


def check_types(conn: sa.Connection, c: Centre, where: Where) -> None:
    """Routing rules, response plans, escalation policies, procedures and sensors' topics name
    types the taxonomy knows (the stored taxonomy: a rule of the set-up that needs the store).

    Raises:
        SetupError: ``unknown_reference``, located by ``where``.
    """
    taxonomy = repo.load_taxonomy(conn)
    named: list[tuple[str, int, str, str, list[str]]] = [  # kind, index, what, field, codes
        *(
            ("routing", i, f"routing rule '{path}'", "match", rule.match.types)
            for i, top in enumerate(c.routing)
            for rule, path in rule_ids([top])
        ),
        *(("response_plans", i, f"response plan '{p.id}'", "types", p.types)
          for i, p in enumerate(c.response_plans)),
        *(("escalation", i, f"escalation policy '{p.id}'", "match", p.match.types)
          for i, p in enumerate(c.escalation)),
        *(("procedures", i, f"procedure '{p.id}'", "type", [p.type])
          for i, p in enumerate(c.procedures)),
        *(("sensors", i, f"sensor '{s.id}'", "topic", [s.topic.type])
          for i, s in enumerate(c.sensors) if s.topic is not None),
    ]  # fmt: skip
    for kind, index, what, field, codes in named:
        for code in codes:
            if code.upper() not in taxonomy:
                raise SetupError(
                    f"{what} names incident type '{code}', which the taxonomy does not have",
                    code="unknown_reference",
                    where=where(kind, index, field),
                    field="types",
                )


def _plan(
    conn: sa.Connection, located: Located, wanted: dict[str, dict[str, dict[str, Any]]]
) -> Plan:
    """The plan against the stored set-up (the files' own rules are checked already)."""
    check_types(conn, located.centre, located.where)
    current = read_records(conn)
    resolve_secrets(current, wanted, located.where_id)
    return diff(current, wanted)


def plan(engine: sa.Engine, located: Located) -> Plan:
    """What applying ``located`` would change (nothing is written).

    Raises:
        SetupError: the files break a rule (with ``file:line``).
    """
    check(located.centre, located.where)
    wanted = records(located.centre)
    with engine.connect() as conn:
        return _plan(conn, located, wanted)


def export(engine: sa.Engine) -> dict[str, Any]:
    """The stored set-up as one set-up file's data, AES keys redacted (write-only)."""
    stored = stored_records(engine)
    redacted = {k: {i: redact(r) for i, r in v.items()} for k, v in stored.items()}
    return msgspec.to_builtins(specs_of(redacted))  # type: ignore[no-any-return]


def export_text(engine: sa.Engine) -> str:
    """The stored set-up as one YAML text (keys redacted), to read and edit in the console."""
    texts = centre_files.dump(stored_records(engine), include_secrets=False)
    return "\n".join(texts.values())


def stored_records(engine: sa.Engine) -> dict[str, dict[str, dict[str, Any]]]:
    with engine.connect() as conn:
        return read_records(conn)


def apply(actor: Actor, located: Located, engine: sa.Engine | None = None) -> Action:
    """The action that makes the stored set-up what ``located`` describes.

    The files' own rules (purpose screening of every text: seconds for 100,000 panels) are
    checked here, in the caller's thread, not in the writer's transaction where alarms would
    wait behind them; a refusal is still the action's, so its denial is audited. With
    ``engine`` the plan is made here too, against the set-up's revision: the transaction
    uses it unless an apply moved the revision meanwhile (then it plans again), so the
    writer does not read and diff the stored set-up (1.0 s for 100,000 panels, every alarm
    waiting behind it: bench/README.md, "Applying a set-up"). The types it names are checked
    again in the transaction either way: the taxonomy changes without the revision.
    """
    refused_early: AlarmdeskError | None = None
    wanted: dict[str, dict[str, dict[str, Any]]] = {}
    ahead: tuple[int, Plan] | None = None
    try:
        check(located.centre, located.where)
        wanted = records(located.centre)
        if engine is not None:
            with engine.begin() as conn:
                ahead = (revision(conn), _plan(conn, located, wanted))
    except AlarmdeskError as exc:
        refused_early = exc

    def run(conn: sa.Connection, now: datetime) -> Plan:
        if refused_early is not None:
            raise refused_early
        if ahead is not None and revision(conn) == ahead[0]:
            check_types(conn, located.centre, located.where)
            planned = ahead[1]
        else:  # planned anew, from the files (planning filled in the stored keys it kept)
            planned = _plan(conn, located, records(located.centre) if ahead else wanted)
        refused = busy(conn, planned)
        if refused:
            kind, item_id, why = refused[0]
            raise SetupError(
                f"cannot remove {kind[:-1]} '{item_id}': {why}"
                + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""),
                code="in_use",
                where=", ".join(located.files),
            )
        write_plan(conn, planned)
        return planned

    def audit_of(result: Plan | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        if error is not None:
            return [
                AuditEvent(
                    actor,
                    Operation.CONFIGURE,
                    "centre",
                    outcome=Outcome.DENIED,
                    rule=error.code,
                    detail={"files": len(located.files)},
                )
            ]
        assert result is not None
        return [
            AuditEvent(
                actor,
                Operation.CONFIGURE,
                "centre",
                rule="config.apply",
                detail={
                    "files": len(located.files),
                    "counts": result.counts(),
                    **result.summary(limit=AUDITED_IDS),
                },
            )
        ]

    return Action(run, audit_of, reload_setup=True)
