"""The DC-09 codec against the fixture frames, the spec's examples and its edge cases."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import alarmdesk.intake.dc09 as dc09
from alarmdesk.intake.dc09 import (
    DEFAULT_WINDOW,
    AlarmEvent,
    BadCrc,
    BadLength,
    Dc09Error,
    DecryptFailed,
    Echo,
    EventKind,
    Frame,
    FrameBuffer,
    FrameTooLong,
    InvalidText,
    MalformedFrame,
    MissingTimestamp,
    StaleTimestamp,
    TimestampWindow,
    UnknownToken,
    Verdict,
    build_ack,
    build_duh,
    build_nak,
    check_frame_timestamp,
    check_timestamp,
    classify,
    crc16_arc,
    decrypt,
    decrypt_frame,
    encode_frame,
    encrypt,
    events_from_frame,
    format_timestamp,
    handle_frame,
    load_code_map,
    parse_code_map,
    parse_contact_id,
    parse_frame,
    parse_sia,
    parse_timestamp,
    reject,
    split_pad,
)

REPO_ROOT = Path(__file__).parents[2]
FIXTURE = REPO_ROOT / "tests" / "fixtures" / "dc09" / "frames.json"
CASES: list[dict] = json.loads(FIXTURE.read_text("utf-8"))
# The receiver clock for cases that need one but name no timestamp (the stale case): the
# fixture's own reference time, i.e. the newest timestamp it contains.
FIXTURE_NOW = max(datetime.fromisoformat(c["timestamp"]) for c in CASES if "timestamp" in c)
KEY = b"AAAAAAAAAAAAAAAA"
SPEC_BODY = b'"ADM-CID"9876R579BDFL789ABC#12345A[#12345A|1110 00 129]'


def case_clock(case: dict) -> datetime:
    return datetime.fromisoformat(case["timestamp"]) if "timestamp" in case else FIXTURE_NOW


def case_key(case: dict) -> bytes | None:
    return case["key_ascii"].encode("ascii") if "key_ascii" in case else None


def run_case(case: dict) -> list[dc09.Outcome]:
    """Feed the case's bytes as one TCP write and decide every frame, fixture clock and key."""
    now, key = case_clock(case), case_key(case)
    outcomes = []
    for item in FrameBuffer().feed(case["frame"].encode("latin-1")):
        if isinstance(item, Dc09Error):
            outcomes.append(reject(item, now))
        else:
            outcomes.append(handle_frame(item, now=now, key_for=lambda _account: key))
    return outcomes


def reply_token(reply: bytes | None) -> str | None:
    if reply is None:
        return None
    return parse_frame(reply).wire_token


def aes(key: bytes, plaintext: bytes, *, decrypting: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(bytes(16)))
    op = cipher.decryptor() if decrypting else cipher.encryptor()
    return op.update(plaintext) + op.finalize()


def wrap(body: bytes) -> bytes:
    return b"\n%04X%04X%s\r" % (crc16_arc(body), len(body), body)


def sealed_frame_bytes(header: str, plaintext: bytes, key: bytes = KEY) -> bytes:
    return wrap(f"{header}[".encode() + aes(key, plaintext).hex().upper().encode())


# ------------------------------------------------------------------------------ fixture


def check_accepted_case(case: dict, outcomes: list[dc09.Outcome]) -> None:
    [outcome] = outcomes
    assert outcome.verdict is Verdict.ACCEPTED, outcome.error
    frame = outcome.frame
    assert frame is not None
    assert frame.wire_token == case["token"]
    assert frame.seq == case["seq"]
    assert frame.receiver == case.get("receiver")
    assert frame.line == case.get("line")
    assert frame.account == case.get("account")
    if "timestamp" in case:
        assert frame.timestamp == datetime.fromisoformat(case["timestamp"])
    if "event" in case:
        [event] = events_from_frame(frame)
        for field, value in case["event"].items():
            assert getattr(event, field) == value, field
    expected_reply = "*ACK" if "*ACK" in case["expect"] else "ACK"
    ack = parse_frame(outcome.reply or b"", key=case_key(case))
    assert ack.wire_token == expected_reply
    assert ack.echo == frame.echo
    assert ack.data == ""


