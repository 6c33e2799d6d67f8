"""Video verification end to end: alarmdesk served, a real HTTP stand-in for Frigate, camera and
panel alarms in through the API, their snapshots and clips out through alarmdesk (audited, no
overlay asked for, refused past retention, 502 when Frigate is down, scoped to desks), and the
operator's verdict."""

from __future__ import annotations

import json
import struct
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
import pytest
import sqlalchemy as sa

from alarmdesk.domain.centre import Centre, CentreFile
from alarmdesk.domain.centre_plan import records
from alarmdesk.intake import frigate
from alarmdesk.intake.devices import DeviceRegistry
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from tests.conftest import FIXTURES, LiveServer, free_port

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 2048
EVENT_ID = "1607123955.475377-mxklsc"


def png(width: int = 8, height: int = 6) -> bytes:
    """A real PNG (a browser decodes it), red."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xc6\x28\x28" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PNG = png()


class FrigateStandIn:
    """Frigate's media routes, answering fixed bytes and remembering what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, dict[str, str]]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                stand_in.asked.append((parts.path, dict(parse_qsl(parts.query))))
                if parts.path.endswith(".jpg"):
                    body, ctype = JPEG, "image/jpeg"
                elif parts.path.endswith(".png"):
                    body, ctype = PNG, "image/png"
                elif parts.path.endswith(".mp4"):
                    body, ctype = MP4, "video/mp4"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "private, max-age=31536000")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FrigateStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def frigate_api(live_server: LiveServer) -> Iterator[FrigateStandIn]:
    with FrigateStandIn() as stand_in:
        live_server.services.config.intake.frigate_url = stand_in.url
        yield stand_in


def camera_alarm(live_server: LiveServer, lat: float = 50.0, lon: float = 5.0) -> int:
    """The documentation's Frigate event (tests/fixtures/frigate), in through the signals API."""
    message = json.loads((FIXTURES / "frigate" / "events_update.json").read_text("utf-8"))
    message["type"] = "new"
    message["after"].update(has_snapshot=True, has_clip=True)
    converted = frigate.convert(
        "events",
        json.dumps(message).encode(),
        DeviceRegistry(),
        frigate.FrigateSettings(labels={"person": "TRESPASS"}),
    )
    body = msgspec.to_builtins(converted.signals[0])
    body["location"] = {"lat": lat, "lon": lon}
    r = live_server.post_signal(body)
    assert r.status_code == 202, r.text
    return int(r.json()["incident_id"])


def entries(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.audit_entries.c.entry).order_by(t.audit_entries.c.seq))
        return [json.loads(r.entry) for r in rows if r.entry]


def media_views(engine: sa.Engine, incident_id: int) -> list[dict[str, Any]]:
    return [
        e
        for e in entries(engine)
        if e["object_id"] == str(incident_id) and isinstance(e.get("detail", {}).get("media"), int)
    ]


def test_a_camera_alarm_shows_its_snapshot_and_clip_through_alarmdesk_audited_without_overlays(
    live_server: LiveServer, frigate_api: FrigateStandIn
) -> None:
    inc = camera_alarm(live_server)
    with live_server.client("operator") as op:
        listed = op.get(f"/api/v1/incidents/{inc}/media")
        assert listed.status_code == 200, listed.text
        body = listed.json()
        assert body["enabled"] is True
        assert [(m["n"], m["kind"], m["camera"], m["available"]) for m in body["items"]] == [
            (1, "snapshot", "front_door", True),
            (2, "clip", "front_door", True),
        ]
        snap = op.get(body["items"][0]["url"])
        clip = op.get(body["items"][1]["url"])
    assert snap.status_code == 200 and snap.content == JPEG
    assert snap.headers["content-type"] == "image/jpeg"
    assert snap.headers["cache-control"] == "no-store"  # not Frigate's year-long caching
    assert clip.status_code == 200 and clip.content == MP4
    assert clip.headers["content-type"] == "video/mp4"
    assert frigate_api.asked == [
        (f"/api/events/{EVENT_ID}/snapshot.jpg", {"bbox": "0", "timestamp": "0", "crop": "0"}),
        (f"/api/events/{EVENT_ID}/clip.mp4", {}),
    ]
    views = media_views(live_server.services.engine, inc)
    assert [(v["op"], v["detail"]["media"], v["detail"]["kind"]) for v in views] == [
        ("consult", 1, "snapshot"),
        ("consult", 2, "clip"),
    ]
    assert all(v["actor"] and v["role"] == "operator" for v in views)
    listing = [
        e
        for e in entries(live_server.services.engine)
        if e.get("detail", {}).get("media") == "list"
    ]
    assert listing and listing[-1]["detail"]["items"] == 2


