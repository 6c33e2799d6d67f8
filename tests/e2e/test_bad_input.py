"""Bad input over HTTP: each bad request gets its documented error, and the store is unchanged.

Error bodies are ``{"error": {"code", "message", "field"}}``. The codes of a field error
follow one rule: ``missing_field`` when it is absent, ``wrong_type`` when its JSON type is
wrong (a number where a string belongs), ``invalid_value`` when the type is right but the
contract refuses the value (out of range, too long, not a date, not an allowed value),
``unknown_field`` for a field the contract does not have; ``field`` names the field by its
path (``location.lat``, ``signals[2].occurred_at``).
"""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from alarmdesk.service import handlers
from alarmdesk.store import tables as t
from tests.conftest import LiveServer

SIGNALS = "/api/v1/signals"
BATCH = "/api/v1/signals/batch"
INCIDENTS = "/api/v1/incidents"
HUGE_ID = 10**30  # an integer no store column holds


# -- helpers ----------------------------------------------------------------------------------


def a_signal(n: int = 0, **changes: Any) -> dict[str, Any]:
    """A valid signal; ``changes`` replace fields (``None`` removes one)."""
    body: dict[str, Any] = {
        "source_kind": "call",
        "source_id": f"caller-{n}",
        "type_code": "ALRF",
        "occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        # Far apart, so that every signal opens its own incident.
        "location": {"lat": 41.0 + (n % 1500) * 0.01, "lon": -5.0, "address": f"{n} Test Street"},
        "summary": "smoke from a window",
        "payload": {"caller": "test"},
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def store_state(server: LiveServer) -> dict[str, Any]:
    """Row counts, and every incident's and unit's state: what a bad request must not move."""
    with server.services.engine.connect() as conn:
        counts = {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (t.signals, t.incidents, t.events)
        }
        incidents = conn.execute(
            sa.select(
                t.incidents.c.id, t.incidents.c.status, t.incidents.c.version, t.incidents.c.units
            ).order_by(t.incidents.c.id)
        ).all()
        units = conn.execute(
            sa.select(t.units.c.id, t.units.c.status, t.units.c.incident_id).order_by(t.units.c.id)
        ).all()
    return {
        **counts,
        "incident_rows": [tuple(r) for r in incidents],
        "unit_rows": [tuple(r) for r in units],
    }


def post(
    server: LiveServer,
    path: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: Mapping[str, str | bytes] | None = None,
    who: str | None = "intake",
) -> httpx.Response:
    """POSTs as ``who``, one of the test tokens (None: without credentials)."""
    content = raw if raw is not None else json.dumps(body).encode()
    auth = server.headers(who) if who is not None else {}
    return httpx.post(
        server.url + path,
        content=content,
        timeout=30.0,
        headers={"content-type": "application/json", **auth, **(headers or {})},
    )


def get(server: LiveServer, path: str, who: str = "operator", **params: Any) -> httpx.Response:
    return httpx.get(server.url + path, params=params, headers=server.headers(who), timeout=30.0)


def assert_error(
    response: httpx.Response, status: int, code: str, field: object = ...
) -> dict[str, Any]:
    """The response is the error ``code`` with ``status`` (and ``field``, when given)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "field"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    if field is not ...:
        assert error["field"] == field, error
    return error  # type: ignore[no-any-return]


def assert_unchanged_by(
    server: LiveServer, request: Callable[[], httpx.Response]
) -> httpx.Response:
    before = store_state(server)
    response = request()
    assert store_state(server) == before, (
        f"the store changed after {response.status_code} {response.text[:300]}"
    )
    return response


def accepted(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def open_incident(server: LiveServer, n: int = 0) -> int:
    return int(accepted(post(server, SIGNALS, a_signal(n)))["incident_id"])


def act(
    server: LiveServer,
    incident_id: int,
    action: str,
    body: Any = None,
    *,
    raw: bytes | None = None,
    who: str = "operator",
) -> httpx.Response:
    path = f"{INCIDENTS}/{incident_id}/{action}"
    return post(server, path, body if body is not None else {}, raw=raw, who=who)


def without(field: str) -> dict[str, Any]:
    body = a_signal()
    del body[field]
    return body


def in_days(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


# -- one signal -------------------------------------------------------------------------------

SINGLE_CASES = [
    # Not JSON at all.
    pytest.param(b'{"source_kind": "call",', 400, "malformed_json", None, id="truncated JSON"),
    pytest.param(b"{'source_kind': 'call'}", 400, "malformed_json", None, id="single quotes"),
    pytest.param(b"\xff\xfe\x00", 400, "malformed_json", None, id="not UTF-8"),
    pytest.param(b"", 400, "malformed_json", None, id="an empty body"),
    pytest.param(
        json.dumps(a_signal()).encode() + b" {}",
        400,
        "malformed_json",
        None,
        id="trailing data after the object",
    ),
    # JSON, but not an object.
    pytest.param(b"[]", 422, "wrong_type", None, id="an empty list"),
    pytest.param(
        json.dumps([a_signal()]).encode(), 422, "wrong_type", None, id="a list of signals"
    ),
    pytest.param(b'"ALRF"', 422, "wrong_type", None, id="a string"),
    pytest.param(b"42", 422, "wrong_type", None, id="a number"),
    pytest.param(b"null", 422, "wrong_type", None, id="null"),
    # Wrong JSON types.
    pytest.param(
        a_signal(source_id=12345), 422, "wrong_type", "source_id", id="source_id is a number"
    ),
    pytest.param(
        a_signal(type_code=["ALRF"]), 422, "wrong_type", "type_code", id="type_code is a list"
    ),
    pytest.param(
        a_signal(occurred_at=1764064800),
        422,
        "wrong_type",
        "occurred_at",
        id="occurred_at is a number",
    ),
    pytest.param(
        a_signal(location={"lat": "x", "lon": 4.9}),
        422,
        "wrong_type",
        "location.lat",
        id="location.lat is a string",
    ),
    pytest.param(
        a_signal(location="Dam 1"), 422, "wrong_type", "location", id="location is a string"
    ),
    pytest.param(a_signal(payload=[1, 2]), 422, "wrong_type", "payload", id="payload is a list"),
    pytest.param(a_signal(summary=False), 422, "wrong_type", "summary", id="summary is a bool"),
    # Missing fields.
    pytest.param(
        without("source_kind"), 422, "missing_field", "source_kind", id="source_kind missing"
    ),
    pytest.param(without("source_id"), 422, "missing_field", "source_id", id="source_id missing"),
    pytest.param(without("type_code"), 422, "missing_field", "type_code", id="type_code missing"),
    pytest.param(
        without("occurred_at"), 422, "missing_field", "occurred_at", id="occurred_at missing"
    ),
    pytest.param(b"{}", 422, "missing_field", ..., id="an empty object"),
    # The right type, a refused value.
    pytest.param(
        a_signal(occurred_at="yesterday"),
        422,
        "invalid_value",
        "occurred_at",
        id="occurred_at is not a timestamp",
    ),
    pytest.param(
        a_signal(source_kind="robot"),
        422,
        "invalid_value",
        "source_kind",
        id="source_kind is not one of the four",
    ),
    pytest.param(
        a_signal(location={"lat": 90.5, "lon": 4.9}),
        422,
        "invalid_value",
        "location.lat",
        id="lat above 90",
    ),
    pytest.param(
        a_signal(location={"lat": -91, "lon": 4.9}),
        422,
        "invalid_value",
        "location.lat",
        id="lat below -90",
    ),
    pytest.param(
        a_signal(location={"lat": 52.0, "lon": 180.5}),
        422,
        "invalid_value",
        "location.lon",
        id="lon above 180",
    ),
    pytest.param(
        a_signal(location={"lat": 52.0}), 422, "invalid_value", "location", id="lat without lon"
    ),
    pytest.param(
        a_signal(source_id=""), 422, "invalid_value", "source_id", id="source_id is empty"
    ),
    pytest.param(
        a_signal(type_code="X" * 33),
        422,
        "invalid_value",
        "type_code",
        id="type_code longer than 32",
    ),
    pytest.param(
        a_signal(summary="s" * 1001), 422, "invalid_value", "summary", id="summary longer than 1000"
    ),
    pytest.param(
        a_signal(idempotency_key=""),
        422,
        "invalid_value",
        "idempotency_key",
        id="idempotency_key is empty",
    ),
    pytest.param(
        a_signal(idempotency_key="auto:new1"),
        422,
        "invalid_value",
        "idempotency_key",
        id="idempotency_key with the prefix reserved for the server's keys",
    ),
    pytest.param(
        a_signal(idempotency_key="auto:" + "ab" * 16),
        422,
        "invalid_value",
        "idempotency_key",
        id="idempotency_key shaped like a server-made one",
    ),
    pytest.param(
        a_signal(source_id="   "), 422, "invalid_value", "source_id", id="source_id is blank"
    ),
    pytest.param(
        a_signal(type_code="  "), 422, "invalid_value", "type_code", id="type_code is blank"
    ),
    pytest.param(
        a_signal(summary="door\x85open"),
        422,
        "invalid_value",
        "summary",
        id="a C1 control character (NEL) in the summary",
    ),
    pytest.param(
        a_signal(source_id="panel\x9b1"),
        422,
        "invalid_value",
        "source_id",
        id="a C1 control character (CSI) in source_id",
    ),
    pytest.param(
        a_signal(occurred_at="2026-11-25T10:00:00"),
        422,
        "invalid_value",
        "occurred_at",
        id="occurred_at without a UTC offset",
    ),
    pytest.param(
        a_signal(occurred_at=in_days(2)),
        422,
        "stale_timestamp",
        "occurred_at",
        id="occurred_at two days ahead",
    ),
    pytest.param(
        a_signal(occurred_at="0001-01-01T00:00:00+01:00"),
        422,
        "invalid_value",
        "occurred_at",
        id="occurred_at in year 1",
    ),
    # Fields the contract does not have.
    pytest.param(
        a_signal(colour="red"), 422, "unknown_field", "colour", id="an unknown top-level field"
    ),
    pytest.param(
        a_signal(received_at=in_days(0)),
        422,
        "unknown_field",
        "received_at",
        id="received_at is ours to set",
    ),
    pytest.param(
        a_signal(location={"lat": 52.0, "lon": 4.9, "altitude": 3}),
        422,
        "unknown_field",
        "location.altitude",
        id="an unknown location field",
    ),
    pytest.param(
        a_signal(condition="broken"),
        422,
        "invalid_value",
        "condition",
        id="condition is neither active nor restored",
    ),
    pytest.param(
        a_signal(record_only="yes"), 422, "wrong_type", "record_only", id="record_only is a string"
    ),
    # Too big.
    pytest.param(
        a_signal(payload={"blob": "x" * (8 * 1024)}),
        413,
        "payload_too_large",
        "payload",
        id="payload over 8 KiB",
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "field"), SINGLE_CASES)
def test_a_bad_signal_gets_its_error_and_stores_nothing(
    live_server: LiveServer, body: Any, status: int, code: str, field: object
) -> None:
    raw = body if isinstance(body, bytes) else None
    response = assert_unchanged_by(live_server, lambda: post(live_server, SIGNALS, body, raw=raw))
    assert_error(response, status, code, field)


def test_a_body_over_64_kib_is_refused_with_413_before_it_is_read(
    live_server: LiveServer,
) -> None:
    big = json.dumps(a_signal(summary="x" * (64 * 1024))).encode()
    response = assert_unchanged_by(live_server, lambda: post(live_server, SIGNALS, raw=big))
    assert_error(response, 413, "payload_too_large")


def test_a_chunked_body_over_64_kib_is_refused_with_413_too(live_server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"source_kind": "call", "summary": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}'

    def send() -> httpx.Response:  # a generator body: no Content-Length, chunked encoding
        return httpx.post(
            live_server.url + SIGNALS,
            content=chunks(),
            headers=live_server.headers("intake"),
            timeout=30.0,
        )

    response = assert_unchanged_by(live_server, send)
    assert_error(response, 413, "payload_too_large")


def test_a_payload_nested_too_deep_is_refused_as_bad_input_not_an_internal_error(
    live_server: LiveServer,
) -> None:
    depth = 5000  # ~30 KB: under the body limit, over any sane nesting
    body = json.dumps(a_signal(payload={"p": 0})).encode()
    body = body.replace(b'{"p": 0}', b'{"a":' * depth + b"1" + b"}" * depth)
    assert len(body) < 64 * 1024
    response = assert_unchanged_by(live_server, lambda: post(live_server, SIGNALS, raw=body))
    assert response.status_code in (400, 422), response.text
    assert response.json()["error"]["code"] in ("malformed_json", "invalid_value")


def an_impossible_transition(
    server: LiveServer, _monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, Any]]:
    """Arriving at an incident nobody was dispatched to: only the writer knows its state."""
    return f"{INCIDENTS}/{open_incident(server, 800)}/arrive", {}


def a_reused_key(
    server: LiveServer, _monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, Any]]:
    """Another signal under a key already stored: only the writer looks the key up."""
    accepted(post(server, SIGNALS, a_signal(801, idempotency_key="poison-key")))
    return SIGNALS, a_signal(802, idempotency_key="poison-key")


def a_signal_that_meets_a_bug(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dict[str, Any]]:
    """A signal on which the pipeline raises what no handler expects (here planted: a
    defect that one site's data meets). Its transaction fails; the writer then tries each
    request alone, so only this one fails."""
    apply_signals = handlers.apply_signals

    def meets_a_bug(state: Any, signals: Any, *args: Any) -> Any:
        if any(s.source_id == "caller-bug" for s in signals):
            raise ZeroDivisionError("a defect this signal meets")
        return apply_signals(state, signals, *args)

    monkeypatch.setattr(handlers, "apply_signals", meets_a_bug)
    return SIGNALS, a_signal(803, source_id="caller-bug")


# Requests that pass every check at the edge and fail in the writer's transaction. (A signal
# from year 1 or a command on an id no column holds are refused before the writer: they are
# tested above, and could not show anything here.)
POISON_REQUESTS = [
    pytest.param(an_impossible_transition, 409, id="a command the incident's state forbids"),
    pytest.param(a_reused_key, 409, id="a signal under a key already used for another"),
    pytest.param(a_signal_that_meets_a_bug, 500, id="a signal that meets a defect"),
]


@pytest.mark.parametrize(("poison", "status"), POISON_REQUESTS)
def test_a_bad_request_does_not_fail_the_good_ones_committed_with_it(
    live_server: LiveServer,
    poison: Callable[[LiveServer, pytest.MonkeyPatch], tuple[str, dict[str, Any]]],
    status: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The writer commits every request that queued up in one transaction: a request it
    cannot apply must get its own error, never fail everybody else's signals."""
    database = sa.make_url(str(live_server.services.engine.url)).database
    assert database is not None
    writer = live_server.services.writer
    queue = writer._queue  # how many requests wait for the writer
    path, body = poison(live_server, monkeypatch)
    failures = commit_failures(writer)
    signals_before = store_state(live_server)["signals"]
    responses: dict[str, httpx.Response] = {}

    def send(name: str, path: str, body: dict[str, Any]) -> None:
        who = "intake" if path == SIGNALS else "operator"
        responses[name] = post(live_server, path, body, who=who)

    def in_thread(name: str, path: str, body: dict[str, Any]) -> threading.Thread:
        th = threading.Thread(target=send, args=(name, path, body))
        th.start()
        return th

    # Hold SQLite's write lock, so that the writer blocks on the first request's insert
    # while the others queue up behind it and go into its next transaction together.
    lock = sqlite3.connect(database, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")
        batches = writer.batches
        threads = [in_thread("first", SIGNALS, a_signal(1))]
        time.sleep(0.3)  # the writer takes it at once, and blocks on the lock
        poison_thread = in_thread("bad", path, body)
        good = [in_thread(f"good-{i}", SIGNALS, a_signal(10 + i)) for i in range(3)]
        threads += [poison_thread, *good]
        # The evidence that the scenario happened: the bad request waits for the writer with
        # the good ones (a request refused before the writer would test nothing here).
        wait_for(lambda: queue.qsize() >= 4, "the bad and the good requests to queue up")
        assert not responses, f"answered before the writer committed anything: {responses}"
        assert writer.batches == batches, "the writer got past the lock"
        lock.execute("COMMIT")
    finally:
        lock.close()
    for th in threads:
        th.join(30)

    assert responses["bad"].status_code == status, responses["bad"].text
    refused = {
        k: f"{r.status_code} {r.text[:200]}"
        for k, r in responses.items()
        if k != "bad" and r.status_code != 202
    }
    assert not refused, f"good requests failed with the bad one: {refused}"
    assert store_state(live_server)["signals"] == signals_before + 4
    if status == 500:  # their transaction failed, then each was tried alone: 3 commits more
        assert commit_failures(writer) - failures == 2
        assert writer.batches - batches <= 5
        assert responses["bad"].json()["error"]["code"] == "internal_error"
    else:
        assert writer.batches - batches <= 2, "the bad one was committed with the good ones"


def commit_failures(writer: Any) -> float:
    """The writer's failed transactions, as its metrics count them."""
    return writer.metrics.registry.get_sample_value("alarmdesk_commit_failures_total") or 0.0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# -- credentials ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "headers", "status", "code"),
    [
        pytest.param(None, {}, 401, "unauthenticated", id="no credentials"),
        pytest.param(
            None,
            {"Authorization": "Bearer not-a-token"},
            401,
            "unauthenticated",
            id="an unknown token",
        ),
        pytest.param(
            None,
            {"Authorization": "Basic dXNlcjpwYXNz"},
            401,
            "unauthenticated",
            id="another scheme",
        ),
        pytest.param("auditor", {}, 403, "forbidden", id="a role that may not submit"),
    ],
)
def test_a_signal_without_the_right_credentials_is_refused_and_stores_nothing(
    live_server: LiveServer, who: str | None, headers: dict[str, str], status: int, code: str
) -> None:
    response = assert_unchanged_by(
        live_server, lambda: post(live_server, SIGNALS, a_signal(1), who=who, headers=headers)
    )
    assert_error(response, status, code)


def test_an_intake_token_cannot_act_on_incidents(live_server: LiveServer) -> None:
    incident_id = open_incident(live_server)
    response = assert_unchanged_by(
        live_server, lambda: act(live_server, incident_id, "acknowledge", who="intake")
    )
    assert_error(response, 403, "forbidden")


def test_an_operator_cannot_act_on_or_read_another_desks_incident(
    live_server: LiveServer,
) -> None:
    east = a_signal(1, location={"lat": 50.0, "lon": 5.0})
    incident_id = int(accepted(post(live_server, SIGNALS, east))["incident_id"])
    response = assert_unchanged_by(
        live_server, lambda: act(live_server, incident_id, "acknowledge", who="west_operator")
    )
    assert_error(response, 403, "forbidden", "incident_id")
    response = get(live_server, f"{INCIDENTS}/{incident_id}", who="west_operator")
    assert_error(response, 403, "forbidden", "incident_id")


# -- batches ----------------------------------------------------------------------------------


def batch_of(*signals: dict[str, Any]) -> dict[str, Any]:
    return {"signals": list(signals)}


def goods(n: int) -> list[dict[str, Any]]:
    return [a_signal(i) for i in range(n)]


BATCH_CASES = [
    pytest.param(b'{"signals": [', 400, "malformed_json", None, id="truncated JSON"),
    pytest.param(
        json.dumps(goods(2)).encode(),
        422,
        "wrong_type",
        None,
        id="a bare list instead of an object",
    ),
    pytest.param(b"{}", 422, "missing_field", "signals", id="no signals field"),
    pytest.param(a_signal(), 422, "unknown_field", None, id="one signal instead of a batch"),
    pytest.param({"signals": a_signal()}, 422, "wrong_type", "signals", id="signals is an object"),
    pytest.param(batch_of(), 422, "invalid_value", "signals", id="an empty batch"),
    pytest.param(
        batch_of(*[a_signal(i, idempotency_key=f"k{i}") for i in range(1001)]),
        422,
        "invalid_value",
        "signals",
        id="1001 signals",
    ),
    pytest.param(
        batch_of(*goods(2), a_signal(location={"lat": 91, "lon": 0}), *goods(2)),
        422,
        "invalid_value",
        "signals[2].location.lat",
        id="one lat out of range",
    ),
    pytest.param(
        batch_of(*goods(1), without("type_code"), *goods(3)),
        422,
        "missing_field",
        "signals[1].type_code",
        id="one signal without type_code",
    ),
    pytest.param(
        batch_of(*goods(4), a_signal(source_id=7)),
        422,
        "wrong_type",
        "signals[4].source_id",
        id="one source_id is a number",
    ),
    pytest.param(
        batch_of(*goods(3), a_signal(occurred_at=in_days(2))),
        422,
        "stale_timestamp",
        "signals[3].occurred_at",
        id="one occurred_at two days ahead",
    ),
    pytest.param(
        batch_of(*goods(1), a_signal(payload={"b": "x" * 9000}), *goods(1)),
        413,
        "payload_too_large",
        "signals[1].payload",
        id="one payload over 8 KiB",
    ),
    pytest.param(
        batch_of(*goods(2), a_signal(occurred_at="0001-01-01T00:00:00+01:00")),
        422,
        "invalid_value",
        "signals[2].occurred_at",
        id="one occurred_at in year 1",
    ),
]


@pytest.mark.parametrize(("body", "status", "code", "field"), BATCH_CASES)
def test_a_bad_batch_gets_its_error_and_stores_none_of_its_signals(
    live_server: LiveServer, body: Any, status: int, code: str, field: str | None
) -> None:
    raw = body if isinstance(body, bytes) else None
    response = assert_unchanged_by(live_server, lambda: post(live_server, BATCH, body, raw=raw))
    error = assert_error(response, status, code)
    if field is not None:
        assert error["field"] == field, error


def test_a_batch_body_over_8_mib_is_refused_with_413(live_server: LiveServer) -> None:
    big = b'{"signals": [' + b" " * (8 * 1024 * 1024) + b"]}"
    response = assert_unchanged_by(live_server, lambda: post(live_server, BATCH, raw=big))
    assert_error(response, 413, "payload_too_large")


def test_a_batch_with_one_reused_key_is_refused_whole(live_server: LiveServer) -> None:
    accepted(post(live_server, SIGNALS, a_signal(1, idempotency_key="used")))
    batch = batch_of(
        a_signal(2, idempotency_key="new-1"),
        a_signal(3, idempotency_key="used"),  # same key, other content
        a_signal(4, idempotency_key="new-2"),
    )
    response = assert_unchanged_by(live_server, lambda: post(live_server, BATCH, batch))
    assert_error(response, 409, "idempotency_key_reused", "idempotency_key")


def test_a_batch_that_uses_one_key_for_two_different_signals_is_refused(
    live_server: LiveServer,
) -> None:
    batch = batch_of(a_signal(1, idempotency_key="twice"), a_signal(2, idempotency_key="twice"))
    response = assert_unchanged_by(live_server, lambda: post(live_server, BATCH, batch))
    assert_error(response, 409, "idempotency_key_reused", "idempotency_key")


def test_a_batch_that_repeats_one_signal_stores_it_once(live_server: LiveServer) -> None:
    same = a_signal(1, idempotency_key="echo")
    receipts = accepted(post(live_server, BATCH, batch_of(same, same)))["receipts"]
    assert receipts[0] == receipts[1]
    assert store_state(live_server)["signals"] == 1


# -- idempotency ------------------------------------------------------------------------------


def test_a_reused_idempotency_key_with_other_content_is_a_conflict_and_stores_nothing(
    live_server: LiveServer,
) -> None:
    accepted(post(live_server, SIGNALS, a_signal(1, idempotency_key="k-1")))
    other = a_signal(1, idempotency_key="k-1", summary="something else entirely")
    response = assert_unchanged_by(live_server, lambda: post(live_server, SIGNALS, other))
    assert_error(response, 409, "idempotency_key_reused", "idempotency_key")


def test_a_resend_with_identical_content_gets_the_same_receipt_and_stores_nothing(
    live_server: LiveServer,
) -> None:
    signal = a_signal(1, idempotency_key="k-2")
    first = accepted(post(live_server, SIGNALS, signal))
    again = assert_unchanged_by(live_server, lambda: post(live_server, SIGNALS, signal))
    assert accepted(again) == first


def test_a_resend_that_writes_the_same_instant_in_another_offset_is_the_same_signal(
    live_server: LiveServer,
) -> None:
    when = datetime.now(UTC) - timedelta(minutes=5)
    first = accepted(
        post(live_server, SIGNALS, a_signal(1, idempotency_key="k-3", occurred_at=when.isoformat()))
    )
    shifted = when.astimezone(timezone(timedelta(hours=2))).isoformat()
    again = assert_unchanged_by(
        live_server,
        lambda: post(live_server, SIGNALS, a_signal(1, idempotency_key="k-3", occurred_at=shifted)),
    )
    assert accepted(again) == first


def test_the_idempotency_key_header_works_like_the_body_field(live_server: LiveServer) -> None:
    signal = a_signal(1)
    first = accepted(post(live_server, SIGNALS, signal, headers={"Idempotency-Key": "hdr-1"}))
    assert first["idempotency_key"] == "hdr-1"
    # The same key in the body is the same signal…
    in_body = assert_unchanged_by(
        live_server, lambda: post(live_server, SIGNALS, {**signal, "idempotency_key": "hdr-1"})
    )
    assert accepted(in_body) == first
    # … the header again too…
    again = assert_unchanged_by(
        live_server,
        lambda: post(live_server, SIGNALS, signal, headers={"Idempotency-Key": "hdr-1"}),
    )
    assert accepted(again) == first
    # … and other content under the header's key is a conflict.
    other = {**signal, "summary": "not what was said before"}
    conflict = assert_unchanged_by(
        live_server, lambda: post(live_server, SIGNALS, other, headers={"Idempotency-Key": "hdr-1"})
    )
    assert_error(conflict, 409, "idempotency_key_reused", "idempotency_key")


@pytest.mark.parametrize(
    ("header", "body_key"),
    [
        pytest.param("hdr-a", "body-b", id="header and body disagree"),
        pytest.param("h" * 201, None, id="header longer than 200"),
        pytest.param("auto:new1", None, id="header with the server's reserved prefix"),
        pytest.param("auto:" + "ab" * 16, None, id="header shaped like a server-made key"),
        pytest.param(b"a\tb", None, id="a tab in the header"),
        pytest.param("caf\u00e9\u0085".encode(), None, id="a C1 control character in the header"),
        pytest.param(b"", None, id="an empty header"),
        pytest.param(b"caf\xe9", None, id="a header that is not UTF-8"),
    ],
)
def test_a_bad_idempotency_key_header_is_refused(
    live_server: LiveServer, header: str | bytes, body_key: str | None
) -> None:
    signal = a_signal(1, idempotency_key=body_key)
    response = assert_unchanged_by(
        live_server, lambda: post(live_server, SIGNALS, signal, headers={"Idempotency-Key": header})
    )
    assert_error(response, 422, "invalid_value", "idempotency_key")


def test_a_non_ascii_idempotency_key_header_is_read_as_utf_8(live_server: LiveServer) -> None:
    key = "caf\u00e9-\u706b"
    signal = a_signal(1)
    first = accepted(post(live_server, SIGNALS, signal, headers={"Idempotency-Key": key.encode()}))
    assert first["idempotency_key"] == key
    # The same key in the body is the same signal.
    again = assert_unchanged_by(
        live_server, lambda: post(live_server, SIGNALS, {**signal, "idempotency_key": key})
    )
    assert accepted(again) == first


def test_a_reserved_key_is_refused_in_a_batch_and_keyless_signals_still_get_server_keys(
    live_server: LiveServer,
) -> None:
    bad = {"signals": [a_signal(1), a_signal(2, idempotency_key="auto:new1")]}
    for _ in range(2):  # twice: the second once was a 500 (the key's row already there)
        refused = assert_unchanged_by(live_server, lambda: post(live_server, BATCH, bad))
        assert_error(refused, 422, "invalid_value", "signals[1].idempotency_key")
    keyless = accepted(post(live_server, BATCH, {"signals": [a_signal(3), a_signal(4)]}))
    keys = [r["idempotency_key"] for r in keyless["receipts"]]
    assert all(k.startswith("auto:") for k in keys) and len(set(keys)) == 2
    # A client cannot send one of them back as its own.
    echo = assert_unchanged_by(
        live_server, lambda: post(live_server, SIGNALS, a_signal(3, idempotency_key=keys[0]))
    )
    assert_error(echo, 422, "invalid_value", "idempotency_key")


# -- unknown incident types -------------------------------------------------------------------


def test_an_unknown_type_code_is_kept_as_an_unclassified_incident(
    live_server: LiveServer,
) -> None:
    before = store_state(live_server)
    receipt = accepted(post(live_server, SIGNALS, a_signal(1, type_code="NOSUCHCODE")))
    after = store_state(live_server)
    assert (after["signals"], after["incidents"]) == (
        before["signals"] + 1,
        before["incidents"] + 1,
    )
    with live_server.services.engine.connect() as conn:
        row = conn.execute(
            sa.select(t.incidents.c.type_code, t.incidents.c.category).where(
                t.incidents.c.id == receipt["incident_id"]
            )
        ).one()
    assert tuple(row) == ("UNCLASS", "other_harm")

    response = get(live_server, f"{INCIDENTS}/{receipt['incident_id']}")
    assert response.status_code == 200, response.text
    incident = response.json()
    assert (incident["type_code"], incident["category"]) == ("UNCLASS", "other_harm")
    assert [s["id"] for s in incident["signals"]] == [receipt["signal_id"]]
    assert incident["signals"][0]["type_code"] == "NOSUCHCODE"
    assert incident["timeline"][0]["detail"]["unclassified_code"] == "NOSUCHCODE"


# -- commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("incident_id", [999_999, HUGE_ID])
def test_acknowledging_an_incident_that_does_not_exist_is_404(
    live_server: LiveServer, incident_id: int
) -> None:
    open_incident(live_server)
    response = assert_unchanged_by(
        live_server, lambda: act(live_server, incident_id, "acknowledge")
    )
    assert_error(response, 404, "not_found", "incident_id")


def test_acknowledging_twice_is_an_invalid_transition(live_server: LiveServer) -> None:
    incident_id = open_incident(live_server)
    assert act(live_server, incident_id, "acknowledge").status_code == 200
    response = assert_unchanged_by(
        live_server, lambda: act(live_server, incident_id, "acknowledge")
    )
    assert_error(response, 409, "invalid_transition", "status")


def test_acting_on_a_cancelled_incident_is_an_invalid_transition(
    live_server: LiveServer,
) -> None:
    incident_id = open_incident(live_server)
    assert act(live_server, incident_id, "cancel", {"reason": "false_alarm"}).status_code == 200
    response = assert_unchanged_by(
        live_server, lambda: act(live_server, incident_id, "acknowledge")
    )
    assert_error(response, 409, "invalid_transition", "status")


def test_a_stale_expected_version_is_a_version_conflict(live_server: LiveServer) -> None:
    incident_id = open_incident(live_server)
    version = get(live_server, f"{INCIDENTS}/{incident_id}").json()["version"]
    assert act(live_server, incident_id, "notes", {"text": "first"}).status_code == 200
    response = assert_unchanged_by(
        live_server,
        lambda: act(live_server, incident_id, "acknowledge", {"expected_version": version}),
    )
    assert_error(response, 409, "version_conflict", "expected_version")


def test_dispatching_a_unit_that_is_busy_elsewhere_is_a_conflict(
    live_server: LiveServer,
) -> None:
    first, second = open_incident(live_server, 1), open_incident(live_server, 2)
    assert act(live_server, first, "dispatch", {"units": ["E1"]}).status_code == 200
    response = assert_unchanged_by(
        live_server, lambda: act(live_server, second, "dispatch", {"units": ["E1"]})
    )
    assert_error(response, 409, "unit_unavailable", "units")


COMMAND_CASES = [
    pytest.param(
        "resolve",
        {"disposition": "sorted_it"},
        422,
        "invalid_disposition",
        "disposition",
        id="resolve with an unknown disposition",
    ),
    pytest.param(
        "resolve", {}, 422, "missing_field", "disposition", id="resolve without a disposition"
    ),
    pytest.param(
        "dispatch",
        {"units": ["NOPE9"]},
        422,
        "unknown_unit",
        "units",
        id="dispatch an unknown unit",
    ),
    pytest.param(
        "dispatch",
        {"units": ["E1", "NOPE9"]},
        422,
        "unknown_unit",
        "units",
        id="dispatch a known and an unknown unit",
    ),
    pytest.param("dispatch", {}, 422, "missing_field", "units", id="dispatch without units"),
    pytest.param(
        "dispatch",
        {"units": []},
        422,
        "missing_field",
        "units",
        id="dispatch an empty list of units",
    ),
    pytest.param("arrive", {}, 409, "invalid_transition", "status", id="arrive before dispatch"),
    pytest.param("close", {}, 409, "invalid_transition", "status", id="close before resolve"),
    pytest.param(
        "cancel",
        {"reason": "bored"},
        422,
        "invalid_reason",
        "reason",
        id="cancel with an unknown reason",
    ),
    pytest.param("cancel", {}, 422, "missing_field", "reason", id="cancel without a reason"),
    pytest.param("notes", {"text": "   "}, 422, "missing_field", "text", id="a blank note"),
    pytest.param(
        "step", b'{"step": 0, "step": 1}', 422, "invalid_value", "step", id="a key given twice"
    ),
    pytest.param(
        "notes", {"text": "\u200b\u2060 "}, 422, "missing_field", "text", id="a note of invisibles"
    ),
    pytest.param(
        "reclassify",
        {"type_code": "NOSUCH"},
        422,
        "unknown_incident_type",
        "type_code",
        id="reclassify to an unknown type",
    ),
    pytest.param(
        "reclassify", {}, 422, "missing_field", "type_code", id="reclassify without a type"
    ),
    pytest.param("teleport", {}, 404, "not_found", "action", id="an action that does not exist"),
    pytest.param(
        "acknowledge",
        b"{not json",
        400,
        "malformed_json",
        None,
        id="a command body that is not JSON",
    ),
    pytest.param(
        "acknowledge",
        {"expected_version": "three"},
        422,
        "wrong_type",
        "expected_version",
        id="expected_version is a string",
    ),
    pytest.param(
        "acknowledge",
        {"please": True},
        422,
        "unknown_field",
        "please",
        id="an unknown field in a command",
    ),
    pytest.param(
        "notes", {"text": "n" * 4001}, 422, "invalid_value", "text", id="a note longer than 4000"
    ),
]


@pytest.mark.parametrize(("action", "body", "status", "code", "field"), COMMAND_CASES)
def test_a_bad_command_gets_its_error_and_changes_nothing(
    live_server: LiveServer, action: str, body: Any, status: int, code: str, field: str | None
) -> None:
    incident_id = open_incident(live_server)
    raw = body if isinstance(body, bytes) else None
    response = assert_unchanged_by(
        live_server, lambda: act(live_server, incident_id, action, body, raw=raw)
    )
    assert_error(response, status, code, field)


# -- queries ----------------------------------------------------------------------------------


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"status": "bogus"}, "status", id="an unknown status"),
        pytest.param({"priority": "9"}, "priority", id="priority 9"),
        pytest.param({"priority": "urgent"}, "priority", id="priority not a number"),
        pytest.param({"limit": "0"}, "limit", id="limit 0"),
        pytest.param({"limit": "501"}, "limit", id="limit over 500"),
        pytest.param({"from": "yesterday"}, "from", id="from is not a timestamp"),
        pytest.param({"from": "2026-11-25T10:00:00"}, "from", id="from without a UTC offset"),
        pytest.param({"status": "closed"}, "justification", id="a search without justification"),
        pytest.param(
            {"status": "closed", "justification": "why"},
            "justification",
            id="a justification too short to say why",
        ),
    ],
)
def test_a_bad_incident_query_is_a_client_error_naming_the_parameter(
    live_server: LiveServer, params: dict[str, str], field: str
) -> None:
    open_incident(live_server)
    response = assert_unchanged_by(live_server, lambda: get(live_server, INCIDENTS, **params))
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"] and error["message"], error
    assert error["field"] == field, error


