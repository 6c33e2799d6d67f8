"""What probing found passing the edges, through the served API: a signal's type code that
names a protected purpose, bidi controls in texts, invisible-only texts where one must say
something, identifying camera labels in the set-up, and control characters in a search's
justification."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest


def signal(key: str, **fields: Any) -> dict[str, Any]:
    return {
        "source_kind": "equipment",
        "source_id": "probe-sc-1",
        "type_code": "ALRF",
        "occurred_at": datetime.now(UTC).isoformat(),
        "summary": "x",
        "idempotency_key": key,
        **fields,
    }


def error(r: Any) -> tuple[int, str, str]:
    body = r.json()["error"]
    return r.status_code, body["code"], body.get("field")


def test_a_signal_whose_type_code_names_a_protected_purpose_is_refused(live_server) -> None:
    r = live_server.post_signal(signal("sc-1", type_code="PROTEST"))
    assert error(r) == (422, "protected_purpose", "type_code"), r.text
    with live_server.client("intake") as intake:
        batch = {"signals": [signal("sc-2"), signal("sc-3", type_code="Pr0test")]}
        r = intake.post("/api/v1/signals/batch", json=batch)
    assert error(r) == (422, "protected_purpose", "signals[1].type_code"), r.text
    # an unknown code that names no protected purpose still opens an UNCLASS incident
    assert live_server.post_signal(signal("sc-4", type_code="SIAZZ")).status_code == 202


def test_a_bidi_override_in_a_signal_text_is_refused_naming_the_field(live_server) -> None:
    location = {"lat": 37.83, "lon": -122.48, "address": "\u202eRTL-addr"}
    r = live_server.post_signal(signal("bd-1", location=location))
    assert error(r) == (422, "invalid_value", "location.address"), r.text
    r = live_server.post_signal(signal("bd-2", payload={"zone": "yard\u2067"}))
    assert error(r) == (422, "invalid_value", "payload.zone"), r.text
    kept = {"lat": 37.83, "lon": -122.48, "address": "\u200fشارع 12"}
    assert live_server.post_signal(signal("bd-3", location=kept)).status_code == 202


def test_an_id_of_only_invisible_characters_is_refused(live_server) -> None:
    r = live_server.post_signal(signal("iv-1", source_id="\u200b\u200b"))
    assert error(r) == (422, "invalid_value", "source_id"), r.text


def test_an_export_recipient_that_shows_nothing_or_reverses_text_is_refused(live_server) -> None:
    inc = live_server.post_signal(signal("ex-1")).json()["incident_id"]
    with live_server.client("operator") as op:
        eido = f"/api/v1/incidents/{inc}/eido"
        assert error(op.get(eido, params={"recipient": "\u200b"})) == (
            422, "missing_field", "recipient",
        )  # fmt: skip
        assert error(op.get(eido, params={"recipient": "Fire\u202eevil"})) == (
            422, "invalid_value", "recipient",
        )  # fmt: skip
        assert op.get(eido, params={"recipient": "Fire Brigade West"}).status_code == 200


@pytest.mark.parametrize("label", ["face", "license_plate", "sub_label", "plate"])
def test_a_camera_label_that_identifies_a_person_is_refused_by_the_set_up_api(
    live_server, label
) -> None:
    camera = {"id": "cam-x", "site": "Depot yard", "labels": {"fire": "FUNK", label: "TRESPASS"}}
    with live_server.client("admin") as admin:
        r = admin.put("/api/v1/setup/cameras/cam-x", json=camera)
        assert error(r) == (422, "special_category", "labels"), r.text
        assert "cam-x" in r.json()["error"]["message"]
        assert admin.get("/api/v1/setup/cameras/cam-x").status_code == 404
        fine = {**camera, "labels": {"fire": "FUNK", "person": "TRESPASS"}}
        assert admin.put("/api/v1/setup/cameras/cam-x", json=fine).status_code == 200


@pytest.mark.parametrize(
    "justification",
    ["\x00\x00\x00\x00\x00\x00abc", "\x1b[31mred\x1b[0m", "\u202e\u200b\u200b\u200b\u200b\u200b"],
)
def test_a_search_justification_with_control_characters_is_refused(
    live_server, justification
) -> None:
    with live_server.client("operator") as op:
        r = op.get("/api/v1/incidents", params={"justification": justification})
    assert error(r) == (422, "invalid_value", "justification"), r.text
