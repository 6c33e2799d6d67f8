"""The one minimisation step every adapter runs: special-category data never enters."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarmdesk.domain.signal import SignalIn, SourceKind
from alarmdesk.safeguards.minimise import minimise, minimise_payload
from alarmdesk.safeguards.special_category import is_special


def signal(payload: dict) -> SignalIn:
    return SignalIn(
        source_kind=SourceKind.EQUIPMENT,
        source_id="camera-front",
        type_code="TRESPASS",
        occurred_at=datetime(2026, 11, 25, 10, 0, tzinfo=UTC),
        payload=payload,
    )


@pytest.mark.parametrize(
    "key",
    [
        "face",
        "Face",
        "FACE_ID",
        "faceId",
        "face-name",
        "sub_label",
        "subLabel",
        "sub_labels",
        "biometric_template",
        "faceEmbedding",
        "embedding",
        "ethnicity",
        "Race",
        "religion",
        "religious_affiliation",
        "political_party",
        "politicalOpinion",
        "trade_union",
        "union_membership",
        "sexual_orientation",
        "sex_life",
        "nationality",
        "migration_status",
    ],
)
def test_keys_naming_special_category_data_are_dropped(key: str) -> None:
    out, dropped = minimise_payload({key: "anything", "label": "person"})
    assert out == {"label": "person"} and dropped == 1


@pytest.mark.parametrize(
    "key",
    [
        "surface",
        "interface",
        "label",
        "camera",
        "zones",
        "trace",
        "union_street",
        "score",
        "partition",
        "user",
        "facet",
        "embed_url",
        "place_of_event",
    ],
)
def test_ordinary_keys_are_kept(key: str) -> None:
    assert minimise_payload({key: 1}) == ({key: 1}, 0)


def test_nested_values_and_objects_describing_faces_are_dropped() -> None:
    payload = {
        "after": {
            "label": "person",
            "sub_label": ["John Smith", 0.79],
            "attributes": {"face": 0.86, "hat": 0.5},
            "current_attributes": [
                {"label": "face", "box": [1, 2, 3, 4], "score": 0.86},
                {"label": "license_plate", "score": 0.9},
            ],
        },
        "updates": [{"type": "face", "name": "John"}, {"type": "description", "text": "red car"}],
    }
    out, dropped = minimise_payload(payload)
    assert dropped == 4
    assert out == {
        "after": {
            "label": "person",
            "attributes": {"hat": 0.5},
            "current_attributes": [{"label": "license_plate", "score": 0.9}],
        },
        "updates": [{"type": "description", "text": "red car"}],
    }
    text = msgspec.json.encode(out).decode()
    assert "John" not in text and "face" not in text


def test_a_payload_that_is_itself_a_face_record_is_emptied() -> None:
    assert minimise_payload({"type": "face", "name": "John", "score": 0.95}) == ({}, 1)


def test_the_signal_comes_back_unchanged_when_nothing_is_dropped() -> None:
    s = signal({"label": "person", "zones": ["yard"]})
    out, dropped = minimise(s)
    assert out is s and dropped == 0


def test_the_signal_gets_a_minimised_payload() -> None:
    s = signal({"label": "person", "face_id": "abc"})
    out, dropped = minimise(s)
    assert out.payload == {"label": "person"} and dropped == 1
    assert s.payload == {"label": "person", "face_id": "abc"}  # the original is not changed


@settings(deadline=None)  # timing is not the property; CI machines are shared
@given(st.text(max_size=20))
def test_is_special_never_raises(name: str) -> None:
    assert is_special(name) in (True, False)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["face", "label", "type", "a", "sub_label", "x"]), inner, max_size=4
        )
    ),
    max_leaves=20,
)


@settings(deadline=None)
@given(json_values.filter(lambda v: isinstance(v, dict)))
def test_no_special_key_survives_at_any_depth(payload: dict) -> None:
    out, _ = minimise_payload(payload)

    def keys(v: object) -> list[str]:
        if isinstance(v, dict):
            return [*v.keys(), *(k for x in v.values() for k in keys(x))]
        if isinstance(v, list):
            return [k for x in v for k in keys(x)]
        return []

    assert not any(is_special(k) for k in keys(out))