def check_nak_or_silence(outcomes: list[dc09.Outcome]) -> None:
    [outcome] = outcomes
    assert outcome.verdict is Verdict.REJECTED
    assert outcome.frame is None  # nothing stored
    assert reply_token(outcome.reply) in {"NAK", None}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_every_fixture_case_gives_its_documented_outcome(case):
    outcomes = run_case(case)
    expect = case["expect"]
    if expect.startswith("ACK"):
        check_accepted_case(case, outcomes)
    elif expect.startswith("two ACKs"):
        seqs = re.findall(r"\b\d{4}\b", expect)
        assert [o.verdict for o in outcomes] == [Verdict.ACCEPTED] * 2
        assert [parse_frame(o.reply or b"").seq for o in outcomes] == seqs
        assert [o.frame.seq for o in outcomes if o.frame] == seqs
    elif expect.startswith("NAK or no ACK"):
        check_nak_or_silence(outcomes)
    elif expect.startswith("NAK or DUH"):
        [outcome] = outcomes
        assert outcome.verdict is Verdict.REJECTED
        assert reply_token(outcome.reply) in {"NAK", "DUH"}
    elif expect.startswith("NAK carrying the receiver's time"):
        [outcome] = outcomes
        assert outcome.frame is None
        nak = parse_frame(outcome.reply or b"")
        assert nak.token == "NAK"
        assert nak.timestamp == case_clock(case)
    else:
        pytest.fail(f"fixture outcome not understood by this test: {expect!r}")


def test_fixture_frames_reencode_byte_for_byte_when_plaintext():
    for case in CASES:
        if case.get("expect", "").startswith("ACK") and "key_ascii" not in case:
            raw = case["frame"].encode("latin-1")
            assert encode_frame(parse_frame(raw)) == raw


def test_fixture_encrypted_part_is_pad_bar_data_bracket_and_timestamp():
    case = next(c for c in CASES if c.get("key_ascii") and c.get("timestamp"))
    sealed = parse_frame(case["frame"].encode())
    assert sealed.sealed
    assert sealed.ciphertext is not None
    plaintext = aes(KEY, bytes.fromhex(sealed.ciphertext), decrypting=True)
    pad, bar, rest = plaintext.partition(b"|")
    assert bar
    assert len(plaintext) % 16 == 0
    assert not set(pad) & set(b"[]|#")
    assert rest == b"#1111|Nri1/BA501]_14:12:04,09-25-2026"
    assert decrypt(sealed.ciphertext, KEY) == rest.decode()


def test_stale_fixture_frame_decrypts_and_is_refused_only_for_its_time():
    case = next(c for c in CASES if c["name"].startswith("stale timestamp"))
    frame = parse_frame(case["frame"].encode(), key=case_key(case))
    assert frame.timestamp == datetime(2020, 1, 1, 3, 0, 0, tzinfo=UTC)
    with pytest.raises(StaleTimestamp) as caught:
        check_frame_timestamp(frame, FIXTURE_NOW)
    assert caught.value.code == "stale_timestamp"
    check_frame_timestamp(frame, frame.timestamp)  # its own time: fine


def test_encrypted_fixture_frame_is_refused_a_minute_later():
    case = next(c for c in CASES if c.get("key_ascii") and c.get("timestamp"))
    later = case_clock(case) + timedelta(minutes=1)
    outcome = handle_frame(case["frame"].encode(), now=later, key_for=lambda _a: KEY)
    assert outcome.verdict is Verdict.REJECTED
    assert outcome.error is not None
    assert outcome.error.code == "stale_timestamp"
    assert parse_frame(outcome.reply or b"").timestamp == later


# --------------------------------------------------------------------------- CRC, length


def test_crc_of_the_spec_example_is_87cd_and_its_length_0037():
    assert crc16_arc(SPEC_BODY) == 0x87CD
    assert len(SPEC_BODY) == 0x0037
    assert wrap(SPEC_BODY) == b"\n87CD0037" + SPEC_BODY + b"\r"


def test_crc16_arc_matches_the_catalogue_check_value():
    assert crc16_arc(b"123456789") == 0xBB3D
    assert crc16_arc(b"") == 0


def test_encoder_writes_the_spec_example_exactly():
    frame = Frame(
        token="ADM-CID",
        seq="9876",
        receiver="579BDF",
        line="789ABC",
        account="12345A",
        data="#12345A|1110 00 129",
    )
    assert encode_frame(frame) == b"\n87CD0037" + SPEC_BODY + b"\r"


