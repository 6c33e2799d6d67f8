"""The Server-Sent Events frame format, defined once.

Every committed event goes out as one frame::

    id: <event id>
    event: <event type>            (incident.opened, incident.noted, ...)
    data: <one line of JSON>       (see ``event_data``)

The hub encodes live events with it, the stream's replay encodes rows of the events table with
it, and the incident page's filtered stream (``only_incident``) reads it back. JSON never
holds a raw newline, so a frame is exactly three lines and a blank line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import msgspec

__all__ = [
    "KEEP_ALIVE",
    "RETRY",
    "Frame",
    "event_data",
    "only_incident",
    "parse",
    "sse_frame",
]

RETRY: Final = b"retry: 2000\n\n"  # how long a browser waits before it reconnects (ms)
KEEP_ALIVE: Final = b": keep-alive\n\n"  # a comment: keeps proxies from closing an idle stream

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def sse_frame(event_id: int, event_type: str, data: object) -> bytes:
    """One event as an SSE frame (its id is what a reconnecting browser sends back)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event_id,
        event_type.encode(),
        _encoder.encode(data),
    )


def event_data(
    incident_id: int, at: str, actor: str, detail: object, snapshot: object, event_id: int
) -> dict[str, object]:
    """The JSON a frame carries: the event and the incident's snapshot after it."""
    return {
        "id": event_id,
        "incident_id": incident_id,
        "at": at,
        "actor": actor,
        "detail": detail,
        "incident": snapshot,
    }


@dataclass(frozen=True, slots=True)
class Frame:
    """An event frame read back: enough to filter and relabel it."""

    event_id: int
    event_type: str
    incident_id: int
    raw: bytes  # the frame as sent, without its closing blank line


def _read(block: bytes) -> Frame | None:
    if not block.startswith(b"id: "):
        return None  # a comment or a retry hint
    event_id, event_type, incident_id = 0, "", -1
    for line in block.split(b"\n"):
        if line.startswith(b"id: "):
            event_id = int(line[4:])
        elif line.startswith(b"event: "):
            event_type = line[7:].decode()
        elif line.startswith(b"data: "):
            data = _decoder.decode(line[6:])
            if isinstance(data, dict):
                incident_id = int(data.get("incident_id", -1))
    return Frame(event_id, event_type, incident_id, block)


def parse(chunk: bytes) -> Iterator[Frame | None]:
    """The frames of a chunk of the stream (one commit may send several), in order; None for
    each comment or retry hint."""
    for block in chunk.split(b"\n\n"):
        if block:
            yield _read(block)


def only_incident(chunk: bytes, incident_id: int) -> bytes:
    """What of a chunk concerns one incident, as ``changed`` events whose data is the original
    event type (htmx's SSE extension reloads the panel on each); comments and retry hints
    pass unchanged, so the browser's reconnect delay and the keep-alives still work."""
    out = []
    for block in chunk.split(b"\n\n"):
        if not block:
            continue
        frame = _read(block)
        if frame is None:
            out.append(block + b"\n\n")
        elif frame.incident_id == incident_id:
            out.append(
                b"id: %d\nevent: changed\ndata: %s\n\n"
                % (frame.event_id, frame.event_type.encode())
            )
    return b"".join(out)
