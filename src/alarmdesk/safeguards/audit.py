"""What an audit entry says (pure; the store appends it to the Merkle-tree log).

Every read, search, export, create, change and erasure of incident data, every sign-in and
denial and every configuration change is one entry: sequence, UTC time, actor id and role,
a hash of the session or token, the source address, the operation, the object, the outcome
(and the rule behind a denial), and the justification where one is required. Entries never
hold incident content: counts and identifiers only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alarmdesk.domain.errors import JustificationRequired
from alarmdesk.domain.signal import check_text, visible_length
from alarmdesk.safeguards.access import Principal


class Operation(enum.StrEnum):
    COLLECT = "collect"  # data came in (signals)
    CONSULT = "consult"  # data was read or searched
    ALTER = "alter"  # data was changed (operator actions)
    DISCLOSE = "disclose"  # data was shared outside (CAP/EIDO out, webhooks)
    COMBINE = "combine"  # data sets were joined (reports across incidents)
    ERASE = "erase"  # data was deleted (retention)
    EXPORT = "export"  # data left as a file (exports, the audit log itself)
    CONFIGURE = "configure"  # accounts, types, desks, retention settings
    AUTHENTICATE = "authenticate"  # sign-in, sign-out


class Outcome(enum.StrEnum):
    ALLOWED = "allowed"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class Actor:
    id: str  # "user:17", "token:3", "system:retention", "cli:root"
    role: str
    credential_hash: str = ""  # first 16 hex of SHA-256 of the session or token
    address: str = ""

    @classmethod
    def of(cls, principal: Principal, address: str = "") -> Actor:
        return cls(principal.id, principal.role.value, principal.credential_hash, address)


SYSTEM = Actor("system:alarmdesk", "system")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    actor: Actor
    operation: Operation
    object_type: str  # incident, signal, incidents (a search), user, token, audit_log, ...
    object_id: str = ""
    outcome: Outcome = Outcome.ALLOWED
    rule: str = ""  # the permission or error code behind the outcome
    justification: str = ""
    detail: dict[str, Any] = field(default_factory=dict)  # counts, filters; never content


def entry_of(seq: int, at: datetime, ev: AuditEvent) -> dict[str, Any]:
    """The canonical entry that is hashed into the log."""
    entry: dict[str, Any] = {
        "seq": seq,
        "at": at.isoformat(),
        "actor": ev.actor.id,
        "role": ev.actor.role,
        "credential": ev.actor.credential_hash,
        "source": ev.actor.address,
        "op": ev.operation.value,
        "object_type": ev.object_type,
        "object_id": ev.object_id,
        "outcome": ev.outcome.value,
        "rule": ev.rule,
    }
    if ev.justification:
        entry["justification"] = ev.justification
    if ev.detail:
        entry["detail"] = ev.detail
    return entry


MIN_JUSTIFICATION = 5
"""Characters a justification shows at least (white space and invisible ones not counted)."""


def check_justification(
    text: str | None, *, required: bool, param: str = "justification", why: str = ""
) -> str:
    """A justification as it goes into the audit log (a search beyond the live queue, an
    export of the log; the API and the command line alike): the text without its outer white
    space, held to the one text rule (``domain.signal.check_text``: no control or bidi
    character), only the characters that show counting towards its minimum.

    Args:
        text: the parameter as given (None: not given).
        required: whether the request needs one (a search beyond the live queue, an export);
            one given where none is needed is still checked, since it is still logged.
        param: the parameter's public name, for the errors.
        why: the refusal's message when one is required and missing.

    Raises:
        InvalidField: ``invalid_value`` for a control or bidi character (NUL, ESC, U+202E…),
            even where no justification is required.
        JustificationRequired: required, and fewer than :data:`MIN_JUSTIFICATION` characters
            show (spaces and zero-width characters say nothing).
    """
    reason = (text or "").strip()
    if reason:
        check_text(reason, param)
    if required and visible_length(reason) < MIN_JUSTIFICATION:
        raise JustificationRequired(
            why
            or f"{param} must say why in at least {MIN_JUSTIFICATION} characters "
            "(it is kept in the audit log)",
            field=param,
        )
    return reason