def test_a_wrong_crc_is_bad_crc():
    with pytest.raises(BadCrc) as caught:
        parse_frame(b"\n87CE0037" + SPEC_BODY + b"\r")
    assert caught.value.code == "bad_crc"


def test_a_wrong_length_is_bad_length():
    with pytest.raises(BadLength) as caught:
        parse_frame(b"\n87CD0036" + SPEC_BODY + b"\r")
    assert caught.value.code == "bad_length"


def test_lowercase_crc_and_length_digits_are_accepted():
    assert parse_frame(b"\n87cd0037" + SPEC_BODY + b"\r").seq == "9876"


def test_terminators_are_optional_for_parse_frame():
    assert parse_frame(b"87CD0037" + SPEC_BODY).account == "12345A"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n\r",
        b"\nHELLO WORLD\r",
        b"\n87CD",
        b"\n+87C0037" + SPEC_BODY + b"\r",
        wrap(b"ADM-CID 9876#1234[]"),
        wrap(b'"ADM-CID"9876#1234'),
        wrap(b'"ADM-CID"98#1234[]'),
        wrap(b'"ADM-CID"9876#12[]'),
        wrap(b'"ADM-CID"9876R1234567#123[]'),
        wrap(b'"SIA-DCS"0001L0#1234[#1234|NBA1'),
        wrap(b'"SIA-DCS"0001L0#1234[#1234|NBA1]x'),
        wrap(b'"SIA-DCS"0001L0#1234[#1234|NBA1]_25:00:00,01-01-2026'),
        wrap(b'"SIA-DCS"0001L0#1234[#1234|NBA1]_12:00:00,02-30-2026'),
        wrap(b'"SIA-DCS"0001L0\x07#1234[#1234|NBA1]'),
    ],
)
def test_frames_that_break_the_grammar_are_malformed(raw):
    with pytest.raises(MalformedFrame) as caught:
        parse_frame(raw)
    assert caught.value.code == "malformed_frame"


def test_a_control_character_in_a_block_is_invalid_text_that_keeps_the_header():
    with pytest.raises(InvalidText) as caught:
        parse_frame(wrap(b'"SIA-DCS"0001L0#1234[#12\x0734|NBA1]'))
    assert caught.value.code == "invalid_value"
    assert caught.value.echo == dc09.Echo(seq="0001", line="0", account="1234")


def test_an_oversize_frame_is_frame_too_long():
    with pytest.raises(FrameTooLong) as caught:
        parse_frame(b"\n" + b"0" * 5000 + b"\r")
    assert caught.value.code == "frame_too_long"


def test_an_unknown_token_keeps_the_header_for_a_duh():
    with pytest.raises(UnknownToken) as caught:
        parse_frame(wrap(b'"ADM-XYZ"0042R1L2#ABC123[#ABC123|1110 00 001]'))
    assert caught.value.code == "unknown_token"
    assert caught.value.echo == Echo(seq="0042", receiver="1", line="2", account="ABC123")
    duh = parse_frame(build_duh(caught.value.echo))
    assert (duh.token, duh.echo, duh.data) == ("DUH", caught.value.echo, "")


@pytest.mark.parametrize("token", [b"*NAK", b"*DUH", b"*FOO", b""])
def test_tokens_that_cannot_be_encrypted_or_do_not_exist_are_unknown(token):
    with pytest.raises(UnknownToken):
        parse_frame(wrap(b'"' + token + b'"0001L0#123[]'))


def test_optional_header_fields_and_extended_blocks_are_read():
    raw = wrap(b'"SIA-DCS"0001#1234[#1234|NBA1][X12.5][Y-3.1]_00:00:00,01-01-2026')
    frame = parse_frame(raw)
    assert (frame.receiver, frame.line) == (None, None)
    assert frame.extended == ("X12.5", "Y-3.1")
    assert frame.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert encode_frame(frame) == raw


# ---------------------------------------------------------------------------- FrameBuffer


def test_frame_buffer_splits_two_frames_in_one_write():
    case = next(c for c in CASES if c["name"].startswith("two frames"))
    items = FrameBuffer().feed(case["frame"].encode())
    assert [parse_frame(i).seq for i in items if isinstance(i, bytes)] == ["0004", "0005"]
    assert len(items) == 2


