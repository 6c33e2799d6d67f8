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
