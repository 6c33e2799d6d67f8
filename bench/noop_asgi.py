"""The HTTP ceiling: a raw-ASGI endpoint that does what alarmdesk's ingest route does
minus everything after decoding — no framework, no writer, no database.

POST (any path): reads the body, decodes and validates it as one signal with msgspec
(alarmdesk's own ``decode_one``, the same decoder and checks the real route runs) and
answers 202 with a receipt-shaped JSON body. GET (any path): 200 ``{"status":"ok"}``.

    uvicorn noop_asgi:app --app-dir bench --http httptools --loop uvloop --no-access-log
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import msgspec

from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.signal import decode_one

_encode = msgspec.json.Encoder().encode
_ids = itertools.count(1)
_JSON = [(b"content-type", b"application/json")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await _answer(send, 200, b'{"status":"ok"}')
        return
    chunks = []
    more = True
    while more:
        msg = await receive()
        chunks.append(msg.get("body", b""))
        more = msg.get("more_body", False)
    now = datetime.now(UTC)
    try:
        signal = decode_one(b"".join(chunks), now)
    except AlarmdeskError as exc:
        await _answer(send, 400, _encode({"error": str(exc)}))
        return
    n = next(_ids)
    await _answer(
        send,
        202,
        _encode(
            {
                "signal_id": n,
                "incident_id": n,
                "idempotency_key": signal.idempotency_key,
                "received_at": now.isoformat(),
            }
        ),
    )


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*_JSON, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
