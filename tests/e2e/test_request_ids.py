"""Every request has an id: the caller's X-Request-ID when it is a plain token, else a new one;
it is echoed in the response and bound to every log line the request writes."""

from __future__ import annotations

import httpx
import structlog

from alarmdesk import logs


def test_a_request_id_is_echoed_and_a_bad_one_replaced(live_server) -> None:
    with live_server.client("operator") as op:
        given = op.get("/api/v1/desks", headers={"X-Request-ID": "lb-7f3a.2"})
        assert given.headers["x-request-id"] == "lb-7f3a.2"
        planted = op.get("/api/v1/desks", headers={"X-Request-ID": "<script>"})
        assert planted.headers["x-request-id"] != "<script>"
        assert len(planted.headers["x-request-id"]) == 16
    anonymous = httpx.get(live_server.url + "/api/v1/incidents")
    assert anonymous.status_code == 401 and anonymous.headers["x-request-id"]


def test_log_lines_inside_a_context_carry_it_and_lines_after_do_not() -> None:
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as lines:
        with logs.context(request_id="r1", principal="token:3"):
            logs.get_logger("t").info("inside")
        logs.get_logger("t").info("after")
    assert lines[0]["request_id"] == "r1" and lines[0]["principal"] == "token:3"
    assert "request_id" not in lines[1]
