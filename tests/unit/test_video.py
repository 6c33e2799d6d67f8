"""Video verification's pure parts: which media an incident shows and the overlay-free requests
for them (domain/video.py), the verdict (pipeline), the set-up's zone cameras, the settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from alarmdesk.config import load
from alarmdesk.domain import commands as c
from alarmdesk.domain.centre import check
from alarmdesk.domain.centre_plan import diff, records
from alarmdesk.domain.errors import ConfigError, InvalidField, SetupError
from alarmdesk.domain.events import EventType
from alarmdesk.domain.signal import Location, Signal, SourceKind
from alarmdesk.domain.video import NO_OVERLAY, VideoSettings, media_of
from alarmdesk.intake import frigate
from alarmdesk.intake.devices import DeviceRegistry
from alarmdesk.service import centre_files
from tests.conftest import FIXTURES
from tests.unit.test_pipeline import pipeline

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SETTINGS = frigate.FrigateSettings(labels={"person": "TRESPASS"})


def frigate_message(kind: str, **after: Any) -> bytes:
    """The documentation's event (tests/fixtures/frigate), as a camera alarm."""
    message = json.loads((FIXTURES / "frigate" / "events_update.json").read_text("utf-8"))
    message["type"] = kind
    message["after"].update(after)
    return json.dumps(message).encode()


def stored(n: int, signal: Any, received: datetime = T0) -> dict[str, Any]:
    """A signal as store.repository.get_incident lists it."""
    s = msgspec.to_builtins(signal)
    return {
        "id": n,
        "source_kind": s["source_kind"],
        "source_id": s["source_id"],
        "occurred_at": s["occurred_at"],
        "received_at": received.isoformat(),
        "location": s.get("location"),
        "payload": s.get("payload") or {},
        "condition": s.get("condition", "active"),
    }


def camera_signals(**after: Any) -> list[dict[str, Any]]:
    new = frigate.convert(
        "events",
        frigate_message("new", has_snapshot=True, has_clip=False, **after),
        DeviceRegistry(),
        SETTINGS,
    )
    end = frigate.convert(
        "events",
        frigate_message("end", has_snapshot=True, has_clip=True, end_time=1607123999.5, **after),
        DeviceRegistry(),
        SETTINGS,
    )
    assert new.signals and end.signals
    return [stored(1, new.signals[0]), stored(2, end.signals[0])]


def panel_signal(zone: str = "3", condition: str = "active") -> dict[str, Any]:
    return {
        "id": 7,
        "source_kind": "equipment",
        "source_id": "panel-1234AB",
        "occurred_at": T0.isoformat(),
        "received_at": T0.isoformat(),
        "location": {"zone": zone, "site": "Riverside school"},
        "payload": {"event": "BA", "zone": zone},
        "condition": condition,
    }


def linked(source_id: str, zone: str) -> str | None:
    return "yard_cam" if (source_id, zone) == ("panel-1234AB", "3") else None


def no_link(source_id: str, zone: str) -> str | None:
    return None


# -- which media, and how they are asked for -------------------------------------------------


def test_a_camera_alarm_shows_its_event_snapshot_without_overlays_and_its_clip():
    media = media_of(camera_signals(), no_link, VideoSettings())
    assert [(m.n, m.kind, m.origin, m.camera) for m in media] == [
        (1, "snapshot", "event", "front_door"),
        (2, "clip", "event", "front_door"),
    ]
    snap, clip = media
    assert snap.path == "/api/events/1607123955.475377-mxklsc/snapshot.jpg"
    assert snap.query == NO_OVERLAY == (("bbox", "0"), ("timestamp", "0"), ("crop", "0"))
    assert snap.content_type == "image/jpeg"
    # the start said no clip yet, the end of the same event says there is one: shown once
    assert clip.path == "/api/events/1607123955.475377-mxklsc/clip.mp4"
    assert clip.query == () and clip.content_type == "video/mp4"
    assert snap.signal_id == clip.signal_id == 1
    assert snap.at == datetime.fromtimestamp(1607123955.475377, UTC)


