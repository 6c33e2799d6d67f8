"""Accounts: users (argon2id passwords), API tokens and sessions (kept by SHA-256 hash)."""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from alarmdesk.domain.errors import Conflict, InvalidField, NotFound
from alarmdesk.domain.signal import check_text
from alarmdesk.safeguards.access import ALL_DESKS, Principal, Role, parse_role
from alarmdesk.store import tables as t

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@functools.cache
def _dummy_hash() -> str:
    """What an unknown name's password is verified against, so that its login takes as long
    as a real one. Made on the first sign-in (about 0.5 s), not at import: every command
    imports this module."""
    return _hasher.hash("not a password")


MIN_PASSWORD = 12
TOKEN_PREFIX = "adk_"  # noqa: S105 - a visible prefix, so leaked tokens are easy to spot


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _desks(conn: sa.Connection, desks: list[str]) -> list[str]:
    """The desks a user or token works: at least one, or '*'. (That each is a desk the centre
    has is checked where accounts are made, ``service/accounts``: a database being prepared,
    a test's or a new centre's, may hold accounts before its desks.)"""
    cleaned = sorted({d.strip() for d in desks if d.strip()})
    if not cleaned:
        raise InvalidField(
            "at least one desk (or '*' for every desk)", field="desk", code="missing_field"
        )
    if ALL_DESKS in cleaned:
        return [ALL_DESKS]
    return cleaned


TOKEN_NAME_MAX = 64  # api_tokens.name


def _token_name(name: str) -> str:
    """What a token is for: one line of 1–64 characters, no control characters."""
    check_text(name, "name")
    if not name.strip() or len(name) > TOKEN_NAME_MAX:
        raise InvalidField(
            f"a token's name is 1–{TOKEN_NAME_MAX} characters", field="name", code="invalid_value"
        )
    return name.strip()


def _role(value: str) -> Role:
    try:
        return parse_role(value)
    except ValueError as exc:
        raise InvalidField(str(exc), field="role", code="invalid_value") from None