def test_frame_buffer_joins_a_frame_split_at_every_possible_point():
    raw = b"\n87CD0037" + SPEC_BODY + b"\r"
    for cut in range(len(raw) + 1):
        buffer = FrameBuffer()
        assert buffer.feed(raw[:cut]) == ([raw] if cut == len(raw) else [])
        assert buffer.feed(raw[cut:]) == ([] if cut == len(raw) else [raw])
        assert buffer.pending == 0


def test_frame_buffer_reads_a_stream_fed_one_byte_at_a_time():
    case = next(c for c in CASES if c["name"].startswith("two frames"))
    raw = case["frame"].encode()
    buffer = FrameBuffer()
    items = [item for i in range(len(raw)) for item in buffer.feed(raw[i : i + 1])]
    assert items == [raw[: raw.index(b"\r") + 1], raw[raw.index(b"\r") + 1 :]]


def test_frame_buffer_discards_garbage_between_frames_and_counts_it():
    raw = b"\n87CD0037" + SPEC_BODY + b"\r"
    buffer = FrameBuffer()
    assert buffer.feed(b"noise\r" + raw + b"more noise" + raw + b"\r\r") == [raw, raw]
    assert buffer.discarded == len(b"noise\r") + len(b"more noise") + 2


def test_frame_buffer_resynchronises_on_a_new_lf_inside_a_truncated_frame():
    raw = b"\n87CD0037" + SPEC_BODY + b"\r"
    assert FrameBuffer().feed(b'\n87CD0037"ADM-CID"98' + raw) == [raw]


def test_frame_buffer_tolerates_cr_lf_line_endings():
    raw = b"\n87CD0037" + SPEC_BODY + b"\r"
    assert FrameBuffer().feed(raw + b"\n" + raw + b"\n") == [raw, raw]


def test_frame_buffer_reports_an_unterminated_frame_once_and_then_resyncs():
    raw = b"\n87CD0037" + SPEC_BODY + b"\r"
    buffer = FrameBuffer(max_frame=200)
    first = buffer.feed(b"\n" + b"x" * 150)
    second = buffer.feed(b"x" * 150)
    third = buffer.feed(b"x" * 500 + b"\r" + raw)
    assert first == []
    assert len(second) == 1
    assert isinstance(second[0], FrameTooLong)
    assert second[0].code == "frame_too_long"
    assert third == [raw]
    assert buffer.pending == 0


def test_frame_buffer_rejects_a_complete_frame_over_the_limit_and_keeps_the_next():
    raw = b"\n87CD0037" + SPEC_BODY + b"\r"
    items = FrameBuffer(max_frame=100).feed(b"\n" + b"y" * 200 + b"\r" + raw)
    assert isinstance(items[0], FrameTooLong)
    assert items[1:] == [raw]


def test_frame_buffer_never_holds_more_than_its_limit():
    buffer = FrameBuffer(max_frame=64)
    for _ in range(100):
        buffer.feed(b"\n" + b"z" * 50)
        assert buffer.pending <= 64


# ---------------------------------------------------------------------------- timestamps


def test_timestamps_format_and_parse_in_utc():
    ts = datetime(2026, 9, 25, 16, 12, 4, tzinfo=timezone_plus(2))
    assert format_timestamp(ts) == "14:12:04,09-25-2026"
    assert parse_timestamp("14:12:04,09-25-2026") == ts


def timezone_plus(hours: int):
    from datetime import timezone

    return timezone(timedelta(hours=hours))


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (20, True), (21, False), (-40, True), (-41, False), (3600, False)],
)
def test_the_default_window_is_twenty_seconds_ahead_and_forty_behind(offset, accepted):
    now = FIXTURE_NOW
    ts = now + timedelta(seconds=offset)
    if accepted:
        check_timestamp(ts, now)
    else:
        with pytest.raises(StaleTimestamp):
            check_timestamp(ts, now)


def test_the_window_is_configurable_and_can_be_turned_off():
    now = FIXTURE_NOW
    ts = now - timedelta(minutes=5)
    check_timestamp(ts, now, TimestampWindow(behind=timedelta(minutes=10)))
    check_timestamp(ts, now, None)
    with pytest.raises(StaleTimestamp):
        check_timestamp(ts, now, DEFAULT_WINDOW)


def test_naive_clocks_are_refused():
    with pytest.raises(ValueError, match="aware"):
        check_timestamp(FIXTURE_NOW, datetime(2026, 1, 1))


