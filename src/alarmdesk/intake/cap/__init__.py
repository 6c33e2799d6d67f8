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

from alarmdesk.intake.cap.codec import (
    ATOM_NS,
    CAP_NS,
    CATEGORIES,
    CERTAINTIES,
    MAX_DOCUMENT_BYTES,
    SEVERITIES,
    URGENCIES,
    Alert,
    Area,
    Category,
    FeedEntry,
    Info,
    Reference,
    alert_key,
    parse,
    parse_feed,
)
from alarmdesk.intake.cap.mapping import (
    CapMapping,
    MappingRow,
    area_point,
    cap_text,
    choose_info,
    default_mapping,
    load_mapping,
    thread_of,
    to_signal,
)
from alarmdesk.intake.cap.writer import (
    OutAlert,
    OutInfo,
    atom_feed,
    build_alert,
    cap_time,
    expires_after,
)

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
    "CapMapping",
    "Category",
    "FeedEntry",
    "Info",
    "MappingRow",
    "OutAlert",
    "OutInfo",
    "Reference",
    "alert_key",
    "area_point",
    "atom_feed",
    "build_alert",
    "cap_text",
    "cap_time",
    "choose_info",
    "default_mapping",
    "expires_after",
    "load_mapping",
    "parse",
    "parse_feed",
    "thread_of",
    "to_signal",
]
