"""Frigate messages → signals: what is raised, and what never enters the store."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest

from alarmdesk import config
from alarmdesk.domain.taxonomy import default_types
from alarmdesk.intake.devices import DeviceRegistry, device_from_row
from alarmdesk.intake.frigate import (
    FrigateSettings,
    availability,
    convert,
    settings_from,
)
from alarmdesk.intake.types import IDENTIFYING_LABELS, IntakeConfig
from alarmdesk.safeguards.special_category import is_special
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "frigate"
FORBIDDEN = ("John Smith", "John", "face", "Face", "ABC12345", "123ABC", "Bob")

CAMERA = {
    "id": "cam-front",
    "kind": "camera",
    "site": "Depot, 1 Main St",
    "lat": 50.5,
    "lon": 5.5,
    "zones": {"yard": {"description": "Yard", "lat": 50.51, "lon": 5.51}},
    "settings": {"frigate_camera": "front_door"},
}
SETTINGS = FrigateSettings(labels={"person": "TRESPASS"})


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def registry(**settings: Any) -> DeviceRegistry:
    row = copy.deepcopy(CAMERA)
    row["settings"].update(settings)
    return DeviceRegistry([device_from_row(row)])


def event(kind: str = "new", **after: Any) -> dict[str, Any]:
    message = load("events_update.json")
    message["type"] = kind
    message["after"].update(after)
    return message


def run(message: dict[str, Any], reg: DeviceRegistry | None = None, **kw: Any):
    settings = FrigateSettings(**{"labels": {"person": "TRESPASS"}, **kw})
    return convert("events", json.dumps(message).encode(), reg or registry(), settings)


def stored_text(signals: list) -> str:
    return msgspec.json.encode(signals).decode()


def test_a_new_person_raises_one_signal_without_identity_face_or_plate() -> None:
    out = run(event("new"))
    (s,) = out.signals
    assert s.type_code == "TRESPASS" and s.source_id == "cam-front"
    assert s.idempotency_key == "frigate:1607123955.475377-mxklsc:*"
    assert s.payload["label"] == "person" and s.payload["camera"] == "front_door"
    assert s.payload["zones"] == ["yard", "driveway"]
    assert s.payload["score"] == 0.8789 and s.payload["top_score"] == 0.959
    assert s.location is not None and s.location.site == "Depot, 1 Main St"
    text = stored_text(out.signals)
    for word in FORBIDDEN:
        assert word not in text, word
    # sub_label, the face attribute, the face in current_attributes, the plate
    assert out.dropped == 4


def test_the_fixture_update_adds_nothing_new_for_a_camera_wide_rule() -> None:
    out = run(load("events_update.json"))
    assert out.signals == [] and out.skipped == "nothing_new" and out.dropped == 4


def test_an_update_entering_an_alarm_zone_raises_for_that_zone() -> None:
    message = load("events_update.json")
    message["before"]["entered_zones"] = []
    out = run(message, registry(alarm_zones=["yard"]))
    (s,) = out.signals
    assert s.location is not None and s.location.zone == "yard" and s.location.lat == 50.51
    assert s.idempotency_key == "frigate:1607123955.475377-mxklsc:yard"
    assert "John" not in stored_text(out.signals)


def test_an_object_outside_the_alarm_zones_raises_nothing() -> None:
    out = run(event("new", entered_zones=["street"]), registry(alarm_zones=["yard"]))
    assert out.signals == [] and out.skipped == "outside_alarm_zones"


def test_the_end_of_an_event_restores() -> None:
    out = run(event("end", end_time=1607123999.5))
    (s,) = out.signals
    assert s.condition == "restored" and s.idempotency_key.endswith(":*:end")
    assert s.occurred_at.timestamp() == 1607123999.5


def test_plates_are_kept_only_for_types_that_enable_them() -> None:
    assert "plate" not in run(event("new")).signals[0].payload
    kept = run(event("new"), plates_enabled_types=frozenset({"TRESPASS"})).signals[0]
    assert kept.payload["plate"] == "ABC12345"
    assert "John Smith" not in stored_text([kept])


def test_unmapped_labels_and_false_positives_are_not_stored() -> None:
    assert run(event("new", label="dog")).skipped == "unmapped_label"
    assert run(event("new", false_positive=True)).skipped == "false_positive"
    # a camera's own label map wins over the global one
    out = run(event("new", label="dog"), registry(labels={"dog": "ANIMAL"}))
    assert out.signals[0].type_code == "ANIMAL"


def test_an_unknown_camera_is_still_heard() -> None:
    out = run(event("new", camera="back_door"))
    (s,) = out.signals
    assert s.source_id == "camera-back_door" and s.payload["unknown_camera"] is True


@pytest.mark.parametrize(
    "name",
    [
        "tracked_object_update_face.json",
        "tracked_object_update_lpr.json",
        "tracked_object_update_description.json",
        "tracked_object_update_classification.json",
    ],
)
def test_tracked_object_updates_are_never_stored(name: str) -> None:
    body = json.dumps(load(name)).encode()
    out = convert("tracked_object_update", body, registry(), SETTINGS)
    assert out.signals == []


def test_a_review_alert_raises_when_reviews_are_the_alarm_source() -> None:
    message = load("reviews.json")
    reg = DeviceRegistry(
        [device_from_row({**CAMERA, "id": "cam-1", "settings": {"frigate_camera": "front_cam"}})]
    )
    settings = FrigateSettings(labels={"person": "TRESPASS"}, alarm_source="reviews")
    out = convert("reviews", json.dumps(message).encode(), reg, settings)
    (s,) = out.signals
    assert s.type_code == "TRESPASS" and s.source_id == "cam-1"
    assert s.payload["objects"] == ["person", "car"] and s.payload["severity"] == "alert"
    assert "Bob" not in stored_text(out.signals) and out.dropped == 1
    # with events as the alarm source, reviews are not stored
    assert convert("reviews", json.dumps(message).encode(), reg, SETTINGS).signals == []


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[]", b'{"type": "new"}', b'{"type":"new","after":3}']
)
def test_malformed_messages_raise_nothing(body: bytes) -> None:
    out = convert("events", body, registry(), SETTINGS)
    assert out.signals == [] and out.skipped == "malformed"


def test_availability() -> None:
    assert availability(b"online") is True
    assert availability(b"offline") is False
    assert availability(b"maybe") is None


def test_a_message_nested_beyond_the_decoder_depth_is_malformed_not_a_recursion_error() -> None:
    body = b'{"type": "new", "after": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert convert("events", body, registry(), SETTINGS).skipped == "malformed"


# -- the default labels ------------------------------------------------------------------------


def test_the_default_configuration_maps_what_a_centre_expects_to_known_incident_types() -> None:
    cfg = IntakeConfig()
    assert cfg.frigate_labels["person"] == "TRESPASS"
    assert cfg.frigate_labels["car"] == "TRESPASS"
    assert cfg.frigate_labels["fire"] == "FUNK"
    assert cfg.frigate_labels["smoke"] == "FSMOKE"
    known = {t.code for t in default_types()}
    assert set(cfg.frigate_labels.values()) <= known
    assert set(cfg.frigate_labels_anywhere) == {"fire", "smoke"}


def test_no_label_that_identifies_a_person_is_mapped_by_default() -> None:
    labels = IntakeConfig().frigate_labels
    assert not [label for label in labels if is_special(label) or label in IDENTIFYING_LABELS]


@pytest.mark.parametrize("label", ["face", "license_plate", "sub_label"])
def test_a_configuration_that_maps_an_identifying_label_is_refused(tmp_path, label) -> None:
    path = tmp_path / "alarmdesk.toml"
    path.write_text(f'[intake.frigate_labels]\n{label} = "TRESPASS"\n')
    with pytest.raises(config.ConfigError, match="identif"):
        config.load(path, env={})


def default_settings() -> FrigateSettings:
    settings = settings_from(IntakeConfig())
    assert settings is not None
    return settings


def demo_camera(zones: list[str]) -> DeviceRegistry:
    return registry(alarm_zones=zones)


def test_with_the_defaults_a_person_alarms_in_an_alarm_zone_and_not_outside_it() -> None:
    settings = default_settings()
    reg = demo_camera(["yard"])
    inside = event("new", entered_zones=["yard"], sub_label=None)
    outside = event("new", entered_zones=["driveway"], sub_label=None)
    body = json.dumps(inside).encode()
    (signal,) = convert("events", body, reg, settings).signals
    assert signal.type_code == "TRESPASS" and signal.location is not None
    assert signal.location.zone == "yard"
    assert convert("events", json.dumps(outside).encode(), reg, settings).signals == []


def test_with_the_defaults_smoke_alarms_anywhere_in_view_even_outside_the_alarm_zones() -> None:
    message = event("new", label="smoke", entered_zones=["driveway"], sub_label=None)
    converted = convert(
        "events", json.dumps(message).encode(), demo_camera(["yard"]), default_settings()
    )
    (signal,) = converted.signals
    assert signal.type_code == "FSMOKE" and signal.idempotency_key.endswith(":*")


def test_plates_may_be_kept_only_for_types_where_the_vehicle_is_part_of_the_harm():
    from alarmdesk.domain.errors import ConfigError
    from alarmdesk.domain.taxonomy import Taxonomy
    from alarmdesk.intake.frigate import check_plate_types

    taxonomy = Taxonomy(default_types())
    check_plate_types(["TRESPASS", "carjack"], taxonomy)  # property, violence
    for code, why in [("ALRF", "fire type"), ("NOSUCH", "no incident type")]:
        with pytest.raises(ConfigError) as info:
            check_plate_types([code], taxonomy)
        assert why in info.value.message and info.value.field == "plates_enabled_types"