def test_plaintext_frames_are_not_held_to_the_window_unless_asked():
    frame = Frame(token="NULL", seq="0000", line="0", account="7890", timestamp=FIXTURE_NOW)
    later = FIXTURE_NOW + timedelta(hours=1)
    check_frame_timestamp(frame, later)
    with pytest.raises(StaleTimestamp) as caught:
        check_frame_timestamp(frame, later, check_plain=True)
    assert caught.value.echo == frame.echo


# ---------------------------------------------------------------------------- encryption


@pytest.mark.parametrize("key_size", [16, 24, 32])
def test_encrypted_frames_round_trip_with_every_aes_key_size(key_size):
    key = bytes(range(key_size))
    frame = Frame(
        token="ADM-CID",
        seq="0001",
        line="1",
        account="ABC",
        data="#ABC|1602 00 000",
        timestamp=FIXTURE_NOW,
        encrypted=True,
    )
    raw = encode_frame(frame, key=key)
    assert raw.startswith(b"\n") and b'"*ADM-CID"0001L1#ABC[' in raw
    assert parse_frame(raw, key=key) == frame
    assert decrypt_frame(parse_frame(raw), key) == frame


def test_an_encrypted_frame_without_key_comes_back_sealed():
    case = next(c for c in CASES if c.get("key_ascii") and c.get("timestamp"))
    frame = parse_frame(case["frame"].encode())
    assert frame.sealed and frame.encrypted
    assert (frame.account, frame.data, frame.timestamp) == ("1111", "", None)
    assert encode_frame(frame) == case["frame"].encode()


def test_a_wrong_key_is_decrypt_failed():
    case = next(c for c in CASES if c.get("key_ascii") and c.get("timestamp"))
    with pytest.raises(DecryptFailed) as caught:
        parse_frame(case["frame"].encode(), key=b"B" * 16)
    assert caught.value.code == "decrypt_failed"
    assert caught.value.echo == Echo(seq="0007", line="0", account="1111")


@pytest.mark.parametrize("tail", ["XYZ", "ABCD", "00" * 15])
def test_ciphertext_that_is_not_whole_hex_blocks_is_decrypt_failed(tail):
    with pytest.raises(DecryptFailed):
        parse_frame(wrap(f'"*SIA-DCS"0001L0#1234[{tail}'.encode()))


def test_an_encrypted_frame_without_timestamp_is_missing_timestamp():
    raw = sealed_frame_bytes('"*SIA-DCS"0001L0#1234', b"abcde|#1234|NBA]")
    with pytest.raises(MissingTimestamp) as caught:
        parse_frame(raw, key=KEY)
    assert caught.value.code == "missing_timestamp"


def test_a_panel_that_omits_the_bar_after_the_pad_is_still_understood():
    content = b"#1111|Nri1/BA501]_14:12:04,09-25-2026"
    raw = sealed_frame_bytes('"*SIA-DCS"0009L0#1111', b"Q" * 11 + content)
    frame = parse_frame(raw, key=KEY)
    assert frame.data == "#1111|Nri1/BA501"
    assert frame.timestamp == FIXTURE_NOW


def test_a_null_without_bar_after_the_pad_has_empty_data():
    raw = sealed_frame_bytes('"*NULL"0010L0#1111', b"Q" * 11 + b"]_14:12:04,09-25-2026")
    frame = parse_frame(raw, key=KEY)
    assert (frame.token, frame.data, frame.timestamp) == ("NULL", "", FIXTURE_NOW)


@pytest.mark.parametrize(
    ("plaintext", "content"),
    [
        (b"pad|#1|N]", b"#1|N]"),  # standard
        (b"p#d|#1|N]", b"#1|N]"),  # "#" in the pad, bar present, data starts with "#"
        (b"p#d|]_t", b"]_t"),  # "#" in the pad, empty data
        (b"pad|NRR]", b"NRR]"),  # data without account: the bar still ends the pad
        (b"pad#1|NRR]", b"#1|NRR]"),  # bar missing: data starts at "#"
        (b"pad]_t", b"]_t"),  # bar missing, empty data
        (b"|#1|N]", b"#1|N]"),  # empty pad
        (b"no bracket at all", None),
    ],
)
def test_split_pad_follows_its_documented_rule(plaintext, content):
    assert split_pad(plaintext) == content