def test_no_request_ever_asks_for_labels_faces_plates_or_overlays():
    media = media_of(camera_signals(), no_link, VideoSettings())
    media += media_of([panel_signal()], linked, VideoSettings())
    for m in media:
        assert dict(m.query).keys() <= {"bbox", "timestamp", "crop"}
        assert set(dict(m.query).values()) <= {"0"}
        for word in ("label", "sub_label", "face", "plate", "thumbnail", "latest", "draw"):
            assert word not in m.path


@pytest.mark.parametrize(
    ("style", "tail", "ctype"),
    [
        ("snapshot-clean.webp", "snapshot-clean.webp", "image/webp"),
        ("snapshot-clean.png", "snapshot-clean.png", "image/png"),
    ],
)
def test_the_clean_copy_is_asked_for_when_the_deployment_says_so(style, tail, ctype):
    snap = media_of(camera_signals(), no_link, VideoSettings(snapshot=style))[0]
    assert snap.path.endswith("/" + tail) and snap.query == () and snap.content_type == ctype


def test_a_panel_zone_shows_its_linked_camera_at_the_alarm_time_and_the_recording_around_it():
    settings = VideoSettings(clip_before=timedelta(seconds=10), clip_after=timedelta(seconds=30))
    snap, clip = media_of([panel_signal()], linked, settings)
    ts = int(T0.timestamp())
    assert (snap.origin, snap.camera, snap.signal_id) == ("zone", "yard_cam", 7)
    assert snap.path == f"/api/yard_cam/recordings/{ts}/snapshot.jpg" and snap.query == ()
    assert clip.path == f"/api/yard_cam/start/{ts - 10}/end/{ts + 31}/clip.mp4"


def test_a_zone_without_camera_a_restore_and_a_hostile_name_show_nothing():
    assert media_of([panel_signal(zone="4")], linked, VideoSettings()) == []
    assert media_of([panel_signal(condition="restored")], linked, VideoSettings()) == []
    hostile = camera_signals()
    for s in hostile:
        s["payload"]["event_id"] = "../../config?x=1"
    assert media_of(hostile, no_link, VideoSettings()) == []
    assert media_of([panel_signal()], lambda *_: "../etc", VideoSettings()) == []


def test_media_expire_with_the_media_retention_class_of_their_signal():
    media = media_of(camera_signals(), no_link, VideoSettings(media_days=30))
    assert all(m.expires_at == T0 + timedelta(days=30) for m in media)
    assert not media[0].expired(T0 + timedelta(days=29, hours=23))
    assert media[0].expired(T0 + timedelta(days=30))


def test_media_whose_references_the_retention_job_erased_are_listed_as_expired():
    signals = camera_signals()
    for s in signals:  # what store/retention does to a payload: the media keys go
        for key in ("event_id", "snapshot_ref"):
            s["payload"].pop(key, None)
        s["payload"]["retention_erased"] = ["media"]
    media = media_of(signals, no_link, VideoSettings())
    assert media and all(m.erased and m.path == "" and m.expired(T0) for m in media)


def test_the_event_id_is_erased_with_the_media_class():
    from alarmdesk.store.retention import MEDIA_KEYS

    assert {"event_id", "review_id", "thumb_ref", "snapshot_ref"} <= set(MEDIA_KEYS)


# -- the verdict -----------------------------------------------------------------------------


def intrusion(p) -> int:
    s = Signal(
        id=1,
        idempotency_key="k1",
        content_digest="f",
        received_at=T0,
        source_kind=SourceKind.EQUIPMENT,
        source_id="panel-1234AB",
        type_code="BURG",
        occurred_at=T0,
        location=Location(lat=52.0, lon=4.0, zone="3"),
        summary="",
        payload={},
    )
    result = p.ingest(s)
    assert result.incident_id is not None
    return result.incident_id


def test_verified_on_video_confirms_the_alarm_and_raises_its_priority_once():
    p = pipeline()
    inc_id = intrusion(p)
    before = p.incidents[inc_id].priority
    result = p.handle(c.Verify(inc_id, "op", verdict="verified", note="man at the back door"), T0)
    (ev,) = result.events
    assert ev.type is EventType.VERIFIED
    assert ev.detail["verdict"] == "verified" and ev.detail["confirmed"] is True
    assert ev.detail["note"] == "man at the back door"
    inc = p.incidents[inc_id]
    assert inc.confirmed and inc.priority == max(1, before - 1)
    assert inc.verification == {"verdict": "verified", "by": "op", "at": T0.isoformat()}
    assert ev.snapshot["verification"]["verdict"] == "verified"
    again = p.handle(c.Verify(inc_id, "op2", verdict="verified"), T0)
    assert "confirmed" not in again.events[0].detail and inc.priority == max(1, before - 1)


