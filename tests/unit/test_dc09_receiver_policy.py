"""What the DC-09 receiver answers and stores, frame by frame, without sockets.

The receiver's :meth:`~alarmdesk.intake.dc09.receiver.Dc09Receiver.handle` is driven directly
with a sink that keeps what it is given in memory (the writer and the sockets are tested in
tests/integration/test_dc09_receiver.py).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alarmdesk.intake.dc09 import Frame, FrameBuffer, crc16_arc, parse_frame
from alarmdesk.intake.dc09.receiver import Dc09Receiver
from alarmdesk.intake.devices import DeviceRegistry, device_from_row

NOW = datetime(2026, 9, 25, 14, 12, 10, tzinfo=UTC)
DEVICES: list[dict[str, Any]] = [
    {
        "id": "panel-1234",
        "kind": "panel",
        "site": "Shop 1",
        "zones": {"1": "Front door"},
        "settings": {"account": "1234"},
    },
]


class MemorySink:
    def __init__(self) -> None:
        self.signals: list[Any] = []

    async def submit_signals(self, signals: Any) -> list[Any]:
        self.signals += signals
        return [None] * len(signals)


def receiver(sink: MemorySink, devices: list[dict[str, Any]] = DEVICES) -> Dc09Receiver:
    registry = DeviceRegistry([device_from_row(d) for d in devices])
    return Dc09Receiver(sink, registry, clock=lambda: NOW)


def wrap(body: bytes) -> bytes:
    """A frame around ``body`` with the right CRC and length, whatever the body holds."""
    return b"\n%04X%04X%s\r" % (crc16_arc(body), len(body), body)


def answer(rx: Dc09Receiver, raw: bytes) -> Frame | None:
    reply = asyncio.run(rx.handle(raw))
    return None if reply is None else parse_frame(reply)


# -- text that can never be stored ---------------------------------------------------------------


def test_a_nul_in_a_field_is_answered_duh_and_never_reaches_the_writer() -> None:
    sink = MemorySink()
    rx = receiver(sink)
    reply = answer(rx, wrap(b'"SIA-DCS"0001L0#1234[#1234|NBA1|Afront\x00door]'))
    assert reply is not None
    assert (reply.token, reply.seq, reply.account) == ("DUH", "0001", "1234")
    assert sink.signals == []
    assert rx.stats["rejected.invalid_value"] == 1


def test_a_control_character_in_the_header_is_still_a_nak() -> None:
    sink = MemorySink()
    rx = receiver(sink)
    reply = answer(rx, wrap(b'"SIA-DCS"0001L0\x07#1234[#1234|NBA1]'))
    assert reply is not None and reply.token == "NAK"
    assert sink.signals == []


# -- frames from the field -----------------------------------------------------------------------

CAPTURES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "dc09" / "field_captures.json").read_text("utf-8")
)


@pytest.mark.parametrize("capture", CAPTURES, ids=[c["name"] for c in CAPTURES])
def test_a_captured_panel_frame_is_acked_and_its_deviations_counted(capture) -> None:
    sink = MemorySink()
    rx = receiver(sink, devices=[])  # unknown accounts: stored and ACKed all the same
    raw = capture["frame"].encode("latin-1")
    reply = answer(rx, raw)
    assert reply is not None and reply.token == "ACK", capture["source_url"]
    assert reply.seq == parse_frame(raw).seq
    assert rx.deviations == {capture["account"]: Counter(capture["deviations"])}


def test_the_ack_of_an_empty_line_number_echoes_it_empty() -> None:
    rx = receiver(MemorySink())
    reply = asyncio.run(rx.handle(wrap(b'"SIA-DCS"0001L#1234[#1234|NBA1]')))
    assert reply is not None and b'"ACK"0001L#1234[]' in reply


def test_a_panel_that_sends_a_binary_crc_gets_its_ack_with_a_binary_crc() -> None:
    body = b'"ADM-CID"0002R1L1#1234[#1234|1602 00 000]'
    raw = b"\n" + crc16_arc(body).to_bytes(2, "big") + b"%04X" % len(body) + body + b"\r"
    reply = asyncio.run(receiver(MemorySink()).handle(raw))
    assert reply is not None
    ack = b'"ACK"0002R1L1#1234[]'
    assert reply == b"\n" + crc16_arc(ack).to_bytes(2, "big") + b"%04X" % len(ack) + ack + b"\r"


def test_a_binary_crc_holding_a_cr_or_lf_byte_is_still_one_frame() -> None:
    # Search a body whose CRC has a <CR> (0x0D) or <LF> (0x0A) byte, as panels will send.
    for zone in range(1000):
        body = b'"ADM-CID"0002R1L1#1234[#1234|1130 01 %03d]' % zone
        crc = crc16_arc(body).to_bytes(2, "big")
        if b"\r" in crc or b"\n" in crc:
            break
    else:
        pytest.fail("no such CRC among 1,000 bodies")
    raw = b"\n" + crc + b"%04X" % len(body) + body + b"\r"
    (frame,) = FrameBuffer().feed(raw)
    assert frame == raw
    assert parse_frame(raw).deviations == ("binary_crc",)


# -- x-data in Windows-1252 ------------------------------------------------------------------------


def test_x_data_is_read_as_windows_1252() -> None:
    sink = MemorySink()
    rx = receiver(sink)
    reply = answer(rx, wrap(b'"SIA-DCS"0001L0#1234[#1234|NBA1][RPo\x9ata \x80 \x96 K\xfcche]'))
    assert reply is not None and reply.token == "ACK"
    (signal,) = sink.signals
    assert signal.payload["extended"] == {"R": "Pošta € – Küche"}


def test_x_data_too_large_to_store_once_decoded_is_answered_duh() -> None:
    # 19 blocks of 199 euro signs fit one frame (1 byte each on the wire) but not a payload
    # (3 bytes each in UTF-8): no resend can change that.
    blocks = b"".join(b"[" + bytes([letter]) + b"\x80" * 199 + b"]" for letter in range(65, 84))
    sink = MemorySink()
    rx = receiver(sink)
    reply = answer(rx, wrap(b'"SIA-DCS"0001L0#1234[#1234|NBA1]' + blocks))
    assert reply is not None and reply.token == "DUH"
    assert sink.signals == []
    assert rx.stats["rejected.payload_too_large"] == 1


def test_an_x_data_byte_windows_1252_leaves_undefined_is_answered_duh() -> None:
    sink = MemorySink()
    reply = answer(receiver(sink), wrap(b'"SIA-DCS"0001L0#1234[#1234|NBA1][Rbad \x81]'))
    assert reply is not None and reply.token == "DUH"
    assert sink.signals == []
