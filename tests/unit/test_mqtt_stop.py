"""Stopping MQTT intake while its session is failing ends it (intake/mqtt.py, ``run``).

A session runs its tasks in a TaskGroup. When one of them fails (a message not stored: the
session ends so that the broker resends it) and intake is stopped while the group waits for
the others to end, Python 3.11's TaskGroup raises the tasks' errors and the stop goes with
them: ``run`` took that for a failed session and reconnected for ever, and ``aclose`` waited
for ever. It hung a CI run (tests/integration/test_mqtt.py, the redelivery test). The stop is
read from ``stopping``, which the service sets before it cancels: the task's ``cancelling()``
can stay above 0 after a session that ended on its own (a broker restart), and reading it
ended intake for good (test_mqtt's broker-restart test).
"""

from __future__ import annotations

import asyncio
from collections import Counter

from alarmdesk.intake.mqtt import MqttIntake


def failing_intake() -> MqttIntake:
    """An intake whose every session fails as a store failure does: one task raises while
    another takes a moment to close (aiomqtt closing its connection). Only what ``run``
    uses is set; no broker is involved."""
    intake = object.__new__(MqttIntake)
    intake.stats = Counter()
    intake.ready = asyncio.Event()
    intake.reconnect_seconds = 0.01
    intake.stopping = False

    async def session() -> None:
        async def store_fails() -> None:
            await asyncio.sleep(0.01)
            raise RuntimeError("a message was not stored")

        async def closes_slowly() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                await asyncio.sleep(0.1)

        async with asyncio.TaskGroup() as group:
            group.create_task(store_fails())
            group.create_task(closes_slowly())
            await asyncio.sleep(3600)

    intake.session = session  # type: ignore[method-assign]
    return intake


async def test_a_failing_session_reconnects_until_intake_is_stopped() -> None:
    intake = failing_intake()
    task = asyncio.create_task(intake.run())
    await asyncio.sleep(0.4)
    assert not task.done() and intake.stats["disconnects"] >= 2  # reconnecting, as it should
    await asyncio.sleep(0.04)  # land the stop inside a failing session (most of its 0.11 s)
    intake.stopping = True  # as IntakeService.stop does, then it cancels
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    if not done:  # end it another way, or the test's loop would wait for it for ever
        intake.session = stop_for_good  # type: ignore[method-assign]
        await asyncio.wait({task}, timeout=2)
    assert done, "run() went on reconnecting after it was stopped"
    assert task.cancelled()


async def stop_for_good() -> None:
    raise asyncio.CancelledError  # not an Exception: run() lets it through
