"""The access policy: who may do what, and on which desks' incidents.

One matrix, :data:`MATRIX`, says which roles hold each permission; every API route and
console page names the permission it needs (``web/guards.py``), and the access test walks
every route against this matrix. Desks scope incident data: a principal sees and acts on an
incident only when they share a desk with it (``*`` means every desk).

Roles hold what their work needs and no more: an administrator manages accounts but reads no
incident; an auditor reads the audit log but no incident content; a machine token can only
submit signals.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

ALL_DESKS = "*"


class Role(enum.StrEnum):
    CALL_TAKER = "call_taker"  # takes calls from the public, creates incidents from them
    OPERATOR = "operator"  # handles incidents of their desks: acknowledge, dispatch, close
    SUPERVISOR = "supervisor"  # an operator with oversight (workload, reports)
    AUDITOR = "auditor"  # reads the audit log and reports, no incident content
    RIGHTS_OFFICER = "rights_officer"  # approves custom purposes, reads the transparency report
    ADMIN = "admin"  # accounts and configuration, no incident content
    INTAKE = "intake"  # a machine (panel receiver, CAD, another agency): submits signals only


HUMAN_ROLES = frozenset(Role) - {Role.INTAKE}


class Permission(enum.StrEnum):
    SIGNAL_SUBMIT = "signal.submit"  # POST signals over the API
    CALL_CREATE = "call.create"  # the call-taker form
    DUTY_REPORT = "duty.report"  # the duty report form
    INCIDENT_READ = "incident.read"  # list, view, stream incidents of one's desks
    INCIDENT_ACT = "incident.act"  # acknowledge, dispatch, note, reclassify, resolve, close
    INCIDENT_SHARE = "incident.share"  # disclose an incident to another agency (EIDO)
    REFERENCE_READ = "reference.read"  # incident types, desks, units
    ACCOUNTS_MANAGE = "accounts.manage"  # users and tokens
    AUDIT_READ = "audit.read"  # the audit log
    REPORT_READ = "report.read"  # the transparency report
    TYPES_PROPOSE = "types.propose"  # propose a custom incident type
    TYPES_APPROVE = "types.approve"  # approve custom incident types
    UNIT_REPORT = "unit.report"  # a unit's status and position (crews, AVL feeds)
    SETUP_MANAGE = "setup.manage"  # the centre's set-up: desks, units, devices, rules
    SILENCE_MANAGE = "silence.manage"  # create and end silences (maintenance, known faults)
    WEBHOOKS_MANAGE = "webhooks.manage"  # subscribe other systems to incident events
    KPI_READ = "kpi.read"  # response-time KPIs and compliance across incidents
    CAP_PUBLISH = "cap.publish"  # publish a public warning (CAP 1.2) from an incident
    PARKED_READ = "parked.read"  # how many queued signals are parked: a count, no content
    SELF = "self"  # one's own account: sign out, who am I


_DESK_STAFF = {Role.CALL_TAKER, Role.OPERATOR, Role.SUPERVISOR}

MATRIX: dict[Permission, frozenset[Role]] = {
    Permission.SIGNAL_SUBMIT: frozenset({Role.INTAKE, *_DESK_STAFF}),
    Permission.CALL_CREATE: frozenset(_DESK_STAFF),
    Permission.DUTY_REPORT: frozenset(_DESK_STAFF),
    Permission.INCIDENT_READ: frozenset(_DESK_STAFF),
    Permission.INCIDENT_ACT: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Permission.INCIDENT_SHARE: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Permission.REFERENCE_READ: frozenset(HUMAN_ROLES),
    Permission.ACCOUNTS_MANAGE: frozenset({Role.ADMIN}),
    Permission.AUDIT_READ: frozenset({Role.AUDITOR}),
    Permission.REPORT_READ: frozenset({Role.AUDITOR, Role.RIGHTS_OFFICER, Role.SUPERVISOR}),
    Permission.TYPES_PROPOSE: frozenset({Role.SUPERVISOR, Role.ADMIN, Role.RIGHTS_OFFICER}),
    Permission.TYPES_APPROVE: frozenset({Role.RIGHTS_OFFICER, Role.SUPERVISOR, Role.ADMIN}),
    Permission.UNIT_REPORT: frozenset({Role.INTAKE, Role.OPERATOR, Role.SUPERVISOR}),
    Permission.SETUP_MANAGE: frozenset({Role.ADMIN}),
    Permission.SILENCE_MANAGE: frozenset({Role.OPERATOR, Role.SUPERVISOR}),
    Permission.WEBHOOKS_MANAGE: frozenset({Role.ADMIN}),
    Permission.KPI_READ: frozenset({Role.SUPERVISOR}),
    Permission.CAP_PUBLISH: frozenset({Role.SUPERVISOR}),
    Permission.PARKED_READ: frozenset({Role.SUPERVISOR}),
    Permission.SELF: frozenset(HUMAN_ROLES),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a signed-in user or an API token."""

    id: str  # "user:17" or "token:3"
    name: str
    role: Role
    desks: frozenset[str]  # {"*"}: every desk
    kind: str = "user"  # user | token
    credential_hash: str = ""  # hash of the session or token, for the audit log

    @property
    def all_desks(self) -> bool:
        return ALL_DESKS in self.desks


def allowed(principal: Principal, permission: Permission) -> bool:
    return principal.role in MATRIX[permission]


def shares_desk(principal: Principal, desks: Iterable[str]) -> bool:
    return principal.all_desks or not principal.desks.isdisjoint(desks)


def acting_desks(principal: Principal) -> frozenset[str] | None:
    """The desks whose incidents ``principal`` may act on (a unit's status that moves one, a
    call-taker's ``join``); None: any incident. A person acts on their desks' incidents; a
    machine (a crew's terminal, an AVL feed, another agency's CAD) for its units and signals,
    whatever incident they concern."""
    return None if principal.all_desks or principal.role is Role.INTAKE else principal.desks


def visible_desks(principal: Principal, asked: Iterable[str] | None) -> tuple[str, ...] | None:
    """The desk filter to apply: what was asked, within what the principal may see.

    Returns None for "no filter" (a principal of every desk asking for all). Raises
    PermissionError when a desk asked for is not the principal's.
    """
    asked = tuple(asked or ())
    if principal.all_desks:
        return asked or None
    outside = [d for d in asked if d not in principal.desks]
    if outside:
        raise PermissionError(f"desk(s) {', '.join(outside)} are not yours")
    return asked or tuple(sorted(principal.desks))


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValueError(
            f"unknown role {value!r}; one of: {', '.join(r.value for r in Role)}"
        ) from None