def test_a_false_verdict_is_recorded_and_changes_nothing_else():
    p = pipeline()
    inc_id = intrusion(p)
    before = p.incidents[inc_id].priority
    (ev,) = p.handle(c.Verify(inc_id, "op", verdict="false"), T0).events
    inc = p.incidents[inc_id]
    assert ev.detail == {"verdict": "false"}
    assert not inc.confirmed and inc.priority == before and inc.status.value == "new"
    assert inc.verification is not None and inc.verification["verdict"] == "false"


def test_an_unknown_verdict_is_refused_and_changes_nothing():
    p = pipeline()
    inc_id = intrusion(p)
    version = p.incidents[inc_id].version
    with pytest.raises(InvalidField) as info:
        p.handle(c.Verify(inc_id, "op", verdict="maybe"), T0)
    assert info.value.code == "invalid_verdict"
    assert p.incidents[inc_id].version == version and p.incidents[inc_id].verification is None


def test_the_verdict_survives_the_store_round_trip():
    from alarmdesk.store.repository import incident_from, incident_row

    p = pipeline()
    inc_id = intrusion(p)
    p.handle(c.Verify(inc_id, "op", verdict="verified"), T0)
    row = incident_row(p.incidents[inc_id])
    assert incident_from(row).verification == p.incidents[inc_id].verification


# -- the set-up: a zone's camera -------------------------------------------------------------

LINKED = """\
cameras:
  - id: cam-yard
    site: Riverside school
    frigate_camera: yard_cam
panels:
  - account: 1234AB
    site: Riverside school
    zones:
      1: Front door
      3: {{description: Back door, camera: {camera}}}
"""


def test_a_zone_links_a_camera_of_the_set_up_and_the_link_is_exported(tmp_path: Path):
    path = tmp_path / "centre.yaml"
    path.write_text(LINKED.format(camera="cam-yard"), "utf-8")
    located = centre_files.load(path)
    check(located.centre, located.where)
    stored_records = records(located.centre)
    assert stored_records["panels"]["panel-1234AB"]["zones"]["3"]["camera"] == "cam-yard"
    folder = tmp_path / "export"
    centre_files.write(folder, centre_files.dump(stored_records, include_secrets=True))
    assert diff(stored_records, records(centre_files.load(folder).centre)).empty


def test_a_zone_linking_an_unknown_camera_is_refused_naming_file_and_line(tmp_path: Path):
    path = tmp_path / "centre.yaml"
    path.write_text(LINKED.format(camera="cam-nowhere"), "utf-8")
    located = centre_files.load(path)
    with pytest.raises(SetupError) as info:
        check(located.centre, located.where)
    assert info.value.code == "unknown_reference"
    assert "cam-nowhere" in info.value.message
    assert info.value.where.startswith(f"{path}:")


def test_the_device_registry_reads_a_zones_camera():
    from alarmdesk.intake.devices import device_from_row

    d = device_from_row(
        {"id": "panel-1", "kind": "panel", "zones": {"3": {"description": "x", "camera": "c"}}}
    )
    assert d.zone("3") is not None and d.zone("3").camera == "c"  # type: ignore[union-attr]


# -- settings ---------------------------------------------------------------------------------


def test_frigate_url_comes_from_the_file_or_the_environment_and_is_checked(tmp_path: Path):
    path = tmp_path / "alarmdesk.toml"
    path.write_text('[intake]\nfrigate_url = "http://frigate:5000"\n', "utf-8")
    assert load(path, env={}).intake.frigate_url == "http://frigate:5000"
    cfg = load(path, env={"ALARMDESK_FRIGATE_URL": "https://nvr.example:8971"})
    assert cfg.intake.frigate_url == "https://nvr.example:8971"
    with pytest.raises(ConfigError):
        load(path, env={"ALARMDESK_FRIGATE_URL": "ftp://frigate"})
    path.write_text('[intake]\nfrigate_url = "http://u:p@frigate:5000"\n', "utf-8")
    with pytest.raises(ConfigError):
        load(path, env={})
