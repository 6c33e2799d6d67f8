"""CAP 1.2 (OASIS Common Alerting Protocol), read and written in one place (docs/cap.md).

Reading: :func:`parse` takes the bytes of a document, refuses what is not well-formed or
carries a DTD (no entity is ever expanded, nothing is fetched: billion laughs and external
entities are refused), validates against the OASIS schema shipped in ``data/CAP-v1.2.xsd``
and returns an :class:`Alert`. :func:`to_signal` turns it into one ``feed`` signal through
the mapping table (``data/cap_mapping.tsv``).

Writing: :func:`build_alert` writes an alert and validates it against the same schema before
it leaves; :func:`atom_feed` lists published alerts.

No I/O here beyond reading the package's own schema and table: the HTTP route, the feed
poller (``intake/cap_feeds.py``) and the publishing service call these.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, get_args

import msgspec
from lxml import etree

from alarmdesk.domain.errors import ConfigError, InvalidCap
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.signal import Location, SignalIn, SourceKind

__all__ = [
    "CAP_NS",
    "CATEGORIES",
    "Alert",
    "Area",
    "CapMapping",
    "Category",
    "Info",
    "MappingRow",
    "Reference",
    "alert_key",
    "atom_feed",
    "build_alert",
    "cap_text",
    "default_mapping",
    "load_mapping",
    "parse",
    "parse_feed",
    "to_signal",
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
# Priority by severity when the mapping row states none; Unknown keeps the type's own.
_SEVERITY_PRIORITY: Final = {"Extreme": 1, "Severe": 2, "Moderate": 3, "Minor": 4}
# Statuses that are stored and never alarmed (exercises, tests, system messages, drafts).
_RECORD_ONLY_STATUS: Final = frozenset({"Exercise", "System", "Test", "Draft"})

# The payload's area geometry is kept while the payload stays this small (a signal's payload
# is bounded at 8 KiB); larger areas keep their bounding box only.
_GEOMETRY_BUDGET: Final = 5000
_SUMMARY_MAX: Final = 1000


# -- the schema and a parser that expands and fetches nothing ---------------------------------


def _parser() -> etree.XMLParser:
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
    return etree.XMLSchema(etree.fromstring(path.read_bytes(), _parser()))


# Validation writes into the schema's error log: one document at a time.
_schema_lock = threading.Lock()


def _read_xml(body: bytes, what: str) -> Any:
    """The root element of a document, refusing DTDs and anything not well-formed."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise InvalidCap(f"the {what} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise InvalidCap(f"the {what} is not well-formed XML: {exc}") from None
    except ValueError as exc:  # e.g. a text with an encoding declaration
        raise InvalidCap(f"the {what} cannot be read: {exc}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        # Entities are never expanded, but a DTD has no place in CAP: refused whole.
        raise InvalidCap(f"the {what} declares a DTD (<!DOCTYPE>); CAP documents carry none")
    return root


def _validate(root: Any) -> None:
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
    return sent


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
        if sent.tzinfo is not None:
            refs.append(Reference(parts[0], parts[1], sent))
    return tuple(refs)


def parse(body: bytes) -> Alert:
    """Reads and validates one CAP 1.2 alert.

    Raises:
        InvalidCap: not well-formed, a DTD, too large, or not valid against the OASIS schema
            (the message and ``field`` name the element and the reason).
    """
    root = _read_xml(body, "CAP document")
    _validate(root)
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
        sent=_sent(_text(root, "sent"), "/cap:alert/cap:sent"),
        status=_text(root, "status"),
        msg_type=_text(root, "msgType"),
        scope=_text(root, "scope"),
        references=_references(_text(root, "references")),
        infos=tuple(infos),
    )


# -- the mapping table: category, event, urgency, severity, certainty → type and priority -----


@dataclass(frozen=True, slots=True)
class MappingRow:
    category: str  # a CAP category, or "*"
    event: tuple[str, ...]  # words one of which the event names (casefolded); () = any
    urgency: str
    severity: str
    certainty: str
    type_code: str
    priority: int | None  # None: by severity (Extreme 1 … Minor 4), Unknown: the type's

    def matches(self, info: Info) -> bool:
        if self.category != "*" and self.category not in info.categories:
            return False
        for want, have in (
            (self.urgency, info.urgency),
            (self.severity, info.severity),
            (self.certainty, info.certainty),
        ):
            if want != "*" and want != have:
                return False
        if self.event:
            event = info.event.casefold()
            return any(word in event for word in self.event)
        return True


@dataclass(frozen=True, slots=True)
class CapMapping:
    rows: tuple[MappingRow, ...]
    fallback: str = "UNCLASS"  # no row matches, or the alert has no info

    def resolve(self, info: Info | None) -> tuple[str, int | None]:
        """The type code and priority of an info block (first matching row)."""
        if info is None:
            return self.fallback, None
        for row in self.rows:
            if row.matches(info):
                if row.priority is not None:
                    return row.type_code, row.priority
                return row.type_code, _SEVERITY_PRIORITY.get(info.severity)
        return self.fallback, _SEVERITY_PRIORITY.get(info.severity)


