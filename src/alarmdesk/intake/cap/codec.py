"""CAP 1.2 documents read: a parser that expands and fetches nothing, validation against the
OASIS schema shipped in ``data/CAP-v1.2.xsd``, the alert as :class:`Alert`, and feeds of
alerts (Atom, RSS). Refusals are :class:`~alarmdesk.domain.errors.InvalidCap` naming where."""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Final, Literal, get_args

from lxml import etree

from alarmdesk.domain.errors import InvalidCap, InvalidField
from alarmdesk.domain.signal import check_time

__all__ = [
    "ATOM_NS",
    "CAP_NS",
    "CATEGORIES",
    "CERTAINTIES",
    "MAX_DOCUMENT_BYTES",
    "SEVERITIES",
    "URGENCIES",
    "Alert",
    "Area",
    "Category",
    "FeedEntry",
    "Info",
    "Reference",
    "alert_key",
    "parse",
    "parse_feed",
    "read_xml",
    "safe_parser",
    "validate",
]


CAP_NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS: Final = "http://www.w3.org/2005/Atom"
_NS: Final = {"cap": CAP_NS}

MAX_DOCUMENT_BYTES: Final = 1024 * 1024
# CAP 1.2's <category> values: one type for the API's schema, one tuple for checks.
Category = Literal[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
]
CATEGORIES: Final = get_args(Category)
URGENCIES: Final = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITIES: Final = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTIES: Final = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")

# -- the schema and a parser that expands and fetches nothing ---------------------------------


def safe_parser() -> etree.XMLParser:
    # A parser per call: lxml parsers are not shared between threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


@functools.cache
def _schema() -> etree.XMLSchema:
    path = resources.files("alarmdesk") / "data" / "CAP-v1.2.xsd"
    return etree.XMLSchema(etree.fromstring(path.read_bytes(), safe_parser()))


# Validation writes into the schema's error log: one document at a time.
_schema_lock = threading.Lock()


def read_xml(body: bytes, what: str) -> Any:
    """The root element of a document, refusing DTDs and anything not well-formed."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise InvalidCap(f"the {what} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        root = etree.fromstring(body, safe_parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidCap(f"the {what} is not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. a text with an encoding declaration
        raise InvalidCap(f"the {what} cannot be read: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        # Entities are never expanded, but a DTD has no place in CAP: refused whole.
        raise InvalidCap(f"the {what} declares a DTD (<!DOCTYPE>); CAP documents carry none")
    return root


def validate(root: Any) -> None:
    schema = _schema()
    with _schema_lock:
        if schema.validate(root):
            return
        error = schema.error_log.last_error
        errors = list(schema.error_log)
    first = errors[0] if errors else error
    if first is None:
        raise InvalidCap("not a CAP 1.2 alert", field="/")
    path = _readable(root, first.path or "/")
    reason = f"not valid CAP 1.2 at {path} (line {first.line}): {first.message}"
    raise InvalidCap(reason, field=path)


def _readable(root: Any, path: str) -> str:
    """``/alert/info[2]/area`` for libxml2's ``/*/*[6]/*[3]`` (namespaced elements)."""
    try:
        found = root.getroottree().xpath(path)
    except etree.XPathError:
        return path
    if not found or not isinstance(found[0], etree._Element):
        return path
    parts = []
    el: etree._Element | None = found[0]
    while el is not None:
        name = etree.QName(el).localname
        parent = el.getparent()
        same = [] if parent is None else [c for c in parent if c.tag == el.tag]
        parts.append(f"{name}[{same.index(el) + 1}]" if len(same) > 1 else name)
        el = parent
    return "/" + "/".join(reversed(parts))


# -- the alert --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """One earlier message an Update, Cancel or Ack refers to: ``sender,identifier,sent``."""

    sender: str
    identifier: str
    sent: datetime

    @property
    def key(self) -> str:
        return alert_key(self.sender, self.identifier, self.sent)


@dataclass(frozen=True, slots=True)
class Area:
    desc: str
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()  # (lat, lon) rings
    circles: tuple[tuple[float, float, float], ...] = ()  # lat, lon, radius km
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Info:
    language: str
    categories: tuple[str, ...]
    event: str
    urgency: str
    severity: str
    certainty: str
    response_types: tuple[str, ...] = ()
    headline: str = ""
    description: str = ""
    instruction: str = ""
    sender_name: str = ""
    expires: str = ""
    areas: tuple[Area, ...] = ()


@dataclass(frozen=True, slots=True)
class Alert:
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str
    references: tuple[Reference, ...] = ()
    infos: tuple[Info, ...] = ()

    @property
    def key(self) -> str:
        """The idempotency key of the alert: sender, identifier and sent (CAP's own triple)."""
        return alert_key(self.sender, self.identifier, self.sent)


def alert_key(sender: str, identifier: str, sent: datetime) -> str:
    triple = f"{sender},{identifier},{sent.astimezone(UTC).isoformat()}"
    return "cap:" + hashlib.blake2b(triple.encode("utf-8"), digest_size=16).hexdigest()


def _text(el: Any, name: str) -> str:
    found = el.findtext(f"cap:{name}", default="", namespaces=_NS)
    return " ".join(found.split()) if name != "description" else found.strip()


