"""A standby's commands to the writer node over real NATS (bus/commands.py): the command
arrives as the standby built it, the answer or the very error comes back, and with no
writer the standby answers 503 at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import nats
import pytest

from alarmdesk.bus.commands import CommandRelay, WriterSide
from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import InvalidField, VersionConflict, WriterStopped
from alarmdesk.domain.signal import Receipt, SignalIn, SourceKind
from alarmdesk.safeguards.audit import Actor

ACTOR = Actor("user:7", "operator", "ab" * 8, "10.0.0.7")
AT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


async def test_commands_reach_the_writer_and_its_answers_and_errors_come_back(
    nats_url: str,
) -> None:
    subject = f"test-{uuid.uuid4().hex[:8]}.commands"
    standby_nc, writer_nc = await nats.connect(nats_url), await nats.connect(nats_url)
    standby, writer = CommandRelay(standby_nc, subject), CommandRelay(writer_nc, subject)
    got: list[tuple[object, Actor | None]] = []

    async def command(cmd: c.Command, actor: Actor | None) -> dict[str, Any]:
        got.append((cmd, actor))
        if isinstance(cmd, c.Close):
            raise VersionConflict("someone else acted first")
        if isinstance(cmd, c.Reclassify):
            raise InvalidField("no such type", field="type_code", code="unknown_type")
        return {"id": cmd.incident_id, "status": "acknowledged", "note": "<b>x</b>"}

    async def unit_report(report: c.UnitReport, actor: Actor | None) -> dict[str, Any]:
        got.append((report, actor))
        return {"id": report.unit_id, "status": report.status}

    async def signals(batch: Sequence[SignalIn], actor: Actor | None) -> list[Receipt]:
        got.append((list(batch), actor))
        return [Receipt(41, 9, s.idempotency_key or "k", AT) for s in batch]

    try:
        began = time.monotonic()
        with pytest.raises(WriterStopped):  # nobody writes: 503 at once, not after a timeout
            await standby.submit_command(c.Acknowledge(9, "user:7"), ACTOR)
        assert time.monotonic() - began < 2
        await writer.serve(WriterSide(lambda: True, command, unit_report, signals))
        dispatch = c.Dispatch(9, "user:7", 3, frozenset({"fire"}), ("E1",), ("E1", "E2"))
        view = await standby.submit_command(dispatch, ACTOR)
        assert view == {"id": 9, "status": "acknowledged", "note": "<b>x</b>"}
        assert got[-1] == (dispatch, ACTOR)  # the same command, desks and actor included
        with pytest.raises(VersionConflict) as conflict:
            await standby.submit_command(c.Close(9, "user:7", 4), ACTOR)
        assert (conflict.value.status, conflict.value.code) == (409, "version_conflict")
        with pytest.raises(InvalidField) as invalid:
            await standby.submit_command(c.Reclassify(9, "user:7", type_code="ZZZ"), ACTOR)
        assert (invalid.value.code, invalid.value.field) == ("unknown_type", "type_code")
        report = c.UnitReport("E1", "user:7", "on_scene", 52.1, 5.1)
        assert await standby.submit_unit_report(report, None) == {
            "id": "E1",
            "status": "on_scene",
        }
        call = SignalIn(
            source_kind=SourceKind.CALL,
            source_id="call-taker",
            type_code="ALRF",
            occurred_at=AT,
            summary="smoke from a window \u2014 caller on the line",
            idempotency_key="call-1",
        )
        (receipt,) = await standby.submit_signals([call], ACTOR)
        assert receipt == Receipt(41, 9, "call-1", AT)
        assert got[-1] == ([call], ACTOR)
        await writer.stop_serving()
        began = time.monotonic()
        with pytest.raises(WriterStopped):  # it stopped writing: the same at once
            await standby.submit_command(c.Acknowledge(9, "user:7"), ACTOR)
        assert time.monotonic() - began < 2
    finally:
        await standby_nc.close()
        await writer_nc.close()


async def test_a_writer_is_found_as_soon_as_it_serves_and_missed_as_soon_as_it_stops(
    nats_url: str,
) -> None:
    """serve() and stop_serving() come back only once the server has read the SUB or UNSUB:
    a standby asking right after finds the writer, or hears "nobody" at once (not a timeout).
    One flush() did not promise it (bus/roundtrip.py): about one round in a hundred failed."""
    standby_nc, writer_nc = await nats.connect(nats_url), await nats.connect(nats_url)

    async def command(cmd: c.Command, actor: Actor | None) -> dict[str, Any]:
        return {"id": cmd.incident_id}

    async def unused(*_: object) -> Any:
        raise AssertionError("only commands are sent")

    side = WriterSide(lambda: True, command, unused, unused)
    try:
        for round_ in range(1000):
            subject = f"test-{uuid.uuid4().hex[:8]}.commands"
            standby = CommandRelay(standby_nc, subject, timeout=2)
            writer = CommandRelay(writer_nc, subject, timeout=2)
            await writer.serve(side)
            view = await standby.submit_command(c.Acknowledge(round_, "user:7"), ACTOR)
            assert view == {"id": round_}, round_
            await writer.stop_serving()
            with pytest.raises(WriterStopped) as stopped:
                await standby.submit_command(c.Acknowledge(round_, "user:7"), ACTOR)
            assert stopped.value.message.startswith("no node writes now"), round_
    finally:
        await standby_nc.close()
        await writer_nc.close()