_HEADER: Final = (
    "category",
    "event",
    "urgency",
    "severity",
    "certainty",
    "type_code",
    "priority",
)


def _mapping_from(text: str, where: str) -> CapMapping:
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines or tuple(lines[0].split("\t")[: len(_HEADER)]) != _HEADER:
        raise ConfigError(f"{where}: the first line must be the header {' '.join(_HEADER)}")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        cells = [c.strip() for c in line.split("\t")]
        if len(cells) < len(_HEADER):
            raise ConfigError(f"{where}, row {n}: {len(_HEADER)} tab-separated columns needed")
        category, event, urgency, severity, certainty, type_code, priority = cells[:7]
        for value, allowed, name in (
            (category, CATEGORIES, "category"),
            (urgency, URGENCIES, "urgency"),
            (severity, SEVERITIES, "severity"),
            (certainty, CERTAINTIES, "certainty"),
        ):
            if value != "*" and value not in allowed:
                raise ConfigError(f"{where}, row {n}: {name} {value!r} is not CAP 1.2's")
        if not re.fullmatch(r"[A-Za-z0-9_]{1,32}", type_code):
            raise ConfigError(f"{where}, row {n}: type_code {type_code!r} is not a type code")
        if priority and priority not in {"1", "2", "3", "4", "5"}:
            raise ConfigError(f"{where}, row {n}: priority must be 1-5 or empty")
        words = tuple(w.strip().casefold() for w in event.split("|") if w.strip() != "*")
        # A mapping states a purpose, like an incident type: screened the same way.
        screen({"event": " ".join(words), "type_code": type_code})
        rows.append(
            MappingRow(
                category,
                tuple(w for w in words if w),
                urgency,
                severity,
                certainty,
                type_code.upper(),
                int(priority) if priority else None,
            )
        )
    return CapMapping(tuple(rows))


@functools.cache
def default_mapping() -> CapMapping:
    """``data/cap_mapping.tsv``."""
    text = (resources.files("alarmdesk") / "data" / "cap_mapping.tsv").read_text("utf-8")
    return _mapping_from(text, "data/cap_mapping.tsv")


@functools.lru_cache(maxsize=8)
def load_mapping(path: str | None) -> CapMapping:
    """The centre's mapping table (``[intake] cap_mapping``), or the shipped one.

    Raises:
        ConfigError: unreadable, a malformed row, or a value CAP 1.2 does not define.
            (Read once per path: a changed table takes effect at restart.)
        ProtectedPurposeError: a row targets people exercising rights.
    """
    if not path:
        return default_mapping()
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cap_mapping {path}: {exc.strerror}") from None
    return _mapping_from(text, path)


