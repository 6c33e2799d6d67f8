"""Sharing an incident with another agency: the EIDO export (docs/sharing.md).

Every export is a disclosure: one ``disclose`` audit entry naming the incident, the format and
the recipient, committed before the document leaves (the web route through the writer, the
command line through :func:`record_disclosure`). The transparency report counts disclosures
by recipient from those entries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from alarmdesk.config import SharingConfig
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.signal import check_text, is_blank
from alarmdesk.interop import eido
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.store import repository as repo
from alarmdesk.store.audit import AuditChain

__all__ = [
    "RECIPIENT_MAX",
    "agency_of",
    "check_recipient",
    "disclosure",
    "eido_document",
    "record_disclosure",
]

RECIPIENT_MAX: Final = 200


def check_recipient(value: str | None) -> str:
    """The recipient's name as given, once it is one line of text with no protected purpose.

    A name of only white space and invisible characters (U+200B…) names nobody; a control or
    bidi character is refused (U+202E between "Fire" and "evil" shows "Firelive" in the audit
    log and the transparency report).

    Raises:
        InvalidField: ``missing_field`` (none given, or nothing that shows) or
            ``invalid_value`` (too long, a control or bidi character).
        ProtectedPurposeError: the name targets people exercising rights.
    """
    name = (value or "").strip()
    if is_blank(name):
        raise InvalidField(
            "an export needs the recipient (the agency it is for)",
            field="recipient",
            code="missing_field",
        )
    if len(name) > RECIPIENT_MAX:
        raise InvalidField(
            f"recipient is at most {RECIPIENT_MAX} characters",
            field="recipient",
            code="invalid_value",
        )
    check_text(name, "recipient")
    screen({"recipient": name})
    return name


def agency_of(cfg: SharingConfig) -> eido.Agency:
    return eido.Agency(
        cfg.agency_id, cfg.agency_name, tuple(cfg.agency_types), dict(cfg.eido_resource_types)
    )


def eido_document(
    engine: sa.Engine, incident: dict[str, Any], agency: eido.Agency
) -> dict[str, Any]:
    """The EIDO of an incident already read (``queries.get_incident``), with its units and
    type as they are now."""
    names = set(incident.get("units") or ())
    with engine.connect() as conn:
        units = [u for u in repo.load_units(conn) if u.id in names] if names else []
        itype = repo.load_taxonomy(conn).get(str(incident["type_code"]))
    return eido.build(incident, units, itype, agency)


def disclosure(actor: Actor, incident_id: int, recipient: str, fmt: str = "eido") -> AuditEvent:
    """The audit entry of one export: which incident, in which format, to whom."""
    return AuditEvent(
        actor,
        Operation.DISCLOSE,
        "incident",
        str(incident_id),
        rule="incident.share",
        detail={"recipient": recipient, "format": fmt},
    )


def record_disclosure(
    engine: sa.Engine, chain: AuditChain, event: AuditEvent, now: datetime
) -> None:
    """Commits a disclosure's audit entry (the command line, which has no writer)."""
    with engine.begin() as conn:
        chain.append(conn, [event], now)
