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
def restored():
    """Puts the logging of the test run back afterwards (tests/conftest.py sets it)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logs.clear()
    structlog.reset_defaults()
    structlog.configure(**config)


@pytest.fixture
def configured(restored):
    stream = io.StringIO()
    logs.configure(json=True, stream=stream)
    return stream


def test_a_traceback_for_a_person_shows_no_locals(restored):
    """On a terminal an exception is drawn for a person, without its frames' locals: they
    hold what a signal held (a name, a callback number), which no log line carries."""
    stream = io.StringIO()
    logs.configure(json=False, stream=stream)

    # built at run time: the traceback shows the source lines, and they must not hold them
    def handle(caller: str) -> None:
        callback_number = " ".join(["+31", "6", "1234", "5678"])
        raise ZeroDivisionError(f"a defect ({len(caller + callback_number)})")

    try:
        handle(" ".join(["Ann", "Example"]))
    except ZeroDivisionError:
        logs.get_logger("alarmdesk.t").exception("failed")
    text = stream.getvalue()
    assert "ZeroDivisionError" in text and "a defect (26)" in text and "handle" in text
    assert "Ann Example" not in text and "1234 5678" not in text


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
