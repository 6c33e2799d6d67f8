"""Device check-ins across nodes over real NATS (bus/checkins.py): what a standby's DC-09
receiver hears reaches the writer's supervisor, once per device and turn, and nothing is
heard before the writer listens or after it stops."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import nats

from alarmdesk.bus.checkins import CheckinRelay


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time"
        await asyncio.sleep(0.02)


async def test_a_standby_s_check_ins_reach_the_writer_s_supervisor(nats_url: str) -> None:
    subject = f"test-{uuid.uuid4().hex[:8]}.checkins"
    standby_nc, writer_nc = await nats.connect(nats_url), await nats.connect(nats_url)
    standby, writer = CheckinRelay(standby_nc, subject), CheckinRelay(writer_nc, subject)
    heard: list[str] = []
    try:
        standby.checkin("panel-early")  # nobody listens yet: gone, as core NATS is
        await asyncio.sleep(0.2)
        await writer.listen(heard.append)
        for device in ["panel-7A01", "panel-7A02", "panel-7A01", "cam:east.2"]:
            standby.checkin(device)  # within one turn: one message, each device once
        await until(lambda: len(heard) >= 3)
        await asyncio.sleep(0.2)
        assert sorted(heard) == ["cam:east.2", "panel-7A01", "panel-7A02"]
        writer.checkin("panel-7A03")  # the writer's own receiver goes the same way
        await until(lambda: "panel-7A03" in heard)
        await writer.stop_listening()
        standby.checkin("panel-late")
        await asyncio.sleep(0.3)
        assert "panel-late" not in heard and "panel-early" not in heard
    finally:
        await standby_nc.close()
        await writer_nc.close()


async def test_a_node_cut_off_from_nats_keeps_taking_frames(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    relay = CheckinRelay(nc, f"test-{uuid.uuid4().hex[:8]}.checkins")
    await nc.close()
    relay.checkin("panel-7A01")  # logged, never raised into the receiver
    await asyncio.sleep(0.1)
    assert not relay._tasks


async def test_a_check_in_sent_as_soon_as_the_writer_listens_reaches_it(nats_url: str) -> None:
    """listen() comes back once the server has read the subscription (bus/roundtrip.py): a
    check-in a standby sends right after is heard. With one flush() some rounds lost theirs
    (the panel would have looked silent to the supervisor)."""
    standby_nc, writer_nc = await nats.connect(nats_url), await nats.connect(nats_url)
    try:
        for round_ in range(1000):
            subject = f"test-{uuid.uuid4().hex[:8]}.checkins"
            standby, writer = CheckinRelay(standby_nc, subject), CheckinRelay(writer_nc, subject)
            heard: asyncio.Queue[str] = asyncio.Queue()
            await writer.listen(heard.put_nowait)
            standby.checkin(f"panel-{round_}")
            assert await asyncio.wait_for(heard.get(), 2) == f"panel-{round_}"
            await writer.stop_listening()
    finally:
        await standby_nc.close()
        await writer_nc.close()
