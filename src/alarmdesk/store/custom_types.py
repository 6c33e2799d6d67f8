"""Custom incident types: proposed with a stated purpose and legal basis, screened, and in
force only after two approvals — one by a rights officer — by people other than the author.
Until then a signal with that code opens an UNCLASS incident, like any unknown code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.errors import Conflict, Forbidden, InvalidField, NotFound
from alarmdesk.domain.procedure import check_steps
from alarmdesk.domain.signal import check_text
from alarmdesk.domain.taxonomy import IncidentType, check_admissible
from alarmdesk.safeguards.access import Role
from alarmdesk.store import tables as t

APPROVALS_NEEDED = 2
NAME_MAX = 200  # as the API's TypeIn


def propose(conn: sa.Connection, proposed: IncidentType, author: str, now: datetime) -> None:
    """Stores a pending custom type after screening it.

    Raises:
        ProtectedPurposeError, UnknownCategoryError: the purpose is not admissible.
        InvalidField: no purpose or legal basis stated, a malformed code, a name empty or
            too long, a control character in a text, or an empty procedure step.
        Conflict: the code exists.
    """
    check_admissible(proposed)  # first: a refused purpose is refused whatever else is wrong
    check_steps(proposed.sop, "sop")  # as a centre's own procedure's (API and CLI alike)
    # Texts checked like every other edge's (no control characters), for the API and the
    # command line alike.
    check_text(proposed.code, "code")
    check_text(proposed.name, "name")
    for field in ("purpose", "legal_basis", "definition"):
        check_text(getattr(proposed, field), field, multiline=True)
    for i, step in enumerate(proposed.sop):
        check_text(step, f"sop[{i}]", multiline=True)
    if not proposed.name.strip() or len(proposed.name) > NAME_MAX:
        raise InvalidField(
            f"a type's name is 1–{NAME_MAX} characters", field="name", code="invalid_value"
        )
    code = proposed.code.strip().upper()
    if not code.isascii() or not code.replace("-", "").replace("_", "").isalnum() or len(code) > 32:
        raise InvalidField(
            "a code is 1–32 letters, digits, '-' or '_'", field="code", code="invalid_value"
        )
    if len(proposed.purpose.strip()) < 10:
        raise InvalidField(
            "state the harm this type responds to (purpose, in words)",
            field="purpose",
            code="missing_field",
        )
    if len(proposed.legal_basis.strip()) < 5:
        raise InvalidField(
            "state the legal basis or mandate", field="legal_basis", code="missing_field"
        )
    exists = conn.execute(
        sa.select(t.incident_types.c.code).where(t.incident_types.c.code == code)
    ).scalar()
    if exists is not None:
        raise Conflict(f"incident type {code} exists", field="code")
    conn.execute(
        t.incident_types.insert().values(
            code=code,
            name=proposed.name.strip(),
            category=proposed.category.value,
            priority=proposed.priority,
            definition=proposed.definition.strip(),
            sop=list(proposed.sop),
            origin="custom",
            status="pending",
            purpose=proposed.purpose.strip(),
            legal_basis=proposed.legal_basis.strip(),
            author=author,
            created_at=now,
        )
    )


def approve(
    conn: sa.Connection, code: str, approver: str, role: Role, now: datetime
) -> dict[str, Any]:
    """Records an approval; the type takes effect with the second one if a rights officer
    is among them. Returns the type's state."""
    code = code.strip().upper()
    row = (
        conn.execute(sa.select(t.incident_types).where(t.incident_types.c.code == code))
        .mappings()
        .first()
    )
    if row is None or row["origin"] != "custom":
        raise NotFound(f"no custom incident type {code}", field="code")
    if row["status"] == "active":
        raise Conflict(f"{code} is already in force", field="code")
    if approver == row["author"]:
        raise Forbidden("the author of a type cannot approve it", field="approver")
    approvals = {
        r.approver: r.role
        for r in conn.execute(
            sa.select(t.incident_type_approvals).where(t.incident_type_approvals.c.code == code)
        )
    }
    if approver in approvals:
        raise Conflict(f"{approver} has already approved {code}", field="approver")
    if len(approvals) + 1 >= APPROVALS_NEEDED and Role.RIGHTS_OFFICER.value not in {
        *approvals.values(),
        role.value,
    }:
        raise Forbidden(
            "one of the two approvals must come from a rights officer", field="approver"
        )
    conn.execute(
        t.incident_type_approvals.insert().values(
            code=code, approver=approver, role=role.value, at=now
        )
    )
    approvals[approver] = role.value
    if len(approvals) >= APPROVALS_NEEDED:
        conn.execute(
            t.incident_types.update().where(t.incident_types.c.code == code).values(status="active")
        )
    return describe(conn, code)


def describe(conn: sa.Connection, code: str) -> dict[str, Any]:
    row = (
        conn.execute(sa.select(t.incident_types).where(t.incident_types.c.code == code))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no incident type {code}", field="code")
    approvals = [
        {"approver": r.approver, "role": r.role, "at": r.at.isoformat()}
        for r in conn.execute(
            sa.select(t.incident_type_approvals)
            .where(t.incident_type_approvals.c.code == code)
            .order_by(t.incident_type_approvals.c.at)
        )
    ]
    return {
        "code": row["code"],
        "name": row["name"],
        "category": row["category"],
        "priority": row["priority"],
        "definition": row["definition"],
        "sop": row["sop"],
        "origin": row["origin"],
        "status": row["status"],
        "purpose": row["purpose"],
        "legal_basis": row["legal_basis"],
        "author": row["author"],
        "approvals": approvals,
    }


def list_custom(conn: sa.Connection) -> list[dict[str, Any]]:
    codes = conn.execute(
        sa.select(t.incident_types.c.code)
        .where(t.incident_types.c.origin == "custom")
        .order_by(t.incident_types.c.code)
    ).scalars()
    return [describe(conn, c) for c in list(codes)]