def create_user(
    conn: sa.Connection, name: str, password: str, role: str, desks: list[str], now: datetime
) -> int:
    if (
        not name
        or len(name) > 64
        or not name.isascii()
        or not name.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        raise InvalidField(
            "a user name is 1–64 ASCII letters, digits, '.', '-' or '_' (a look-alike such as "
            "a fullwidth 'ｏ' reads as another user in the audit log)",
            field="name",
            code="invalid_value",
        )
    _check_password(password)
    r = _role(value=role)
    if r is Role.INTAKE:
        raise InvalidField(
            "intake is a role for machine tokens, not people", field="role", code="invalid_value"
        )
    same = sa.func.lower(t.users.c.name) == name.lower()  # "Operator" beside "operator"
    exists = conn.execute(sa.select(t.users.c.name).where(same)).scalar()
    if exists is not None:
        raise Conflict(f"user {exists!r} exists", field="name")
    result = conn.execute(
        t.users.insert().values(
            name=name,
            password_hash=_hasher.hash(password),
            role=r.value,
            desks=_desks(conn, desks),
            created_at=now,
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0])


def _check_password(password: str) -> None:
    check_text(password, "password", multiline=True)  # lone surrogates: bytes not UTF-8
    if len(password) < MIN_PASSWORD:
        raise InvalidField(
            f"a password has at least {MIN_PASSWORD} characters",
            field="password",
            code="weak_password",
        )


def _user_id(conn: sa.Connection, name: str) -> int:
    found = conn.execute(sa.select(t.users.c.id).where(t.users.c.name == name)).scalar()
    if found is None:
        raise NotFound(f"no user {name!r}", field="name")
    return int(found)


def set_disabled(conn: sa.Connection, name: str, disabled: bool, now: datetime) -> int:
    """Disables a user (their sessions end: they are deleted) or enables them again; the
    user's id. Raises NotFound."""
    user_id = _user_id(conn, name)
    conn.execute(
        t.users.update()
        .where(t.users.c.id == user_id)
        .values(disabled_at=now if disabled else None)
    )
    if disabled:
        conn.execute(t.sessions.delete().where(t.sessions.c.user_id == user_id))
    return user_id


def set_password(conn: sa.Connection, name: str, password: str) -> int:
    """A user's new password; every session of theirs ends. The user's id. Raises NotFound,
    InvalidField (``weak_password``)."""
    _check_password(password)
    user_id = _user_id(conn, name)
    conn.execute(
        t.users.update().where(t.users.c.id == user_id).values(password_hash=_hasher.hash(password))
    )
    conn.execute(t.sessions.delete().where(t.sessions.c.user_id == user_id))
    return user_id


def create_token(
    conn: sa.Connection, name: str, role: str, desks: list[str], now: datetime
) -> tuple[int, str]:
    """Returns (id, secret). The secret is shown once; only its hash is stored."""
    name = _token_name(name)
    r = _role(role)
    if r is Role.INTAKE and {d.strip() for d in desks} - {ALL_DESKS, ""}:
        raise InvalidField(
            "an intake token submits signals to every desk: give it no desks",
            field="desk",
            code="invalid_value",
        )
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    result = conn.execute(
        t.api_tokens.insert().values(
            name=name,
            token_hash=digest(secret),
            role=r.value,
            desks=[ALL_DESKS] if r is Role.INTAKE else _desks(conn, desks),
            created_at=now,
        )
    )
    assert result.inserted_primary_key is not None
    return int(result.inserted_primary_key[0]), secret


def revoke_token(conn: sa.Connection, token_id: int, now: datetime) -> bool:
    res = conn.execute(
        t.api_tokens.update()
        .where(t.api_tokens.c.id == token_id, t.api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return res.rowcount > 0


def _principal_of_user(row: sa.Row[tuple[object, ...]] | sa.RowMapping, cred: str) -> Principal:
    m = row._mapping if isinstance(row, sa.Row) else row
    return Principal(
        id=f"user:{m['id']}",
        name=m["name"],
        role=Role(m["role"]),
        desks=frozenset(m["desks"]),
        kind="user",
        credential_hash=cred[:16],
    )


def active_user(conn: sa.Connection, name: str) -> Principal | None:
    """The principal of an enabled user by name (no credential: for the command line)."""
    row = (
        conn.execute(
            sa.select(t.users).where(t.users.c.name == name, t.users.c.disabled_at.is_(None))
        )
        .mappings()
        .first()
    )
    return None if row is None else _principal_of_user(row, "")


def check_password(conn: sa.Connection, name: str, password: str) -> Principal | None:
    """The user's principal if the password matches and the account is enabled."""
    # Made before the name is looked up: the first sign-in pays for it, known name or not.
    dummy = _dummy_hash()
    row = conn.execute(sa.select(t.users).where(t.users.c.name == name)).mappings().first()
    try:
        _hasher.verify(row["password_hash"] if row else dummy, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if row is None or row["disabled_at"] is not None:
        return None
    return _principal_of_user(row, "")


def principal_of_token(conn: sa.Connection, secret: str) -> Principal | None:
    h = digest(secret)
    row = (
        conn.execute(
            sa.select(t.api_tokens).where(
                t.api_tokens.c.token_hash == h, t.api_tokens.c.revoked_at.is_(None)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Principal(
        id=f"token:{row['id']}",
        name=row["name"],
        role=Role(row["role"]),
        desks=frozenset(row["desks"]),
        kind="token",
        credential_hash=h[:16],
    )


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf_token: str
    expires_at: datetime


def create_session(
    conn: sa.Connection, principal: Principal, now: datetime, lifetime: timedelta
) -> tuple[str, Session]:
    """A fresh session (never one the client proposed: no fixation). Returns (secret, session)."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    user_id = int(principal.id.split(":", 1)[1])
    conn.execute(
        t.sessions.insert().values(
            id_hash=digest(secret),
            user_id=user_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    p = Principal(
        id=principal.id,
        name=principal.name,
        role=principal.role,
        desks=principal.desks,
        kind="user",
        credential_hash=digest(secret)[:16],
    )
    return secret, Session(p, csrf, now + lifetime)


def load_session(conn: sa.Connection, secret: str, now: datetime) -> Session | None:
    h = digest(secret)
    row = (
        conn.execute(
            sa.select(t.sessions.c.csrf_token, t.sessions.c.expires_at, t.users)
            .join(t.users, t.users.c.id == t.sessions.c.user_id)
            .where(t.sessions.c.id_hash == h)
        )
        .mappings()
        .first()
    )
    if row is None or row["expires_at"] <= now or row["disabled_at"] is not None:
        return None
    return Session(_principal_of_user(row, h), row["csrf_token"], row["expires_at"])


def delete_session(conn: sa.Connection, secret: str) -> None:
    conn.execute(t.sessions.delete().where(t.sessions.c.id_hash == digest(secret)))


def list_users(conn: sa.Connection) -> list[dict[str, object]]:
    rows = conn.execute(
        sa.select(
            t.users.c.id, t.users.c.name, t.users.c.role, t.users.c.desks, t.users.c.disabled_at
        ).order_by(t.users.c.name)
    )
    return [dict(r._mapping) for r in rows]