@pytest.mark.parametrize(
    ("params", "fields"),
    [({}, ("lat", "lon")), ({"lon": "1"}, ("lat",)), ({"lat": "<b>1</b>"}, ("lon",))],
)
def test_a_missing_query_parameter_is_missing_field_naming_it(
    live_server: LiveServer, params: dict[str, str], fields: tuple[str, ...]
) -> None:
    """Litestar's own answer named no field, said invalid_value and echoed the query. With
    both missing it names one (which one varies from process to process)."""
    response = get(live_server, "/api/v1/incidents/nearby", **params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] in fields, error
    assert error == {
        "code": "missing_field",
        "message": f"query parameter {error['field']} is required",
        "field": error["field"],
    }


@pytest.mark.parametrize(
    "cursor",
    [
        pytest.param("not a cursor", id="not base64"),
        pytest.param(cursor_of("x:10"), id="another kind"),
        pytest.param(cursor_of("i:ten"), id="not a number"),
        pytest.param(cursor_of("i:"), id="no number"),
        pytest.param(base64.urlsafe_b64encode(b"\xff\xfe:1").decode(), id="not UTF-8"),
        pytest.param(cursor_of("i:" + "9" * 30), id="a number too large for the store"),
    ],
)
def test_a_cursor_this_api_did_not_give_out_is_invalid_cursor(
    live_server: LiveServer, cursor: str
) -> None:
    open_incident(live_server)
    response = assert_unchanged_by(  # the live queue, which needs no justification
        live_server, lambda: get(live_server, INCIDENTS, status="new", cursor=cursor)
    )
    assert_error(response, 422, "invalid_cursor", "cursor")


@pytest.mark.parametrize("incident_id", [424_242, HUGE_ID])
def test_an_incident_that_does_not_exist_is_404(live_server: LiveServer, incident_id: int) -> None:
    open_incident(live_server)
    response = assert_unchanged_by(
        live_server, lambda: get(live_server, f"{INCIDENTS}/{incident_id}")
    )
    assert_error(response, 404, "not_found", "incident_id")


@pytest.mark.parametrize(
    "last_event_id",
    [
        pytest.param("yesterday", id="not a number"),
        pytest.param("-1", id="negative"),
        pytest.param("9" * 30, id="a number too large for the store"),
    ],
)
def test_a_last_event_id_that_is_no_event_id_is_refused_before_the_stream_opens(
    live_server: LiveServer, last_event_id: str
) -> None:
    headers = {**live_server.headers("operator"), "Last-Event-ID": last_event_id}
    url = live_server.url + "/api/v1/stream"
    with httpx.stream("GET", url, headers=headers, timeout=10.0) as response:
        assert response.status_code != 200, "the stream opened on a bad Last-Event-ID"
        response.read()
    assert_error(response, 422, "invalid_value", "Last-Event-ID")