def test_a_panel_zone_shows_the_camera_the_set_up_links_to_it(
    live_server: LiveServer, frigate_api: FrigateStandIn
) -> None:
    centre = msgspec.convert(
        {
            "cameras": [{"id": "cam-yard", "site": "Riverside", "frigate_camera": "yard_cam"}],
            "panels": [
                {
                    "account": "1234AB",
                    "site": "Riverside",
                    "lat": 50.0,
                    "lon": 5.0,
                    "zones": {"3": {"description": "Back door", "camera": "cam-yard"}},
                }
            ],
        },
        CentreFile,
    )
    recs = records(Centre.of([centre]))
    engine = live_server.services.engine
    with engine.begin() as conn:
        repo.upsert_devices(conn, [*recs["cameras"].values(), *recs["panels"].values()])
    at = datetime.now(UTC).replace(microsecond=0)
    r = live_server.post_signal(
        {
            "source_kind": "equipment",
            "source_id": "panel-1234AB",
            "type_code": "BURG",
            "occurred_at": at.isoformat(),
            "location": {"lat": 50.0, "lon": 5.0, "zone": "3"},
            "summary": "burglary zone 3",
        }
    )
    assert r.status_code == 202, r.text
    inc = r.json()["incident_id"]
    with live_server.client("operator") as op:
        items = op.get(f"/api/v1/incidents/{inc}/media").json()["items"]
        assert [(m["kind"], m["origin"], m["camera"]) for m in items] == [
            ("snapshot", "zone", "yard_cam"),
            ("clip", "zone", "yard_cam"),
        ]
        assert op.get(items[0]["url"]).content == JPEG
        assert op.get(items[1]["url"]).content == MP4
    ts = int(at.timestamp())
    assert frigate_api.asked == [
        (f"/api/yard_cam/recordings/{ts}/snapshot.jpg", {}),
        (f"/api/yard_cam/start/{ts - 10}/end/{ts + 31}/clip.mp4", {}),
    ]


def test_media_past_the_retention_class_are_refused_and_frigate_is_not_asked(
    live_server: LiveServer, frigate_api: FrigateStandIn
) -> None:
    inc = camera_alarm(live_server)
    svc = live_server.services
    real = svc.clock
    svc.clock = lambda: real() + timedelta(days=svc.config.retention.media_days, seconds=1)
    try:
        with live_server.client("operator") as op:
            items = op.get(f"/api/v1/incidents/{inc}/media").json()["items"]
            assert items and all(not m["available"] and m["url"] is None for m in items)
            r = op.get(f"/api/v1/incidents/{inc}/media/1")
    finally:
        svc.clock = real
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "media_expired"
    assert frigate_api.asked == []
    assert media_views(svc.engine, inc) == []


def test_frigate_down_is_a_502_with_a_code_and_nothing_is_disclosed(
    live_server: LiveServer,
) -> None:
    inc = camera_alarm(live_server)
    live_server.services.config.intake.frigate_url = f"http://127.0.0.1:{free_port()}"
    with live_server.client("operator") as op:
        r = op.get(f"/api/v1/incidents/{inc}/media/1")
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "frigate_unavailable"
    assert media_views(live_server.services.engine, inc) == []


