"""The live stream: replay from the events table, then live from the hub, gap-free, for as
long as the credential that opened it holds.

Order matters: subscribe first, then replay from the database. Anything committed before
the subscription is in the database; anything after is in the queue; what is in both is
skipped by id. So a reconnecting console loses nothing and sees nothing twice.

A stream ends with its credential (docs/api.md, "Live stream"): signing out puts the end
marker on the session's subscriptions at once (``Hub.end``), and every ``[stream]
recheck_seconds`` the credential is read again from the store, so a token revoked or a session
ended by another process (the command line), or a session that expired, ends it too. Every
consumer (the API's stream, the console's incident stream) goes through this generator; the
credential is the one of the request being served (``web/auth.request_scope``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import anyio
from litestar.types import Scope

from alarmdesk.bootstrap import Services
from alarmdesk.bus.sse import event_data, sse_frame
from alarmdesk.safeguards.access import Principal
from alarmdesk.service import queries
from alarmdesk.web.auth import Authenticator, credential_of, request_scope

__all__ = ["REPLAY_PAGE", "event_stream"]

REPLAY_PAGE = 500


async def event_stream(
    svc: Services,
    desks: Sequence[str] | None,
    last_event_id: int | None,
    *,
    scope: Scope | None = None,
) -> AsyncIterator[bytes]:
    """The SSE bytes of the events of ``desks`` (None: every desk) after ``last_event_id``
    (None: from now on), until the credential of ``scope`` (default: the request being
    served) ends or the hub drops the stream. Without a signed-in request, it never ends for
    a credential (tests, tools)."""
    scope = scope if scope is not None else request_scope.get()
    principal = scope.get("principal") if scope is not None else None
    authn: Authenticator | None = None
    credential: str | None = None
    if scope is not None and isinstance(principal, Principal):
        authn = scope["app"].state.authenticator
        credential = credential_of(principal)
    sub = svc.hub.subscribe(desks, credential=credential)
    wanted = frozenset(desks) if desks else None
    try:
        yield b"retry: 2000\n\n"
        if last_event_id is None:
            sent = svc.hub.last_id
        else:
            sent = last_event_id
            while True:
                rows = await anyio.to_thread.run_sync(
                    queries.events_after, svc.engine, sent, REPLAY_PAGE
                )
                for r in rows:
                    sent = r["id"]
                    if wanted is None or not wanted.isdisjoint(r["desks"]):
                        yield sse_frame(
                            r["id"],
                            r["type"],
                            event_data(
                                r["incident_id"],
                                r["at"].isoformat(),
                                r["actor"],
                                r["detail"],
                                r["snapshot"],
                                r["id"],
                            ),
                        )
                if len(rows) < REPLAY_PAGE:
                    break
        stream_cfg = svc.config.stream
        queue = sub.queue
        beat_at = time.monotonic() + stream_cfg.heartbeat_seconds
        recheck_at = time.monotonic() + stream_cfg.recheck_seconds
        while True:
            now = time.monotonic()
            if now >= recheck_at and authn is not None and scope is not None:
                if not await authn.still_valid(scope):
                    return  # revoked, signed out or expired, maybe by another process
                recheck_at = time.monotonic() + stream_cfg.recheck_seconds
            if now >= beat_at:
                yield b": keep-alive\n\n"
                beat_at = now + stream_cfg.heartbeat_seconds
            if queue.empty():
                wait = max(0.0, min(beat_at, recheck_at) - time.monotonic())
                try:
                    item = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    continue
            else:
                item = queue.get_nowait()
            items = [item]
            while not queue.empty():  # everything already waiting goes out in one write
                items.append(queue.get_nowait())
            chunk: list[bytes] = []
            for frames in items:
                if frames is None:  # ended (credential), dropped (fell behind), or shutdown
                    if chunk:
                        yield b"".join(chunk)
                    return
                for event_id, frame in frames:
                    if event_id > sent:
                        sent = event_id
                        chunk.append(frame)
            if chunk:
                yield b"".join(chunk)
                beat_at = time.monotonic() + stream_cfg.heartbeat_seconds
    finally:
        svc.hub.unsubscribe(sub)