def _texts(el: Any, name: str) -> tuple[str, ...]:
    return tuple((e.text or "").strip() for e in el.findall(f"cap:{name}", _NS))


def _pairs(el: Any, name: str) -> tuple[tuple[str, str], ...]:
    return tuple((_text(e, "valueName"), _text(e, "value")) for e in el.findall(f"cap:{name}", _NS))


def _point(text: str) -> tuple[float, float] | None:
    try:
        lat_s, lon_s = text.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def _area(el: Any) -> Area:
    polygons = []
    for text in _texts(el, "polygon"):
        ring = [_point(p) for p in text.split()]
        points = tuple(p for p in ring if p is not None)
        if len(points) >= 3 and len(points) == len(ring):
            polygons.append(points)
    circles = []
    for text in _texts(el, "circle"):
        centre, _, radius = text.partition(" ")
        point = _point(centre)
        try:
            km = float(radius)
        except ValueError:
            continue
        if point is not None and km >= 0:
            circles.append((point[0], point[1], km))
    return Area(_text(el, "areaDesc"), tuple(polygons), tuple(circles), _pairs(el, "geocode"))


def _sent(text: str, where: str) -> datetime:
    try:
        sent = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidCap(f"{where} is not a date and time: {text!r}", field=where) from None
    if sent.tzinfo is None:
        raise InvalidCap(f"{where} has no offset: {text!r}", field=where)
    try:
        return check_time(sent, where)  # the rule of every time a client gives
    except InvalidField as exc:
        raise InvalidCap(f"{exc.message}: {text!r}", field=where) from None


def _references(text: str) -> tuple[Reference, ...]:
    refs = []
    for item in text.split():
        parts = item.split(",")
        if len(parts) != 3:
            continue  # a malformed reference folds nothing; the alert itself still counts
        try:
            sent = datetime.fromisoformat(parts[2])
        except ValueError:
            continue
        try:
            check_time(sent, "references")
        except InvalidField:
            continue  # no offset, or a time no alert was sent at
        refs.append(Reference(parts[0], parts[1], sent))
    return tuple(refs)


def parse(body: bytes) -> Alert:
    """Reads and validates one CAP 1.2 alert.

    Raises:
        InvalidCap: not well-formed, a DTD, too large, or not valid against the OASIS schema
            (the message and ``field`` name the element and the reason).
    """
    root = read_xml(body, "CAP document")
    validate(root)
    infos = []
    for el in root.findall("cap:info", _NS):
        infos.append(
            Info(
                language=_text(el, "language") or "en-US",
                categories=_texts(el, "category"),
                event=_text(el, "event"),
                urgency=_text(el, "urgency"),
                severity=_text(el, "severity"),
                certainty=_text(el, "certainty"),
                response_types=_texts(el, "responseType"),
                headline=_text(el, "headline"),
                description=_text(el, "description"),
                instruction=_text(el, "instruction"),
                sender_name=_text(el, "senderName"),
                expires=_text(el, "expires"),
                areas=tuple(_area(a) for a in el.findall("cap:area", _NS)),
            )
        )
    return Alert(
        identifier=_text(root, "identifier"),
        sender=_text(root, "sender"),
        sent=_sent(_text(root, "sent"), "/alert/sent"),  # named as a schema error names it
        status=_text(root, "status"),
        msg_type=_text(root, "msgType"),
        scope=_text(root, "scope"),
        references=_references(_text(root, "references")),
        infos=tuple(infos),
    )


# -- feeds of alerts (Atom, RSS) --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of a CAP feed: the alert inline, or a link to it."""

    id: str
    updated: str
    alert: bytes | None = None  # the alert element, serialised, when the entry carries it
    link: str | None = None


def parse_feed(body: bytes) -> list[FeedEntry]:
    """The entries of an Atom or RSS 2.0 feed of CAP alerts.

    Raises:
        InvalidCap: not well-formed, a DTD, or neither Atom nor RSS.
    """
    root = read_xml(body, "feed")
    entries: list[FeedEntry] = []
    if root.tag == f"{{{ATOM_NS}}}feed":
        for e in root.iterfind(f"{{{ATOM_NS}}}entry"):
            inline = e.find(f".//{{{CAP_NS}}}alert")
            link = None
            for ln in e.iterfind(f"{{{ATOM_NS}}}link"):
                href = ln.get("href")
                kind = (ln.get("type") or "").lower()
                if href and (link is None or "cap" in kind or kind.endswith("xml")):
                    link = href
                    if "cap" in kind:
                        break
            entries.append(
                FeedEntry(
                    id=(e.findtext(f"{{{ATOM_NS}}}id") or link or "").strip(),
                    updated=(e.findtext(f"{{{ATOM_NS}}}updated") or "").strip(),
                    alert=etree.tostring(inline) if inline is not None else None,
                    link=link,
                )
            )
        return entries
    if root.tag == "rss":
        for item in root.iterfind("channel/item"):
            inline = item.find(f".//{{{CAP_NS}}}alert")
            link = (item.findtext("link") or "").strip() or None
            entries.append(
                FeedEntry(
                    id=(item.findtext("guid") or link or "").strip(),
                    updated=(item.findtext("pubDate") or "").strip(),
                    alert=etree.tostring(inline) if inline is not None else None,
                    link=link,
                )
            )
        return entries
    raise InvalidCap("the feed is neither Atom nor RSS 2.0")