def test_our_pad_is_random_letters_and_digits_making_whole_blocks():
    for length in range(40):
        content = "x" * length
        plaintext = aes(KEY, bytes.fromhex(encrypt(content, KEY)), decrypting=True)
        pad, _, rest = plaintext.partition(b"|")
        assert rest == content.encode()
        assert 1 <= len(pad) <= 16
        assert pad.isalnum()


def test_a_supplied_pad_must_make_whole_blocks_and_avoid_separators():
    with pytest.raises(ValueError, match="pad"):
        encrypt("]", KEY, pad=b"abc")
    with pytest.raises(ValueError, match="pad"):
        encrypt("]", KEY, pad=b"abcdefghijkl|]")
    assert len(encrypt("]", KEY, pad=b"abcdefghijklmn")) == 32


@pytest.mark.parametrize("size", [0, 8, 15, 17, 33])
def test_keys_that_are_not_aes_sizes_are_programming_errors(size):
    with pytest.raises(ValueError, match="AES"):
        encrypt("]", bytes(size))


def test_encoding_an_encrypted_frame_needs_its_key():
    frame = Frame(token="NULL", seq="0001", timestamp=FIXTURE_NOW, encrypted=True)
    with pytest.raises(ValueError, match="key"):
        encode_frame(frame)


# ----------------------------------------------------------------------------- responses


def test_ack_echoes_seq_receiver_line_and_account_with_empty_data():
    frame = parse_frame(b"\n87CD0037" + SPEC_BODY + b"\r")
    assert build_ack(frame) == wrap(b'"ACK"9876R579BDFL789ABC#12345A[]')


def test_ack_of_an_encrypted_frame_is_an_encrypted_ack_with_receiver_time():
    case = next(c for c in CASES if c.get("key_ascii") and c.get("timestamp"))
    frame = parse_frame(case["frame"].encode(), key=KEY)
    now = FIXTURE_NOW + timedelta(seconds=3, microseconds=250)
    raw = build_ack(frame, now=now, key=KEY, pad=b"0123456789")
    assert raw.startswith(b"\n") and b'"*ACK"0007L0#1111[' in raw
    ciphertext = raw[raw.index(b"[") + 1 : -1]
    plaintext = aes(KEY, bytes.fromhex(ciphertext.decode()), decrypting=True)
    assert plaintext == b"0123456789|]_14:12:07,09-25-2026"
    ack = parse_frame(raw, key=KEY)
    assert (ack.wire_token, ack.echo, ack.data) == ("*ACK", frame.echo, "")


def test_ack_of_an_encrypted_frame_needs_clock_and_key():
    frame = Frame(token="NULL", seq="0001", timestamp=FIXTURE_NOW, encrypted=True)
    with pytest.raises(ValueError, match="now and key"):
        build_ack(frame, key=KEY)


def test_nak_is_the_spec_literal_with_receiver_time():
    raw = build_nak(FIXTURE_NOW)
    assert raw == wrap(b'"NAK"0000R0L0A0[]_14:12:04,09-25-2026')
    nak = parse_frame(raw)
    assert (nak.token, nak.seq, nak.receiver, nak.line, nak.account) == (
        "NAK",
        "0000",
        "0",
        "0",
        "0",
    )
    assert nak.timestamp == FIXTURE_NOW


def test_duh_without_optional_fields_leaves_them_out():
    assert build_duh(Echo(seq="0003")) == wrap(b'"DUH"0003[]')


# ------------------------------------------------------------------------------ handling


def test_responses_from_the_peer_are_ignored_not_answered():
    outcome = handle_frame(build_nak(FIXTURE_NOW), now=FIXTURE_NOW)
    assert (outcome.verdict, outcome.reply) == (Verdict.IGNORED, None)


def test_an_unknown_token_gets_a_duh():
    raw = wrap(b'"ADM-XYZ"0042R1L2#ABC123[]')
    outcome = handle_frame(raw, now=FIXTURE_NOW)
    assert outcome.error is not None and outcome.error.code == "unknown_token"
    assert outcome.reply == wrap(b'"DUH"0042R1L2#ABC123[]')


def test_an_encrypted_frame_from_an_account_without_key_gets_a_nak():
    case = next(c for c in CASES if c.get("key_ascii") and c.get("timestamp"))
    outcome = handle_frame(case["frame"].encode(), now=FIXTURE_NOW)
    assert outcome.error is not None and outcome.error.code == "decrypt_failed"
    assert reply_token(outcome.reply) == "NAK"