# -- an alert as a signal ---------------------------------------------------------------------

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def cap_text(text: str, limit: int) -> str:
    """A CAP text made fit for a signal: control characters gone, bounded."""
    cleaned = _CONTROL.sub(" ", text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def choose_info(alert: Alert, languages: Sequence[str] = ()) -> Info | None:
    """The info block to read: the first in a preferred language, else the first."""
    for lang in languages:
        for info in alert.infos:
            if info.language.casefold().startswith(lang.casefold()):
                return info
    return alert.infos[0] if alert.infos else None


def _centroid(ring: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The centroid of a (lat, lon) ring, planar (areas are small against the earth)."""
    area = cx = cy = 0.0
    pts = list(ring)
    if pts[0] != pts[-1]:
        pts.append(pts[0])
    for (y0, x0), (y1, x1) in itertools.pairwise(pts):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(area) < 1e-12:  # degenerate: the mean of the points
        return sum(p[0] for p in ring) / len(ring), sum(p[1] for p in ring) / len(ring)
    return cy / (3 * area), cx / (3 * area)


def area_point(areas: Iterable[Area]) -> tuple[float, float] | None:
    """One point for the areas: the mean of their polygons' centroids and circles' centres."""
    points = [
        *(_centroid(ring) for a in areas for ring in a.polygons),
        *((lat, lon) for a in areas for lat, lon, _ in a.circles),
    ]
    if not points:
        return None
    return (
        round(sum(p[0] for p in points) / len(points), 6),
        round(sum(p[1] for p in points) / len(points), 6),
    )


def _geometry(areas: Sequence[Area]) -> list[dict[str, Any]]:
    out = []
    for a in areas:
        item: dict[str, Any] = {"desc": cap_text(a.desc, 200)}
        if a.polygons:
            item["polygons"] = [[[lat, lon] for lat, lon in ring] for ring in a.polygons]
        if a.circles:
            item["circles"] = [[lat, lon, km] for lat, lon, km in a.circles]
        if a.geocodes:
            item["geocodes"] = [[cap_text(n, 64), cap_text(v, 64)] for n, v in a.geocodes[:20]]
        out.append(item)
    return out


def _bbox(areas: Sequence[Area]) -> list[float] | None:
    pts = [p for a in areas for ring in a.polygons for p in ring]
    pts += [(lat, lon) for a in areas for lat, lon, _ in a.circles]
    if not pts:
        return None
    return [
        min(p[0] for p in pts),
        min(p[1] for p in pts),
        max(p[0] for p in pts),
        max(p[1] for p in pts),
    ]


def _areas_payload(areas: Sequence[Area]) -> dict[str, Any]:
    geometry = _geometry(areas[:20])
    if len(msgspec.json.encode(geometry)) <= _GEOMETRY_BUDGET:
        return {"areas": geometry}
    # Too large for a signal: the descriptions and the bounding box stay.
    return {
        "areas": [{"desc": cap_text(a.desc, 200)} for a in areas[:20]],
        "bbox": _bbox(areas),
        "geometry": "truncated",
    }


def thread_of(alert: Alert, known: dict[str, str]) -> str:
    """The thread an alert belongs to: the key of the first alert of its chain.

    ``known`` maps keys of alerts already stored to their threads. An alert stored before
    keeps its thread (a resend is the same signal); an Update or Cancel takes the thread of
    the earliest referenced alert that is stored, else the earliest reference's own key; an
    alert that references nothing starts a thread.
    """
    if alert.key in known:
        return known[alert.key]
    refs = sorted(alert.references, key=lambda r: r.sent)
    for ref in refs:
        if ref.key in known:
            return known[ref.key]
    if refs and alert.msg_type in {"Update", "Cancel"}:
        return refs[0].key
    return alert.key


def to_signal(
    alert: Alert,
    mapping: CapMapping,
    thread: str,
    *,
    languages: Sequence[str] = (),
) -> SignalIn:
    """The ``feed`` signal of an alert.

    - type and priority: the mapping table, from the chosen info block;
    - where: one point for the areas (polygon centroids, circle centres), the first area's
      description as the address; the geometry itself in the payload while it fits;
    - Cancel, or every info saying AllClear: ``restored`` (it opens nothing and marks the
      referenced alert's incident); Ack and Error messages, and statuses other than Actual:
      recorded only;
    - the correlation thread in ``payload.cap.thread``: an Update or Cancel folds into the
      incident of the alert it references.
    """
    info = choose_info(alert, languages)
    type_code, priority = mapping.resolve(info)
    areas = info.areas if info is not None else ()
    point = area_point(areas)
    address = cap_text(areas[0].desc, 200) if areas and areas[0].desc else None
    location = None
    if point is not None or address:
        location = Location(
            lat=point[0] if point else None, lon=point[1] if point else None, address=address
        )
    all_clear = bool(alert.infos) and all("AllClear" in i.response_types for i in alert.infos)
    restored = alert.msg_type == "Cancel" or all_clear
    record_only = alert.status in _RECORD_ONLY_STATUS or alert.msg_type in {"Ack", "Error"}
    cap: dict[str, Any] = {
        "identifier": cap_text(alert.identifier, 200),
        "sender": cap_text(alert.sender, 200),
        "sent": alert.sent.isoformat(),
        "status": alert.status,
        "msg_type": alert.msg_type,
        "scope": alert.scope,
        "thread": thread,
    }
    if alert.references:
        cap["references"] = [
            f"{cap_text(r.sender, 200)},{cap_text(r.identifier, 200)},{r.sent.isoformat()}"
            for r in alert.references[:10]
        ]
    if info is not None:
        cap.update(
            {
                "language": cap_text(info.language, 35),
                "category": list(info.categories),
                "event": cap_text(info.event, 200),
                "urgency": info.urgency,
                "severity": info.severity,
                "certainty": info.certainty,
            }
        )
        if info.response_types:
            cap["response_type"] = list(info.response_types)
        if info.expires:
            cap["expires"] = info.expires
        cap.update(_areas_payload(areas))
    if priority is not None:
        cap["priority"] = priority
    summary = ""
    if info is not None:
        head = info.headline or info.event
        summary = f"{head}. {info.description}" if info.description else head
    elif alert.msg_type == "Cancel":
        summary = "Cancelled by the sender"
    source = "cap:" + alert.sender
    if len(source) > 128:
        source = "cap:" + hashlib.blake2b(alert.sender.encode(), digest_size=16).hexdigest()
    return SignalIn(
        source_kind=SourceKind.FEED,
        source_id=cap_text(source, 128),
        type_code=type_code,
        occurred_at=alert.sent,
        location=location,
        summary=cap_text(summary, _SUMMARY_MAX),
        idempotency_key=alert.key,
        payload={"cap": cap},
        condition="restored" if restored else "active",
        record_only=record_only,
        priority=priority,
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
    root = _read_xml(body, "feed")
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
    _validate(etree.fromstring(body, _parser()))
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
