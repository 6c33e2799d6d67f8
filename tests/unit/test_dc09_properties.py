"""Properties of the DC-09 codec: what the encoder writes the parser reads back, and no input
makes the parser or the stream splitter raise anything but a Dc09Error."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from alarmdesk.intake.dc09 import (
    ENCRYPTABLE_TOKENS,
    KNOWN_TOKENS,
    MAX_FRAME_BYTES,
    Dc09Error,
    Frame,
    FrameBuffer,
    check_frame_timestamp,
    crc16_arc,
    decrypt_frame,
    encode_frame,
    events_from_frame,
    handle_frame,
    parse_contact_id,
    parse_frame,
    parse_sia,
)

HEX = "0123456789ABCDEFabcdef"
RESPONSES = ("ACK", "NAK", "DUH")
NOW = datetime(2026, 9, 25, 14, 12, 4, tzinfo=UTC)
# Latin-1 text allowed inside [...]: printable, no brackets.
BLOCK_CHARS = st.characters(
    codec="latin-1", exclude_categories=("Cc",), exclude_characters="[]\x7f"
)
# Extended data (x-data) is Windows-1252: the euro sign, dashes, š, ž, Œ... as well.
EXT_CHARS = st.characters(codec="cp1252", exclude_categories=("Cc",), exclude_characters="[]")


def hex_text(low: int, high: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=HEX, min_size=low, max_size=high)


timestamps = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.just(UTC),
).map(lambda ts: ts.replace(microsecond=0))
keys = st.sampled_from([16, 24, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))


@st.composite
def frames(draw: st.DrawFn, encrypted: bool | None = None) -> Frame:
    """Any frame the codec can write; encrypted ones always carry a timestamp."""
    tokens = sorted(ENCRYPTABLE_TOKENS if encrypted else KNOWN_TOKENS)
    token = draw(st.sampled_from(tokens))
    if encrypted is None:
        encrypted = token in ENCRYPTABLE_TOKENS and draw(st.booleans())
    nak = token == "NAK"
    return Frame(
        token=token,
        seq=draw(st.text(alphabet="0123456789", min_size=4, max_size=4)),
        # An empty R or L ("L#1234") is a deviation we read, and so write back in an ACK.
        receiver=draw(st.none() | hex_text(0 if not nak else 1, 6)),
        line=draw(st.none() | hex_text(0 if not nak else 1, 6)),
        account=draw(hex_text(1, 16) if nak else st.none() | hex_text(3, 16)),
        data=draw(st.text(BLOCK_CHARS, max_size=300)),
        extended=tuple(draw(st.lists(st.text(EXT_CHARS, max_size=60), max_size=4))),
        timestamp=draw(timestamps if encrypted else st.none() | timestamps),
        encrypted=encrypted,
    )


@given(frames(encrypted=False))
def test_every_plaintext_frame_the_encoder_writes_the_parser_reads_back(frame):
    raw = encode_frame(frame)
    assert parse_frame(raw) == frame
    assert encode_frame(parse_frame(raw)) == raw


@given(frames(encrypted=True), keys)
def test_every_encrypted_frame_the_encoder_writes_the_parser_reads_back(frame, key):
    raw = encode_frame(frame, key=key)
    assert len(raw) <= MAX_FRAME_BYTES
    assert parse_frame(raw, key=key) == frame
    sealed = parse_frame(raw)
    assert sealed.sealed and sealed.echo == frame.echo
    assert decrypt_frame(sealed, key) == frame


@settings(deadline=None)  # up to ~7,000 parses per example: slow machines must not flake
@given(frames(), keys)
def test_a_single_corrupted_byte_is_never_read_as_a_different_frame(frame, key):
    raw = encode_frame(frame, key=key)
    for index in range(len(raw)):
        for flip in (0x01, 0x20, 0x80):
            corrupted = bytearray(raw)
            corrupted[index] ^= flip
            try:
                parsed = parse_frame(bytes(corrupted), key=key)
            except Dc09Error:
                continue
            assert parsed == frame  # only harmless changes (hex digit case) get through


@given(st.lists(frames(), min_size=1, max_size=5), st.data())
def test_frame_buffer_returns_every_frame_whatever_the_chunking_and_garbage(frame_list, data):
    raws = [encode_frame(f, key=bytes(16)) for f in frame_list]
    garbage = st.binary(max_size=20).map(lambda b: b.replace(b"\n", b""))
    stream = b"".join(data.draw(garbage) + raw for raw in raws) + data.draw(garbage)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    buffer = FrameBuffer()
    items = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        items.extend(buffer.feed(stream[start:end]))
    assert items == raws


@given(st.binary(max_size=600))
def test_random_bytes_make_parse_frame_raise_only_dc09_errors(raw):
    with contextlib.suppress(Dc09Error):
        parse_frame(raw)


# Bytes that mean something to the grammar, so random bodies reach past the first check.
GRAMMAR_BYTES = st.lists(
    st.sampled_from([*b'"*[]_#|RLA:,-/ 0123456789ABCDEFNri', 0x80, 0xFF]), max_size=120
).map(bytes)


@given(st.binary(max_size=400) | GRAMMAR_BYTES, st.sampled_from(sorted(KNOWN_TOKENS)), keys)
def test_random_bodies_with_a_valid_crc_raise_only_dc09_errors(body, token, key):
    prefixes = (b"", f'"{token}"'.encode(), f'"{token}"0001L0#123['.encode())
    for candidate in (prefix + body for prefix in prefixes):
        raw = b"\n%04X%04X%s\r" % (crc16_arc(candidate), len(candidate), candidate)
        try:
            frame = parse_frame(raw, key=key)
            check_frame_timestamp(frame, NOW)
            events_from_frame(frame)
        except Dc09Error:
            pass


@given(
    st.sampled_from(sorted(ENCRYPTABLE_TOKENS)),
    st.binary(min_size=16, max_size=96).map(lambda b: b[: len(b) // 16 * 16]),
    keys,
)
def test_random_ciphertext_raises_only_dc09_errors(token, ciphertext, key):
    body = f'"*{token}"0001L0#123['.encode() + ciphertext.hex().upper().encode()
    raw = b"\n%04X%04X%s\r" % (crc16_arc(body), len(body), body)
    with contextlib.suppress(Dc09Error):
        parse_frame(raw, key=key)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_bytes_never_break_the_frame_buffer(chunks):
    buffer = FrameBuffer(max_frame=256)
    for chunk in chunks:
        for item in buffer.feed(chunk):
            assert isinstance(item, bytes | Dc09Error)
            if isinstance(item, bytes):
                assert item.startswith(b"\n") and item.endswith(b"\r")
                assert len(item) <= 256
                handle_frame(item, now=NOW)  # turns every Dc09Error into an outcome
        assert buffer.pending <= 256


@given(st.text(max_size=200))
def test_event_parsers_never_raise_and_always_keep_the_raw_text(text):
    assert parse_contact_id(text).raw == text
    assert all(event.raw == text for event in parse_sia(text))


@given(frames())
def test_frames_that_parse_carry_no_deviation_the_encoder_made(frame):
    deviations = parse_frame(encode_frame(frame, key=bytes(16))).deviations
    assert "binary_crc" not in deviations
    assert ("empty_line" in deviations) == (frame.line == "" and frame.token not in RESPONSES)
