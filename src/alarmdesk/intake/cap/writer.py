"""CAP 1.2 documents written: a public warning published from an incident, validated against
the same schema before it leaves, and the Atom feed of published alerts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lxml import etree

from alarmdesk.domain.errors import InvalidCap
from alarmdesk.intake.cap.codec import (
    ATOM_NS,
    CAP_NS,
    safe_parser,
    validate,
)

__all__ = [
    "OutAlert",
    "OutInfo",
    "atom_feed",
    "build_alert",
    "cap_time",
    "expires_after",
]


# -- writing alerts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutInfo:
    """What a published alert says (one info block, one area)."""

    category: str
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str
    description: str = ""
    instruction: str = ""
    area_desc: str = ""
    circle: tuple[float, float, float] | None = None  # lat, lon, radius km
    language: str = "en-US"
    sender_name: str = ""
    expires: datetime | None = None
    response_type: str = ""
    web: str = ""


@dataclass(frozen=True, slots=True)
class OutAlert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    info: OutInfo | None
    references: tuple[tuple[str, str, datetime], ...] = field(default=())
    scope: str = "Public"


def cap_time(at: datetime) -> str:
    """A CAP time: seconds, and a numeric offset (the schema refuses "Z")."""
    text = at.replace(microsecond=0).isoformat()
    return text[:-6] + "+00:00" if text.endswith("Z") else text


def _sub(parent: Any, name: str, text: str | None = None) -> Any:
    el = etree.SubElement(parent, f"{{{CAP_NS}}}{name}")
    if text is not None:
        el.text = text
    return el


def build_alert(alert: OutAlert) -> bytes:
    """The alert as CAP 1.2, checked against the OASIS schema before it is returned.

    Raises:
        InvalidCap: what was asked cannot make a valid alert (names the element).
    """
    root = etree.Element(f"{{{CAP_NS}}}alert", nsmap={None: CAP_NS})
    _sub(root, "identifier", alert.identifier)
    _sub(root, "sender", alert.sender)
    _sub(root, "sent", cap_time(alert.sent))
    _sub(root, "status", alert.status)
    _sub(root, "msgType", alert.msg_type)
    _sub(root, "scope", alert.scope)
    if alert.references:
        _sub(
            root,
            "references",
            " ".join(f"{s},{i},{cap_time(t)}" for s, i, t in alert.references),
        )
    info = alert.info
    if info is not None:
        el = _sub(root, "info")
        _sub(el, "language", info.language)
        _sub(el, "category", info.category)
        _sub(el, "event", info.event)
        if info.response_type:
            _sub(el, "responseType", info.response_type)
        _sub(el, "urgency", info.urgency)
        _sub(el, "severity", info.severity)
        _sub(el, "certainty", info.certainty)
        if info.expires is not None:
            _sub(el, "expires", cap_time(info.expires))
        if info.sender_name:
            _sub(el, "senderName", info.sender_name)
        _sub(el, "headline", info.headline)
        if info.description:
            _sub(el, "description", info.description)
        if info.instruction:
            _sub(el, "instruction", info.instruction)
        if info.web:
            _sub(el, "web", info.web)
        if info.area_desc or info.circle is not None:
            area = _sub(el, "area")
            _sub(area, "areaDesc", info.area_desc or "See the headline")
            if info.circle is not None:
                lat, lon, km = info.circle
                _sub(area, "circle", f"{lat:.6f},{lon:.6f} {km:g}")
    try:
        body: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    except ValueError as exc:  # a text lxml cannot write (control characters)
        raise InvalidCap(f"the alert cannot be written: {exc}") from None
    validate(etree.fromstring(body, safe_parser()))
    return body


def atom_feed(
    feed_id: str,
    title: str,
    self_url: str,
    updated: datetime,
    entries: Iterable[tuple[str, str, datetime, str]],
) -> bytes:
    """An Atom feed (RFC 4287) of published alerts: (id, title, updated, alert URL) each."""
    atom = f"{{{ATOM_NS}}}"
    root = etree.Element(f"{atom}feed", nsmap={None: ATOM_NS})
    etree.SubElement(root, f"{atom}id").text = feed_id
    etree.SubElement(root, f"{atom}title").text = title
    etree.SubElement(root, f"{atom}updated").text = cap_time(updated)
    etree.SubElement(root, f"{atom}link", rel="self", href=self_url)
    author = etree.SubElement(root, f"{atom}author")
    etree.SubElement(author, f"{atom}name").text = title
    for entry_id, entry_title, entry_updated, url in entries:
        e = etree.SubElement(root, f"{atom}entry")
        etree.SubElement(e, f"{atom}id").text = entry_id
        etree.SubElement(e, f"{atom}title").text = entry_title
        etree.SubElement(e, f"{atom}updated").text = cap_time(entry_updated)
        etree.SubElement(e, f"{atom}link", rel="alternate", type="application/cap+xml", href=url)
    out: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return out


def expires_after(sent: datetime, minutes: int | None) -> datetime | None:
    return sent + timedelta(minutes=minutes) if minutes else None