def test_another_desks_incident_media_are_refused_like_the_incident(
    live_server: LiveServer, frigate_api: FrigateStandIn
) -> None:
    inc = camera_alarm(live_server, lat=50.0, lon=5.0)  # east of 0: not the west desk's
    with live_server.client("west_operator") as west:
        assert west.get(f"/api/v1/incidents/{inc}").status_code == 403
        assert west.get(f"/api/v1/incidents/{inc}/media").status_code == 403
        r = west.get(f"/api/v1/incidents/{inc}/media/1")
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    with live_server.client("operator") as op:
        assert op.get(f"/api/v1/incidents/{inc}/media/9").status_code == 404
        assert op.get("/api/v1/incidents/999999/media").status_code == 404
    assert frigate_api.asked == []


def test_video_off_lists_nothing(live_server: LiveServer) -> None:
    inc = camera_alarm(live_server)
    with live_server.client("operator") as op:
        assert op.get(f"/api/v1/incidents/{inc}/media").json() == {"enabled": False, "items": []}
        assert op.get(f"/api/v1/incidents/{inc}/media/1").status_code == 404


def test_the_verdict_is_recorded_confirms_and_is_refused_once_closed(
    live_server: LiveServer,
) -> None:
    inc = camera_alarm(live_server)
    with live_server.client("operator") as op:
        before = op.get(f"/api/v1/incidents/{inc}").json()
        r = op.post(
            f"/api/v1/incidents/{inc}/verify",
            json={"verdict": "verified", "note": "person at the fence", "expected_version": 1},
        )
        assert r.status_code == 200, r.text
        after = r.json()
        assert after["confirmed"] is True
        assert after["verification"]["verdict"] == "verified"
        assert after["verification"]["by"] == "operator"
        assert after["priority"] == max(1, before["priority"] - 1)
        bad = op.post(f"/api/v1/incidents/{inc}/verify", json={"verdict": "perhaps"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_verdict"
        missing = op.post(f"/api/v1/incidents/{inc}/verify", json={})
        assert missing.status_code == 422 and missing.json()["error"]["code"] == "missing_field"
        timeline = op.get(f"/api/v1/incidents/{inc}").json()["timeline"]
        verified = [e for e in timeline if e["type"] == "incident.verified"]
        assert verified[0]["detail"]["verdict"] == "verified"
        assert verified[0]["detail"]["note"] == "person at the fence"
        assert op.post(
            f"/api/v1/incidents/{inc}/resolve", json={"disposition": "handled"}
        ).is_success
        assert op.post(f"/api/v1/incidents/{inc}/verify", json={"verdict": "false"}).is_success
        assert op.post(f"/api/v1/incidents/{inc}/close").is_success
        late = op.post(f"/api/v1/incidents/{inc}/verify", json={"verdict": "verified"})
    assert late.status_code == 409 and late.json()["error"]["code"] == "invalid_transition"
    alters = [
        e
        for e in entries(live_server.services.engine)
        if e["op"] == "alter" and e["object_id"] == str(inc)
    ]
    assert any(e["outcome"] == "allowed" for e in alters)
    assert any(e["outcome"] == "denied" and e["rule"] == "invalid_transition" for e in alters)
    with live_server.services.engine.connect() as conn:
        stored = conn.execute(
            sa.select(t.incidents.c.verification).where(t.incidents.c.id == inc)
        ).scalar()
    assert stored["verdict"] == "false"


def test_an_answer_over_the_size_limit_is_a_502_and_not_passed_on(
    live_server: LiveServer, frigate_api: FrigateStandIn
) -> None:
    inc = camera_alarm(live_server)
    intake = live_server.services.config.intake
    intake.frigate_max_bytes = 1024
    assert len(JPEG) > 1024
    try:
        with live_server.client("operator") as op:
            r = op.get(f"/api/v1/incidents/{inc}/media/1")
    finally:
        intake.frigate_max_bytes = 64 * 1024 * 1024
    assert r.status_code == 502 and r.json()["error"]["code"] == "media_too_large"
    assert len(frigate_api.asked) == 1  # asked, and refused by its Content-Length
    assert media_views(live_server.services.engine, inc) == []