def test_plaintext_from_an_account_with_a_key_is_refused_with_duh():
    raw = wrap(b'"SIA-DCS"0001L0#1111[#1111|NBA1]')
    outcome = handle_frame(raw, now=FIXTURE_NOW, key_for=lambda _a: KEY)
    assert outcome.error is not None and outcome.error.code == "encryption_required"
    assert reply_token(outcome.reply) == "DUH"
    allowed = handle_frame(raw, now=FIXTURE_NOW, key_for=lambda _a: KEY, require_encryption=False)
    assert allowed.verdict is Verdict.ACCEPTED


# -------------------------------------------------------------------------------- events


def test_contact_id_is_read_with_or_without_spaces_and_letter_qualifiers():
    for data in ["#12345A|1110 00 129", "#12345A|111000129", "E110 00 129"]:
        event = parse_contact_id(data)
        assert (event.qualifier, event.code, event.partition, event.zone) == (
            "1",
            "110",
            "00",
            "129",
        )
        assert event.complete and not event.restore
    assert parse_contact_id("R130 01 015").restore


def test_unreadable_contact_id_keeps_the_raw_text():
    event = parse_contact_id("#1234|9999 garbage")
    assert (event.code, event.raw, event.complete, event.account) == (
        None,
        "#1234|9999 garbage",
        False,
        "1234",
    )


def test_sia_blocks_carry_modifiers_forward_and_give_one_event_per_code():
    events = parse_sia("#1234|Nti10:22/id3/ri2/OP/BA501/ri3BA7|Afront door")
    assert [(e.code, e.zone, e.partition, e.user, e.time) for e in events] == [
        ("OP", None, "2", "3", "10:22"),
        ("BA", "501", "2", "3", "10:22"),
        ("BA", "7", "3", "3", "10:22"),
    ]
    assert all(e.text == "front door" and e.complete for e in events)


def test_sia_without_the_new_marker_or_account_is_still_read():
    [event] = parse_sia("NT01")
    assert (event.code, event.zone) == ("NT", "01")


def test_unreadable_sia_keeps_the_raw_text():
    [event] = parse_sia("#1234|N???")
    assert (event.code, event.raw, event.complete) == (None, "#1234|N???", False)
    partly = parse_sia("#1234|NBA1/??")
    assert [(e.code, e.complete) for e in partly] == [("BA", False)]


def test_null_and_empty_frames_carry_no_events():
    assert events_from_frame(Frame(token="NULL", seq="0000")) == ()
    assert events_from_frame(Frame(token="SIA-DCS", seq="0000")) == ()


# ------------------------------------------------------------------------------ code map

CODE_MAP = load_code_map()


@pytest.mark.parametrize(
    ("protocol", "code", "type_code", "kind"),
    [
        ("cid", "110", "ALRF", "alarm"),
        ("cid", "119", "ALRF", "alarm"),
        ("cid", "113", "ALRWTR", "alarm"),
        ("cid", "114", "ALRHEAT", "alarm"),
        ("cid", "115", "ALRPULL", "alarm"),
        ("cid", "162", "ALRCO", "alarm"),
        ("cid", "151", "ALRGAS", "alarm"),
        ("cid", "130", "ALRBS", "alarm"),
        ("cid", "137", "EQTAMP", "alarm"),
        ("cid", "121", "ALRPANS", "alarm"),
        ("cid", "122", "ALRPANS", "alarm"),
        ("cid", "123", "ALRPANA", "alarm"),
        ("cid", "129", "ALRROBS", "alarm"),
        ("cid", "100", "ALRMED", "alarm"),
        ("cid", "301", "EQTRBL", "trouble"),
        ("cid", "399", "EQTRBL", "trouble"),
        ("cid", "401", None, "open_close"),
        ("cid", "499", None, "open_close"),
        ("cid", "601", "EQTEST", "test"),
        ("cid", "602", "EQTEST", "test"),
        ("sia", "FA", "ALRF", "alarm"),
        ("sia", "BA", "ALRBS", "alarm"),
        ("sia", "PA", "ALRPANS", "alarm"),
        ("sia", "MA", "ALRMED", "alarm"),
        ("sia", "YT", "EQTRBL", "trouble"),
        ("sia", "AT", "EQTRBL", "trouble"),
        ("sia", "YP", "EQTRBL", "trouble"),
        ("sia", "OP", None, "open_close"),
        ("sia", "CL", None, "open_close"),
        ("sia", "RP", "EQTEST", "test"),
        ("sia", "RX", "EQTEST", "test"),
    ],
)
def test_the_packaged_code_map_maps_the_agreed_codes(protocol, code, type_code, kind):
    entry = CODE_MAP.lookup(protocol, code)
    assert entry is not None
    assert (entry.type_code, entry.kind) == (type_code, kind)


