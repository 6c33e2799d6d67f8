"""The live stream: replay from the events table, then live from the hub, gap-free.

Order matters: subscribe first, then replay from the database. Anything committed before
the subscription is in the database; anything after is in the queue; what is in both is
skipped by id. So a reconnecting console loses nothing and sees nothing twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

from alarmdesk.bootstrap import Services
from alarmdesk.bus.sse import event_data, sse_frame
from alarmdesk.store import repository as repo

REPLAY_PAGE = 500


async def event_stream(
    svc: Services, desks: Sequence[str] | None, last_event_id: int | None
) -> AsyncIterator[bytes]:
    sub = svc.hub.subscribe(desks)
    wanted = frozenset(desks) if desks else None
    try:
        yield b"retry: 2000\n\n"
        if last_event_id is None:
            sent = svc.hub.last_id
        else:
            sent = last_event_id
            while True:
                rows = await anyio.to_thread.run_sync(_page, svc, sent)
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
        heartbeat = svc.config.stream.heartbeat_seconds
        queue = sub.queue
        while True:
            if queue.empty():
                try:
                    item = await asyncio.wait_for(queue.get(), heartbeat)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
            else:
                item = queue.get_nowait()
            items = [item]
            while not queue.empty():  # everything already waiting goes out in one write
                items.append(queue.get_nowait())
            chunk: list[bytes] = []
            for frames in items:
                if frames is None:  # dropped for falling behind, or shutting down
                    if chunk:
                        yield b"".join(chunk)
                    return
                for event_id, frame in frames:
                    if event_id > sent:
                        sent = event_id
                        chunk.append(frame)
            if chunk:
                yield b"".join(chunk)
    finally:
        svc.hub.unsubscribe(sub)


def _page(svc: Services, after: int) -> list[dict[str, Any]]:
    with svc.engine.connect() as conn:
        return [dict(r) for r in repo.events_after(conn, after, REPLAY_PAGE)]
