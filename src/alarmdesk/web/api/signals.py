"""Signals in: ``POST /api/v1/signals`` and ``/api/v1/signals/batch``.

The ingest routes are deliberately thin: read the bytes, decode and validate with msgspec in
one pass, hand off to the writer, answer with the receipt once committed. No framework
validation runs on that hot path.

In distributed mode ([nats] url) they hand off to the intake log instead and answer 202
"queued" once JetStream has stored the signals (:func:`take`): the receipt's ids do not
exist yet; a node commits the signals moments later (docs/api.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import anyio
import msgspec
from litestar import Request, Response, post

from alarmdesk.bootstrap import Services
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.signal import (
    Receipt,
    SignalBatchIn,
    SignalIn,
    check_key,
    decode_batch,
    decode_one,
)
from alarmdesk.safeguards.access import Permission, Principal, acting_desks
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import queries
from alarmdesk.web.api.common import actor_of, needs, read_body, services
from alarmdesk.web.api.schemas import AUTH, ReceiptOut, Receipts, body, responses
from alarmdesk.web.auth import principal_of

# What a body-reading route can answer besides its success.
_BODY_ERRORS = (400, *AUTH, 408, 409, 413, 422, 503)

_encode = msgspec.json.Encoder().encode


def receipt_json(r: Receipt) -> dict[str, Any]:
    return {
        "signal_id": r.signal_id,
        "incident_id": r.incident_id,
        "idempotency_key": r.idempotency_key,
        "received_at": r.received_at.isoformat(),
    }


def with_header_key(signal: SignalIn, header_key: str | None) -> None:
    """The ``Idempotency-Key`` header, when sent, is the signal's key, under the body field's
    rules (``domain.signal.check_key``: not empty, at most 200 characters, no control
    character, not alarmdesk's ``auto:`` prefix); it must not differ from a key in the body.

    ``header_key`` is the header as ASGI servers and Litestar hand it over, its bytes read as
    Latin-1; they are read again as UTF-8, as the body is (invalid UTF-8 is refused)."""
    if header_key is None:
        return
    try:
        key = header_key.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise InvalidField(
            "Idempotency-Key is not UTF-8", field="idempotency_key", code="invalid_value"
        ) from None
    check_key(key, "idempotency_key")
    if signal.idempotency_key and signal.idempotency_key != key:
        raise InvalidField(
            "Idempotency-Key header and body idempotency_key differ",
            field="idempotency_key",
            code="invalid_value",
        )
    signal.idempotency_key = key


def single_body(receipt: Receipt) -> bytes:
    return _encode(receipt_json(receipt))


def batch_body(receipts: list[Receipt]) -> bytes:
    return _encode({"receipts": [receipt_json(r) for r in receipts]})


def _queued_json(key: str, received_at: datetime) -> dict[str, Any]:
    return {"status": "queued", "idempotency_key": key, "received_at": received_at.isoformat()}


async def keep_own_joins(svc: Services, signals: list[SignalIn], principal: Principal) -> None:
    """A person's ``join`` names an incident of their desks, or it is dropped: the signal then
    folds by alarmdesk's own rules, as one joined to an incident closed meanwhile or unknown
    (never a lost call), and the answer tells which incident it went to. So a call-taker of
    one desk cannot add a signal to another desk's incident, nor learn from the answer which
    of its numbers are open. A machine (another agency's CAD) joins any incident."""
    desks = acting_desks(principal)
    wanted = [s.join for s in signals if s.join is not None]
    if desks is None or not wanted:
        return
    theirs = await anyio.to_thread.run_sync(queries.heard_by, svc.engine, wanted, desks)
    for s in signals:
        if s.join is not None and s.join not in theirs:
            s.join = None


async def take(
    svc: Services, signals: list[SignalIn], principal: Principal, actor: Actor, batch: bool
) -> bytes:
    """Hands the signals on and returns the 202's body: on one machine the receipts, once
    committed; in distributed mode "queued" with each key, once the intake log stored them.

    Raises:
        AlarmdeskError: what the writer or the intake log refused (a 4xx or 503).
    """
    await keep_own_joins(svc, signals, principal)
    if svc.node is None:
        receipts = await svc.writer.submit_signals(signals, actor=actor)
        return batch_body(receipts) if batch else single_body(receipts[0])
    queued = await svc.node.publish(signals, actor)
    if batch:
        return _encode({"status": "queued", "queued": [_queued_json(*q) for q in queued]})
    return _encode(_queued_json(*queued[0]))


@post(
    "/api/v1/signals",
    status_code=202,
    opt=needs(Permission.SIGNAL_SUBMIT),
    dependencies=body(SignalIn),
    responses=responses(202, ReceiptOut, *_BODY_ERRORS, description="Stored: the receipt"),
    summary="Submit one signal",
    description="Stored durably before the 202 is sent. A repeat with the same idempotency "
    "key (body field or Idempotency-Key header) returns the original receipt. In distributed "
    'mode the 202 says {"status": "queued", "idempotency_key", "received_at"}: stored in the '
    "intake log, committed by a node moments later (docs/api.md).",
)
async def post_signal(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    body = await read_body(request, svc.config.limits.max_signal_bytes)
    signal = decode_one(body, svc.clock())
    with_header_key(signal, request.headers.get("idempotency-key"))
    out = await take(svc, [signal], principal_of(request), actor_of(request), batch=False)
    return Response(out, status_code=202, media_type="application/json")


@post(
    "/api/v1/signals/batch",
    status_code=202,
    opt=needs(Permission.SIGNAL_SUBMIT),
    dependencies=body(SignalBatchIn),
    responses=responses(202, Receipts, *_BODY_ERRORS, description="Stored: every receipt"),
    summary="Submit up to 1,000 signals",
    description='Body {"signals": [...]}. All are validated first: one bad signal '
    "rejects the request and nothing is stored.",
)
async def post_signal_batch(request: Request[Any, Any, Any]) -> Response[bytes]:
    svc = services(request)
    body = await read_body(request, svc.config.limits.max_batch_bytes)
    signals: list[SignalIn] = decode_batch(body, svc.clock())
    out = await take(svc, signals, principal_of(request), actor_of(request), batch=True)
    return Response(out, status_code=202, media_type="application/json")


ROUTES = [post_signal, post_signal_batch]
