"""The SSE frame format, defined once (bus/sse.py): what the hub and the replay write, and
what the incident page's filtered stream reads back."""

from __future__ import annotations

import json

from alarmdesk.bus import sse


def frame(event_id: int, kind: str, incident_id: int, detail: object = None) -> bytes:
    data = sse.event_data(incident_id, "2026-11-25T10:00:00+00:00", "x", detail or {}, {}, event_id)
    return sse.sse_frame(event_id, kind, data)


def test_a_frame_is_id_event_and_one_line_of_json() -> None:
    out = frame(7, "incident.opened", 2, {"text": "two\n\nparagraphs: data: id: 9"})
    assert out.endswith(b"\n\n") and out.count(b"\n\n") == 1
    lines = out[:-2].split(b"\n")
    assert lines[:2] == [b"id: 7", b"event: incident.opened"]
    assert lines[2].startswith(b"data: ") and len(lines) == 3
    data = json.loads(lines[2][6:])
    assert data["incident_id"] == 2 and data["id"] == 7
    assert data["detail"]["text"] == "two\n\nparagraphs: data: id: 9"


def test_frames_read_back_as_what_was_written() -> None:
    chunk = frame(7, "incident.opened", 2) + sse.KEEP_ALIVE + frame(8, "incident.noted", 1)
    parsed = list(sse.parse(chunk))
    assert [(f.event_id, f.event_type, f.incident_id) for f in parsed if f] == [
        (7, "incident.opened", 2),
        (8, "incident.noted", 1),
    ]
    assert parsed[1] is None  # a comment, not an event


def test_the_incident_filter_keeps_its_incident_as_changed_events_and_the_comments() -> None:
    chunk = (
        sse.RETRY
        + frame(7, "incident.opened", 2)
        + frame(8, "incident.updated", 1)
        + sse.KEEP_ALIVE
        + frame(9, "incident.noted", 3)
    )
    assert sse.only_incident(chunk, 1) == (
        sse.RETRY + b"id: 8\nevent: changed\ndata: incident.updated\n\n" + sse.KEEP_ALIVE
    )
    assert sse.only_incident(frame(10, "incident.opened", 2), 1) == b""


def test_the_hub_and_the_replay_write_the_same_frames() -> None:
    from alarmdesk.bus import hub
    from alarmdesk.web import stream

    assert hub.sse_frame is sse.sse_frame and stream.sse_frame is sse.sse_frame
    assert stream.event_data is sse.event_data


def test_the_hub_sends_the_snapshot_text_the_writer_stored() -> None:
    """The snapshot is encoded once (for the events row) and the frame carries that text:
    byte for byte the frame the dict itself gives."""
    import asyncio
    from datetime import UTC, datetime

    from alarmdesk.bus.hub import Hub
    from alarmdesk.domain.events import EventType, IncidentEvent

    snapshot = {"id": 3, "status": "new", "location": {"lat": 52.1, "lon": 4.25}, "units": []}
    ev = IncidentEvent(
        EventType.OPENED, 3, datetime(2026, 11, 25, 10, tzinfo=UTC), "ct-1", {"a": 1}, ("east",)
    )
    ev.id, ev.snapshot = 41, {"stale": True}
    assert json.loads(bytes(ev.snapshot_json())) == {"stale": True}
    ev.snapshot = snapshot  # replaced after encoding: encoded anew
    assert json.loads(bytes(ev.snapshot_json())) == snapshot

    async def published() -> list[tuple[int, bytes]]:
        hub = Hub()
        sub = hub.subscribe(["east"])
        hub.publish([ev])
        return await sub.queue.get() or []

    [(event_id, out)] = asyncio.run(published())
    data = sse.event_data(3, "2026-11-25T10:00:00+00:00", "ct-1", {"a": 1}, snapshot, 41)
    assert (event_id, out) == (41, sse.sse_frame(41, "incident.opened", data))
