"""Accounts: sign-in and sign-out, users and API tokens.

Each change is an :class:`~alarmdesk.service.actions.Action` with its audit entry, run by the
writer (web) or by ``perform`` (command line): the session, user or token and the entry that
records it commit in one transaction. Passwords are checked off the writer's thread (argon2
takes tens of milliseconds); only the session row is written by it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.errors import AlarmdeskError, NotFound
from alarmdesk.safeguards.access import ALL_DESKS, Principal
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation, Outcome
from alarmdesk.service.actions import Action
from alarmdesk.store import accounts
from alarmdesk.store import repository as repo
from alarmdesk.store.accounts import Session

__all__ = [
    "Session",
    "active_user",
    "check_password",
    "create_token",
    "create_user",
    "list_users",
    "load_session",
    "principal_of_token",
    "revoke_token",
    "sign_in",
    "sign_out",
]


def _outcome(error: AlarmdeskError | None, rule: str) -> tuple[Outcome, str]:
    return (Outcome.DENIED, error.code) if error is not None else (Outcome.ALLOWED, rule)


# -- reads (run them in a worker thread) ------------------------------------------------------


def active_user(engine: sa.Engine, name: str) -> Principal | None:
    """An enabled user's principal, by name."""
    with engine.connect() as conn:
        return accounts.active_user(conn, name)


def check_password(engine: sa.Engine, name: str, password: str) -> Principal | None:
    """The user's principal if the password matches and the account is enabled."""
    with engine.connect() as conn:
        return accounts.check_password(conn, name, password)


def principal_of_token(engine: sa.Engine, secret: str) -> Principal | None:
    with engine.connect() as conn:
        return accounts.principal_of_token(conn, secret)


def load_session(engine: sa.Engine, secret: str, now: datetime) -> Session | None:
    with engine.connect() as conn:
        return accounts.load_session(conn, secret, now)


def list_users(engine: sa.Engine) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return accounts.list_users(conn)


# -- changes ------------------------------------------------------------------------------


def sign_in(principal: Principal, lifetime: timedelta, address: str) -> Action:
    """Opens a fresh session for a principal whose password was checked: (secret, Session)."""

    def apply(conn: sa.Connection, now: datetime) -> tuple[str, Session]:
        return accounts.create_session(conn, principal, now, lifetime)

    def audit_of(result: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        who = result[1].principal if result is not None else principal
        outcome, rule = _outcome(error, "sign_in")
        return [
            AuditEvent(Actor.of(who, address), Operation.AUTHENTICATE, "session", "", outcome, rule)
        ]

    return Action(apply, audit_of)


def sign_out(secret: str, principal: Principal | None, address: str) -> Action:
    """Ends the session whose secret this is (unknown or expired: nothing to end)."""

    def apply(conn: sa.Connection, now: datetime) -> None:
        accounts.delete_session(conn, secret)

    def audit_of(result: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        if principal is None:
            return []
        outcome, rule = _outcome(error, "sign_out")
        return [
            AuditEvent(
                Actor.of(principal, address), Operation.AUTHENTICATE, "session", "", outcome, rule
            )
        ]

    return Action(apply, audit_of)


def _known_desks(conn: sa.Connection, desks: list[str]) -> None:
    """Refuses a desk the centre does not have (``unknown_reference``): an account made for
    a mistyped desk would see nothing, silently."""
    repo.check_known_desks(
        conn, [d.strip() for d in desks if d.strip() and d.strip() != ALL_DESKS], "desk"
    )


def create_user(actor: Actor, name: str, password: str, role: str, desks: list[str]) -> Action:
    """Adds a user; the result is the new user's id."""

    def apply(conn: sa.Connection, now: datetime) -> int:
        _known_desks(conn, desks)
        return accounts.create_user(conn, name, password, role, desks, now)

    def audit_of(result: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        outcome, rule = _outcome(error, "users.add")
        return [
            AuditEvent(
                actor,
                Operation.CONFIGURE,
                "user",
                str(result or ""),
                outcome,
                rule,
                detail={"role": role, "desks": sorted(desks)},
            )
        ]

    return Action(apply, audit_of)


def set_disabled(actor: Actor, name: str, disabled: bool) -> Action:
    """Disables a user, ending their sessions (a dismissed employee, a leaked password), or
    enables them again; the result is the user's id. Raises NotFound."""

    def apply(conn: sa.Connection, now: datetime) -> int:
        return accounts.set_disabled(conn, name, disabled, now)

    def audit_of(result: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        outcome, rule = _outcome(error, "users.disable" if disabled else "users.enable")
        return [AuditEvent(actor, Operation.CONFIGURE, "user", str(result or ""), outcome, rule)]

    return Action(apply, audit_of)


def set_password(actor: Actor, name: str, password: str) -> Action:
    """Gives a user a new password and ends their sessions; the result is the user's id.
    Raises NotFound, InvalidField (``weak_password``)."""

    def apply(conn: sa.Connection, now: datetime) -> int:
        return accounts.set_password(conn, name, password)

    def audit_of(result: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        outcome, rule = _outcome(error, "users.password")
        return [AuditEvent(actor, Operation.CONFIGURE, "user", str(result or ""), outcome, rule)]

    return Action(apply, audit_of)


def create_token(actor: Actor, name: str, role: str, desks: list[str]) -> Action:
    """Creates an API token; the result is (id, secret), the secret shown once."""

    def apply(conn: sa.Connection, now: datetime) -> tuple[int, str]:
        _known_desks(conn, desks)
        return accounts.create_token(conn, name, role, desks, now)

    def audit_of(result: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        outcome, rule = _outcome(error, "tokens.create")
        token_id = str(result[0]) if result is not None else ""
        return [
            AuditEvent(
                actor, Operation.CONFIGURE, "token", token_id, outcome, rule, detail={"role": role}
            )
        ]

    return Action(apply, audit_of)


def revoke_token(actor: Actor, token_id: int) -> Action:
    """Revokes a token. Raises NotFound when no active token has that id."""

    def apply(conn: sa.Connection, now: datetime) -> None:
        if not accounts.revoke_token(conn, token_id, now):
            raise NotFound(f"no active token {token_id}", field="token_id")

    def audit_of(result: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        outcome, rule = _outcome(error, "tokens.revoke")
        return [AuditEvent(actor, Operation.CONFIGURE, "token", str(token_id), outcome, rule)]

    return Action(apply, audit_of)
