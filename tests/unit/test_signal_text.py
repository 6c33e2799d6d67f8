"""The one text rule of every intake (``domain.signal.check_text`` and the payload walk):
control characters, DEL, explicit bidi controls and lone surrogates are refused, tab and
line breaks only in free text. The fast paths must give exactly the answer of the rule
written out character by character, which these tests keep next to them as the reference."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarmdesk.domain.errors import InvalidField, PayloadTooLarge, ProtectedPurposeError
from alarmdesk.domain.signal import (
    MAX_PAYLOAD_DEPTH,
    Location,
    SignalIn,
    SourceKind,
    check,
    check_text,
    decode_batch,
    decode_one,
    is_blank,
    validate,
)

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
PROPERTY = settings(max_examples=400, deadline=None, database=None)


# -- the rule written out, one character at a time ------------------------------------------------


def reference_bad_char(text: str, *, multiline: bool) -> str | None:
    allowed = "\t\n\r" if multiline else ""
    for ch in text:
        code = ord(ch)
        if (
            (code < 0x20 and ch not in allowed)
            or 0x7F <= code <= 0x9F  # DEL and the C1 controls
            or 0x202A <= code <= 0x202E  # bidi embeddings and overrides (LRE..RLO)
            or 0x2066 <= code <= 0x2069  # bidi isolates (LRI..PDI)
            or 0xD800 <= code <= 0xDFFF
        ):
            return ch
    return None


def reference_payload_error(value: Any, field: str, depth: int = 0) -> tuple[str, str] | None:
    """(field, code) of the first thing the payload rule refuses, walking in order."""
    if depth > MAX_PAYLOAD_DEPTH:
        return field, "invalid_value"
    if isinstance(value, str):
        return (
            None if reference_bad_char(value, multiline=True) is None else (field, "invalid_value")
        )
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return field, "wrong_type"
            inner = f"{field}.{k[:40]}"
            if reference_bad_char(k, multiline=False) is not None:
                return inner, "invalid_value"
            found = reference_payload_error(v, inner, depth + 1)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            found = reference_payload_error(v, f"{field}[{i}]", depth + 1)
            if found is not None:
                return found
    return None


def a_signal(**fields: Any) -> SignalIn:
    base: dict[str, Any] = {
        "source_kind": SourceKind.EQUIPMENT,
        "source_id": "panel-1",
        "type_code": "BURGLARY",
        "occurred_at": NOW,
    }
    return SignalIn(**(base | fields))


def refusal(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, str] | None:
    try:
        fn(*args, **kwargs)
    except InvalidField as err:
        return err.field or "", err.code
    return None


# -- characters: the ones that matter, and anything else -----------------------------------------

SPECIAL = [chr(c) for c in range(0x20)] + ["\x7f", "\x80", "\x85", "\x9b", "\x9f", "\xa0"]
SPECIAL += ["\u2028", "\ufeff"]
# Explicit bidi controls (refused) and the marks beside them (kept: LRM, RLM, ALM).
BIDI = [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
MARKS = ["\u200e", "\u200f", "\u061c", "\u2029", "\u206a"]
SPECIAL += [*BIDI, *MARKS]
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
any_char = st.one_of(
    st.characters(),  # every code point but the surrogates
    st.sampled_from(SPECIAL + SURROGATES),
    st.sampled_from('aZ09 -—é€"\\{}[]'),
)
plain_texts = st.text(alphabet=any_char, max_size=40)
# Hypothesis folds the sampled characters above into characters() and then never draws some of
# them (the bidi controls among them): a text with one of those put in is drawn explicitly.
texts = st.one_of(
    plain_texts,
    st.builds(lambda a, c, b: a + c + b, plain_texts, st.sampled_from(BIDI + MARKS), plain_texts),
)


@PROPERTY
@given(text=texts, multiline=st.booleans())
def test_check_text_refuses_exactly_what_the_rule_written_out_refuses(
    text: str, multiline: bool
) -> None:
    bad = reference_bad_char(text, multiline=multiline)
    if bad is None:
        assert check_text(text, "f", multiline=multiline) is text
    else:
        with pytest.raises(InvalidField) as err:
            check_text(text, "f", multiline=multiline)
        assert err.value.code == "invalid_value"
        assert err.value.field == "f"
        assert f"U+{ord(bad):04X}" in str(err.value)


payload_keys = st.one_of(texts, st.integers(0, 3))
payload_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts)
payload_values = st.recursive(
    payload_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(payload_keys, inner, max_size=3),
    ),
    max_leaves=25,
)


def nested(depth: int, leaf: Any) -> Any:
    for i in range(depth):
        leaf = {"k": leaf} if i % 2 else [leaf]
    return leaf


@PROPERTY
@given(payload=st.dictionaries(payload_keys, payload_values, max_size=6))
def test_the_payload_check_refuses_exactly_what_the_rule_written_out_refuses(
    payload: dict[Any, Any],
) -> None:
    expected = reference_payload_error(payload, "payload")
    assert refusal(check, a_signal(payload=payload), NOW) == expected


@PROPERTY
@given(
    depth=st.integers(MAX_PAYLOAD_DEPTH - 2, MAX_PAYLOAD_DEPTH + 2),
    leaf=st.one_of(texts, st.integers()),
)
def test_the_payload_check_refuses_depth_as_the_rule_does(depth: int, leaf: Any) -> None:
    payload = {"a": nested(depth, leaf)}
    assert refusal(check, a_signal(payload=payload), NOW) == reference_payload_error(
        payload, "payload"
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"summary": "door\x00open"}, "summary", id="NUL in the summary"),
        pytest.param({"summary": "door — \x1bopen"}, "summary", id="ESC after non-ASCII"),
        pytest.param(
            {"summary": "caf\u00e9 \ud800"}, "summary", id="lone surrogate in the summary"
        ),
        pytest.param({"source_id": "panel\t1"}, "source_id", id="tab in a one-line field"),
        pytest.param({"type_code": "FIRE\x7f"}, "type_code", id="DEL in the type code"),
        pytest.param({"summary": "door\x85open"}, "summary", id="C1 NEL in the summary"),
        pytest.param({"source_id": "panel\x9b1"}, "source_id", id="C1 CSI in a one-line field"),
        pytest.param({"payload": {"zone": "3\x80"}}, "payload.zone", id="C1 in a payload value"),
        pytest.param({"payload": {"z\x9fne": "3"}}, "payload.z\x9fne", id="C1 in a payload key"),
        pytest.param({"payload": {"zone": "3\x00"}}, "payload.zone", id="NUL in a payload value"),
        pytest.param({"payload": {"zo\nne": "3"}}, "payload.zo\nne", id="newline in a payload key"),
        pytest.param({"payload": {"a": "\ud83d"}}, "payload.a", id="lone surrogate in the payload"),
        pytest.param(
            {"payload": {"a": ["x", {"b": "\udfff"}]}},
            "payload.a[1].b",
            id="lone surrogate deep in the payload",
        ),
    ],
)
def test_a_text_no_store_keeps_is_refused_by_validate_naming_its_field(
    fields: dict[str, Any], field: str
) -> None:
    assert refusal(validate, a_signal(**fields), NOW) == (field, "invalid_value")


def test_free_text_keeps_tabs_line_breaks_and_any_printable_script() -> None:
    signal = a_signal(
        summary="Einbruch — Tür 3\r\n\tÅpen dør, 火警",
        payload={"text": "line 1\nline 2\ttab", "zone": "Zone 3 — Hof", "n": 3, "list": ["\u2028"]},
    )
    assert validate(signal, NOW) == signal


def test_a_payload_too_large_is_still_refused_by_size() -> None:
    signal = a_signal(payload={"text": "x" * 9000})
    with pytest.raises(PayloadTooLarge):
        validate(signal, NOW)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        pytest.param({"idempotency_key": "auto:new1"}, "idempotency_key", id="auto: key"),
        pytest.param(
            {"idempotency_key": "auto:" + "0" * 32}, "idempotency_key", id="a server-made key"
        ),
        pytest.param({"source_id": "   "}, "source_id", id="source_id only spaces"),
        pytest.param({"type_code": "  "}, "type_code", id="type_code only spaces"),
        pytest.param({"type_code": "\u00a0\u2003"}, "type_code", id="type_code Unicode spaces"),
    ],
)
def test_a_value_the_signal_schema_refuses_is_refused_by_validate_and_check(
    fields: dict[str, Any], field: str
) -> None:
    assert refusal(validate, a_signal(**fields), NOW) == (field, "invalid_value")


def test_the_reserved_key_prefix_is_refused_by_check_naming_the_batch_item() -> None:
    refused = refusal(check, a_signal(idempotency_key="auto:x"), NOW, prefix="signals[3]")
    assert refused == ("signals[3].idempotency_key", "invalid_value")


def test_keys_and_ids_that_only_look_reserved_or_blank_are_kept() -> None:
    signal = a_signal(idempotency_key="x-auto:1", source_id=" panel 1 ", type_code=" FIRE")
    assert validate(signal, NOW) == signal


# -- bidi controls: an override reverses what follows it on screen (coordinates included) ---------


@pytest.mark.parametrize("ch", BIDI, ids=[f"U+{ord(c):04X}" for c in BIDI])
@pytest.mark.parametrize(
    "where",
    ["source_id", "type_code", "summary", "location.address", "location.site", "payload.note"],
)
def test_an_explicit_bidi_control_is_refused_in_every_text_naming_its_field(
    ch: str, where: str
) -> None:
    value = f"Main St{ch} 12"
    if where == "payload.note":
        fields: dict[str, Any] = {"payload": {"note": value}}
    elif where.startswith("location."):
        fields = {"location": Location(**{where.split(".")[1]: value})}
    else:
        fields = {where: value}
    assert refusal(validate, a_signal(**fields), NOW) == (where, "invalid_value")
    with pytest.raises(InvalidField, match=f"U\\+{ord(ch):04X}"):
        validate(a_signal(**fields), NOW)


def test_a_bidi_override_in_a_flat_payload_is_found_by_the_bytes_fast_path() -> None:
    payload = {"zone": "Hof \u202e21", "n": 3}
    assert refusal(check, a_signal(payload=payload), NOW) == ("payload.zone", "invalid_value")
    assert refusal(check, a_signal(payload={"z\u2066": "1"}), NOW) == (
        "payload.z\u2066",
        "invalid_value",
    )


def test_bidi_marks_and_text_in_right_to_left_scripts_are_kept() -> None:
    signal = a_signal(
        source_id="panel-1\u200e",
        summary="حريق في الطابق \u061c3\u200f — שריפה",
        location=Location(address="\u200fشارع 12", site="Site\u200e"),
        payload={"note": "\u200e\u200f\u061c العنوان", "dash": "a — b ’c’"},
    )
    assert validate(signal, NOW) == signal


# -- blank: white space and invisible format characters say nothing ------------------------------


def raw_signal(**fields: str) -> dict[str, str]:
    """A signal as JSON would have it, for ``decode_one`` and ``decode_batch``."""
    base = {"source_kind": "equipment", "source_id": "p1", "type_code": "FIRE"}
    return base | {"occurred_at": NOW.isoformat()} | fields


INVISIBLE_ONLY = ["\u200b", "\u200c\u200d", " \u2060 ", "\ufeff", "\u00ad", "\u200b\u3000\u200b"]


@pytest.mark.parametrize("text", INVISIBLE_ONLY, ids=[repr(t) for t in INVISIBLE_ONLY])
@pytest.mark.parametrize("field", ["source_id", "type_code"])
def test_an_id_or_code_of_only_invisible_characters_is_refused_as_blank(
    text: str, field: str
) -> None:
    assert refusal(validate, a_signal(**{field: text}), NOW) == (field, "invalid_value")
    body = msgspec.json.encode(raw_signal(**{field: text}))
    assert refusal(decode_one, body, NOW) == (field, "invalid_value")


def test_is_blank_counts_white_space_and_invisible_format_characters_as_nothing() -> None:
    for text in ["", "   ", "\t\n", *INVISIBLE_ONLY, "\u2066\u2069", "\u3164\ufe0f"]:
        assert is_blank(text), repr(text)
    for text in ["a", " a ", "\u200ba", "火", "٣", "-", "\u200e1"]:
        assert not is_blank(text), repr(text)


# -- the signal's own type code is screened like every purpose -----------------------------------


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("PROTEST", "assembly.protest"),
        ("protest", "assembly.protest"),
        ("PR0TEST", "assembly.protest"),
        ("MOSQUE_ATTENDANCE", "belief.religion"),
        ("FACE-RECOGNITION", "special.biometric"),
    ],
)
def test_a_type_code_that_names_a_protected_purpose_is_refused_at_intake(
    code: str, rule: str
) -> None:
    with pytest.raises(ProtectedPurposeError) as err:
        validate(a_signal(type_code=code), NOW)
    assert err.value.code == "protected_purpose"
    assert err.value.field == "type_code"
    assert err.value.rule == rule
    body = msgspec.json.encode({"signals": [raw_signal(), raw_signal(type_code=code)]})
    with pytest.raises(ProtectedPurposeError) as batch:
        decode_batch(body, NOW)
    assert batch.value.field == "signals[1].type_code"


def shipped_type_codes() -> set[str]:
    """Every type code alarmdesk ships or makes itself: the taxonomy, the DC-09 code map and
    the raw codes it stores for unknown events, the Frigate labels and the CAP mapping."""
    data = files("alarmdesk") / "data"
    codes: set[str] = set()
    for name, column in (
        ("taxonomy.tsv", "code"),
        ("dc09_codes.tsv", "type_code"),
        ("frigate_labels.tsv", "type_code"),
        ("cap_mapping.tsv", "type_code"),
    ):
        rows = [
            row.split("\t")
            for row in (data / name).read_text("utf-8").splitlines()
            if row.strip() and not row.startswith("#")
        ]
        at = rows[0].index(column)
        codes |= {row[at].strip() for row in rows[1:] if len(row) > at and row[at].strip()}
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    codes |= {f"SIA{a}{b}" for a in letters for b in letters}  # unknown SIA codes
    codes |= {f"CID{n:03d}" for n in range(1000)}  # unknown Contact ID codes
    codes |= {"UNCLASS", "EQCOMM", "EQTRBL", "FIRE", "MEDICAL", "FIREWORKS", "FSMOKE"}
    return codes


def test_every_type_code_alarmdesk_ships_or_makes_passes_the_intake_screen() -> None:
    refused = {}
    for code in sorted(shipped_type_codes()):
        try:
            validate(a_signal(type_code=code[:32]), NOW)
        except ProtectedPurposeError as exc:
            refused[code] = exc.rule
    assert refused == {}
