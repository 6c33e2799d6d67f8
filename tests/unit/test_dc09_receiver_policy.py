"""What the DC-09 receiver answers and stores, frame by frame, without sockets.

The receiver's :meth:`~alarmdesk.intake.dc09.receiver.Dc09Receiver.handle` is driven directly
with a sink that keeps what it is given in memory (the writer and the sockets are tested in
tests/integration/test_dc09_receiver.py).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from alarmdesk.intake.dc09 import Frame, crc16_arc, parse_frame
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
