"""web/server.receive_by: a body's message within a deadline, with no timer when it is there."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop

from alarmdesk.web import server
from alarmdesk.web.server import receive_by

MESSAGE = {"type": "http.request", "body": b"{}", "more_body": False}


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    factory = asyncio.new_event_loop if request.param == "asyncio" else uvloop.new_event_loop

    def runner(main: Awaitable[Any]) -> Any:
        loop = factory()
        try:
            return loop.run_until_complete(main)
        finally:
            loop.close()

    return runner


def test_a_message_already_there_is_returned_without_arming_a_timer(run, monkeypatch) -> None:
    def no_timer(_when: float) -> Any:
        raise AssertionError("a timer was armed for a message already there")

    monkeypatch.setattr(server.asyncio, "timeout_at", no_timer)

    async def receive() -> dict[str, Any]:
        return MESSAGE

    async def main() -> Any:
        return await receive_by(receive, asyncio.get_running_loop().time() + 5)

    assert run(main()) == MESSAGE


def test_a_message_that_comes_later_is_returned(run) -> None:
    async def main() -> Any:
        loop = asyncio.get_running_loop()
        arrived = loop.create_future()
        event = asyncio.Event()

        async def receive() -> dict[str, Any]:  # waits twice, as a body in two parts may
            await arrived
            await event.wait()
            return {**MESSAGE, "body": arrived.result()}

        loop.call_later(0.01, arrived.set_result, b"late")
        loop.call_later(0.02, event.set)
        return await receive_by(receive, loop.time() + 5)

    assert run(main())["body"] == b"late"


def test_a_message_not_there_by_the_deadline_times_out_and_the_wait_is_ended(run) -> None:
    ended: list[str] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()

        async def receive() -> dict[str, Any]:
            try:
                await loop.create_future()  # never done
            except asyncio.CancelledError:
                ended.append("cancelled")
                raise
            return MESSAGE

        started = loop.time()
        with pytest.raises(TimeoutError):
            await receive_by(receive, started + 0.05)
        return loop.time() - started

    took = run(main())
    assert 0.04 <= took < 1.0
    assert ended == ["cancelled"]  # uvicorn's waiter is removed, as with a plain timeout


def test_a_cancelled_caller_is_cancelled_not_timed_out(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def receive() -> dict[str, Any]:
            await loop.create_future()
            return MESSAGE

        task = asyncio.ensure_future(receive_by(receive, loop.time() + 5))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())


def test_an_error_of_the_receive_after_waiting_is_raised(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gone = loop.create_future()

        async def receive() -> dict[str, Any]:
            await gone
            raise ConnectionResetError("the client went away")

        loop.call_later(0.01, gone.set_result, None)
        with pytest.raises(ConnectionResetError):
            await receive_by(receive, loop.time() + 5)

    run(main())


def test_an_awaitable_that_is_not_a_coroutine_is_awaited_under_the_deadline(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        ready.set_result(MESSAGE)
        assert await receive_by(lambda: ready, loop.time() + 5) == MESSAGE
        with pytest.raises(TimeoutError):
            await receive_by(lambda: loop.create_future(), loop.time() + 0.02)

    run(main())
