"""Structured logs: context bound once appears on every line, as JSON off a terminal."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest
import structlog

from alarmdesk import logs


@pytest.fixture
def configured():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    logs.configure(json=True, stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
    logs.clear()
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_bound_context_is_on_every_line_from_either_kind_of_logger(configured):
    logs.bind(request_id="r-1", principal="user:7")
    logging.getLogger("alarmdesk.x").warning("plain %s", "stdlib")
    logs.get_logger("alarmdesk.y").info("structured", incident_id=4)
    a, b = lines(configured)
    assert a["event"] == "plain stdlib" and a["request_id"] == "r-1" and a["level"] == "warning"
    assert b["incident_id"] == 4 and b["principal"] == "user:7" and b["logger"] == "alarmdesk.y"
    assert a["timestamp"].endswith("Z")


def test_a_thread_starts_without_the_context_of_another(configured):
    logs.bind(request_id="r-2")
    seen: list[dict] = []

    def work() -> None:
        logs.bind(component="writer")
        logs.get_logger("alarmdesk.w").info("in thread")

    t = threading.Thread(target=work)
    t.start()
    t.join()
    seen = lines(configured)
    assert seen[0]["component"] == "writer" and "request_id" not in seen[0]


def test_an_exception_is_logged_with_its_traceback_as_one_json_line(configured):
    try:
        raise ZeroDivisionError("x")
    except ZeroDivisionError:
        logs.get_logger("alarmdesk.z").exception("failed", signals=3)
    (line,) = lines(configured)
    assert line["signals"] == 3 and "ZeroDivisionError" in line["exception"]
