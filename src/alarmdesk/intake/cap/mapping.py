"""A CAP alert as a ``feed`` signal: the mapping table (``data/cap_mapping.tsv``: category,
event, urgency, severity, certainty → incident type and priority), the alert's area as a
location, and the thread that Update and Cancel messages fold into."""

from __future__ import annotations

import functools
import hashlib
import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import msgspec

from alarmdesk.domain.errors import ConfigError
from alarmdesk.domain.geo import longitude_near, wrap_longitude
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.signal import FORBIDDEN_TEXT, Location, SignalIn, SourceKind
from alarmdesk.intake.cap.codec import (
    CATEGORIES,
    CERTAINTIES,
    SEVERITIES,
    URGENCIES,
    Alert,
    Area,
    Info,
)

__all__ = [
    "CapMapping",
    "MappingRow",
    "area_point",
    "cap_text",
    "choose_info",
    "default_mapping",
    "load_mapping",
    "thread_of",
    "to_signal",
]


# Priority by severity when the mapping row states none; Unknown keeps the type's own.
_SEVERITY_PRIORITY: Final = {"Extreme": 1, "Severe": 2, "Moderate": 3, "Minor": 4}
# Statuses that are stored and never alarmed (exercises, tests, system messages, drafts).
_RECORD_ONLY_STATUS: Final = frozenset({"Exercise", "System", "Test", "Draft"})

# The payload's area geometry is kept while the payload stays this small (a signal's payload
# is bounded at 8 KiB); larger areas keep their bounding box only.
_GEOMETRY_BUDGET: Final = 5000
_SUMMARY_MAX: Final = 1000

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


def cap_text(text: str, limit: int) -> str:
    """A CAP text made fit for a signal: what ``check_text`` refuses in free text (control
    characters, C1 included; lone surrogates) replaced by spaces, bounded."""
    cleaned = FORBIDDEN_TEXT.sub(" ", text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def choose_info(alert: Alert, languages: Sequence[str] = ()) -> Info | None:
    """The info block to read: the first in a preferred language, else the first."""
    for lang in languages:
        for info in alert.infos:
            if info.language.casefold().startswith(lang.casefold()):
                return info
    return alert.infos[0] if alert.infos else None


def _centroid(ring: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The centroid of a (lat, lon) ring, planar (areas are small against the earth), its
    longitudes taken near the first point's: a ring across the 180th meridian has its
    centroid on it, not half a world away."""
    area = cx = cy = 0.0
    ref = ring[0][1]
    pts = [(lat, longitude_near(lon, ref)) for lat, lon in ring]
    if pts[0] != pts[-1]:
        pts.append(pts[0])
    for (y0, x0), (y1, x1) in itertools.pairwise(pts):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    if abs(area) < 1e-12:  # degenerate: the mean of the points
        return _mean_point(ring)
    return cy / (3 * area), wrap_longitude(cx / (3 * area))


def _mean_point(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The mean of (lat, lon) points, their longitudes taken near the first's."""
    ref = points[0][1]
    lon = sum(longitude_near(p[1], ref) for p in points) / len(points)
    return sum(p[0] for p in points) / len(points), wrap_longitude(lon)


def area_point(areas: Iterable[Area]) -> tuple[float, float] | None:
    """One point for the areas: the mean of their polygons' centroids and circles' centres."""
    points = [
        *(_centroid(ring) for a in areas for ring in a.polygons),
        *((lat, lon) for a in areas for lat, lon, _ in a.circles),
    ]
    if not points:
        return None
    lat, lon = _mean_point(points)
    return round(lat, 6), round(lon, 6)


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
    """[south, west, north, east] of the areas (latitude first, as CAP writes points);
    across the 180th meridian west > east, as in a GeoJSON bbox (RFC 7946, 5.2)."""
    pts = [p for a in areas for ring in a.polygons for p in ring]
    pts += [(lat, lon) for a in areas for lat, lon, _ in a.circles]
    if not pts:
        return None
    ref = pts[0][1]
    lons = [longitude_near(p[1], ref) for p in pts]
    return [
        min(p[0] for p in pts),
        wrap_longitude(min(lons)),
        max(p[0] for p in pts),
        wrap_longitude(max(lons)),
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


def _visible(text: str) -> str:
    """``text`` without the white space and invisible characters (separators, control and
    format characters such as U+200B) at its ends: "" when nothing in it can be seen."""
    seen = [i for i, ch in enumerate(text) if not unicodedata.category(ch).startswith(("Z", "C"))]
    return text[seen[0] : seen[-1] + 1] if seen else ""


def _summary(alert: Alert, info: Info | None) -> str:
    """The incident summary of an alert: ``<head>. <description>``, the head being the first
    of the headline, the event, the categories (``Fire alert``) and the identifier (``CAP alert
    <identifier>``) that holds readable text; never empty, never starting with ". "."""
    if info is None and alert.msg_type == "Cancel":
        return "Cancelled by the sender"
    head = description = ""
    if info is not None:
        categories = [c for c in map(_visible, info.categories) if c]
        head = (
            _visible(cap_text(info.headline, _SUMMARY_MAX))
            or _visible(cap_text(info.event, _SUMMARY_MAX))
            or (f"{', '.join(categories)} alert" if categories else "")
        )
        description = _visible(cap_text(info.description, _SUMMARY_MAX))
    if not head:
        identifier = _visible(cap_text(alert.identifier, 200))
        head = f"CAP alert {identifier}" if identifier else "CAP alert"
    return f"{head}. {description}" if description else head


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
    summary = _summary(alert, info)
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
