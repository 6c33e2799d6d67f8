"""Signed webhooks: what a subscription asks for, which events it gets, how a delivery is signed
and when a failed one is tried again. Pure: no I/O, no clock.

Deliveries follow the Standard Webhooks scheme (standardwebhooks.com): each request carries

- ``webhook-id``: ``evt_<event id>``, the same on every attempt, so a receiver can drop a
  delivery it has already processed (delivery is at least once);
- ``webhook-timestamp``: the attempt's time, in Unix seconds (a receiver refuses old ones);
- ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, keyed by the
  subscription's secret (``whsec_<base64 key>``).

The body is ``{"type", "timestamp", "data"}``: the event's type and time, and ``data`` with the
event id, the incident id, what the event says (``detail``) and the incident after it
(``incident``). Neither the operator's name nor the centre's own workings (the checklist with
who ticked it, the escalation timers, the routing rules) are sent: the receiving agency needs
what happened, not who in the centre clicked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.events import EventType
from alarmdesk.domain.signal import check_text

__all__ = [
    "SECRET_PREFIX",
    "WebhookSpec",
    "backoff",
    "body_of",
    "check",
    "headers",
    "new_secret",
    "sign",
    "wants",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 (the scheme's prefix, not a secret)
EVENT_TYPES = frozenset(e.value for e in EventType)
STAFF = frozenset({"actor", "by", "override_by"})  # who in the centre did it: not sent
INTERNAL = frozenset({"procedure", "escalation", "routed_by", "version"})  # the centre's own


class WebhookSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A subscription as an administrator writes it.

    Attributes:
        url: where events are POSTed (http or https).
        events: event types (``incident.opened``) or ``incident.*``; default every one.
        desks: the desks whose incidents it receives; empty = every desk. A neighbouring
            agency usually gets one desk's, not the whole centre's.
        description: what it is for (screened like every purpose).
    """

    url: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    events: list[Annotated[str, msgspec.Meta(min_length=1, max_length=40)]] = msgspec.field(
        default_factory=lambda: ["incident.*"]
    )
    desks: list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]] = msgspec.field(
        default_factory=list
    )
    description: Annotated[str, msgspec.Meta(max_length=200)] = ""


def check(spec: WebhookSpec) -> None:
    """Refuses a subscription that cannot work: not an http(s) URL with a host, control
    characters or spaces in it, credentials in the URL (they would be shown and logged), an
    unknown event type.

    Raises:
        InvalidField: with the field that is wrong.
    """
    check_text(spec.description, "description")
    check_text(spec.url, "url")  # no control character (an HTTP client cannot send it)
    if any(ch.isspace() for ch in spec.url):
        raise InvalidField(
            "url: no spaces in a URL (write a space in a path as %20)",
            field="url",
            code="invalid_value",
        )
    try:
        parts = urlsplit(spec.url)
        port = parts.port  # raises on a port out of range
    except ValueError:
        raise InvalidField("url: not a URL", field="url", code="invalid_value") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField(
            "url: an http:// or https:// URL with a host", field="url", code="invalid_value"
        )
    if parts.username or parts.password:
        raise InvalidField(
            "url: no user or password in the URL; the signature authenticates alarmdesk",
            field="url",
            code="invalid_value",
        )
    del port
    if not spec.events:
        raise InvalidField("events: name at least one", field="events", code="missing_field")
    for pattern in spec.events:
        if pattern not in EVENT_TYPES and pattern != "incident.*":
            raise InvalidField(
                f"events: unknown event type '{pattern}' (one of: incident.*, "
                + ", ".join(sorted(EVENT_TYPES))
                + ")",
                field="events",
                code="invalid_value",
            )


def wants(
    events: Iterable[str], desks: Iterable[str], event_type: str, event_desks: Iterable[str]
) -> bool:
    """Whether a subscription (its event patterns and desks) receives this event."""
    patterns = set(events)
    if "incident.*" not in patterns and event_type not in patterns:
        return False
    wanted = set(desks)
    return not wanted or not wanted.isdisjoint(event_desks)


def new_secret() -> str:
    """A new signing secret: 32 random bytes, ``whsec_`` + base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(secret: str, event_id: int, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery attempt."""
    msg_id = f"evt_{event_id}"
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
        "user-agent": "alarmdesk-webhooks/1",
    }


def body_of(event: Mapping[str, Any]) -> bytes:
    """The JSON body of an event row (``events`` table: id, incident_id, type, at, detail,
    snapshot)."""
    at = event["at"]
    return msgspec.json.encode(
        {
            "type": event["type"],
            "timestamp": at.isoformat() if hasattr(at, "isoformat") else str(at),
            "data": {
                "event_id": event["id"],
                "incident_id": event["incident_id"],
                "detail": _without_staff(event["detail"] or {}),
                "incident": _without_staff(
                    {k: v for k, v in (event["snapshot"] or {}).items() if k not in INTERNAL}
                ),
            },
        }
    )


def _without_staff(value: Any) -> Any:
    """``value`` without the keys that name who in the centre acted, at any depth (a video
    verdict's ``by``, a note's author)."""
    if isinstance(value, dict):
        return {k: _without_staff(v) for k, v in value.items() if k not in STAFF}
    if isinstance(value, list):
        return [_without_staff(v) for v in value]
    return value


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): ``base`` doubled each time,
    at most ``cap``."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))