def test_classify_turns_a_contact_id_restore_into_a_restore_of_the_same_type():
    event = parse_contact_id("#5555|3130 01 015")
    assert classify(event, CODE_MAP) == ("ALRBS", EventKind.RESTORE, True)


def test_classify_reads_qualifier_three_on_open_close_as_a_closing():
    event = parse_contact_id("#5555|3401 01 003")
    assert classify(event, CODE_MAP) == (None, EventKind.OPEN_CLOSE, False)


def test_classify_knows_sia_restore_codes():
    [event] = parse_sia("#1|NBR12")
    assert classify(event, CODE_MAP) == ("ALRBS", EventKind.RESTORE, True)


def test_classify_surfaces_unknown_and_unreadable_codes_as_alarms_without_type():
    [unknown] = parse_sia("#1|NZZ1")
    assert classify(unknown, CODE_MAP) == (None, EventKind.ALARM, False)
    unreadable = parse_contact_id("nonsense")
    assert classify(unreadable, CODE_MAP) == (None, EventKind.ALARM, False)
    restore = AlarmEvent(protocol="cid", code="999", raw="", qualifier="3", restore=True)
    assert classify(restore, CODE_MAP) == (None, EventKind.RESTORE, True)


def test_exact_codes_win_over_ranges_and_narrow_ranges_over_wide():
    text = (
        "protocol\tcode\ttype_code\tkind\tdescription\n"
        "cid\t100-199\tWIDE\talarm\tw\n"
        "cid\t110-119\tNARROW\talarm\tn\n"
        "cid\t113\tEXACT\talarm\te\n"
    )
    code_map = parse_code_map(text)
    assert [code_map.lookup("cid", c).type_code for c in ("113", "114", "150")] == [
        "EXACT",
        "NARROW",
        "WIDE",
    ]
    assert code_map.lookup("cid", "200") is None


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("cid\t110\tALRF\tpanic\tx", "kind"),
        ("cid\tFA\tALRF\talarm\tx", "code"),
        ("sia\t110\tALRF\talarm\tx", "code"),
        ("cid\t119-110\tALRF\talarm\tx", "backwards"),
        ("cid\t110\tALRF\talarm", "columns"),
        ("cid\t110\talrf\talarm\tx", "type_code"),
        ("cid\t110\tALRF\talarm\tfirst\ncid\t110\tALRF\talarm\tagain", "duplicate"),
    ],
)
def test_malformed_code_map_rows_are_refused_with_their_line(row, problem):
    with pytest.raises(ValueError, match=rf"line \d+: .*{problem}"):
        parse_code_map("protocol\tcode\ttype_code\tkind\tdescription\n" + row + "\n")


def test_a_code_map_needs_its_header():
    with pytest.raises(ValueError, match="header"):
        parse_code_map("cid\t110\tALRF\talarm\tx\n")


# -------------------------------------------------------------------------- public surface


def test_the_public_surface_is_complete_and_importable():
    for name in dc09.__all__:
        assert hasattr(dc09, name), name
    public = {n for n in vars(dc09) if not n.startswith("_")} - {
        "codec",
        "crypto",
        "errors",
        "events",
    }
    public -= {"timestamps"}  # a submodule, like codec
    # receiver (and its records) and transport: imported by intake, not re-exported
    public -= {"handling", "model", "receiver", "records", "transport"}
    assert public == set(dc09.__all__)


def test_every_error_has_a_stable_machine_code():
    codes = {cls.code for cls in Dc09Error.__subclasses__()}
    assert codes == {
        "bad_crc",
        "bad_length",
        "malformed_frame",
        "unknown_token",
        "decrypt_failed",
        "stale_timestamp",
        "missing_timestamp",
        "frame_too_long",
        "encryption_required",
        "invalid_value",
    }
