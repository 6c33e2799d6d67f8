"""CAP alerts in: one alert made a signal (:func:`prepare`), and the poller of the CAP feeds
a centre subscribes to (``[intake] cap_feeds``; docs/cap.md).

:func:`prepare` is what ``POST /api/v1/cap`` and the poller share: parse and validate the
document (``intake/cap/codec.py``), screen its event and headline, find its thread among the alerts
already stored (an Update or Cancel folds into the incident of the alert it references), and
build the ``feed`` signal. It reads the store (a query by key) and is blocking: callers on the
event loop run it in a thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit

import httpx
import sqlalchemy as sa

from alarmdesk.domain.errors import InputError, InvalidCap
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.signal import SignalIn, validate
from alarmdesk.intake.cap import (
    MAX_DOCUMENT_BYTES,
    CapMapping,
    choose_info,
    parse,
    parse_feed,
    thread_of,
    to_signal,
)
from alarmdesk.intake.devices import SignalSink
from alarmdesk.store.cap import threads

__all__ = ["CapFeedPoller", "prepare"]

log = logging.getLogger(__name__)


def prepare(
    engine: sa.Engine,
    body: bytes,
    mapping: CapMapping,
    now: datetime,
    languages: Sequence[str] = (),
) -> SignalIn:
    """The signal of one CAP document.

    Raises:
        InvalidCap: not a valid CAP 1.2 alert (nothing is stored).
        ProtectedPurposeError: the event or headline targets people exercising rights.
        InvalidField: the signal breaks a limit every intake path has (a time too far ahead).
    """
    alert = parse(body)
    info = choose_info(alert, languages)
    if info is not None:
        screen({"event": info.event, "headline": info.headline})
    with engine.connect() as conn:
        known = threads(conn, [alert.key, *(r.key for r in alert.references)])
    signal = to_signal(alert, mapping, thread_of(alert, known), languages=languages)
    return validate(signal, now)


@dataclass(slots=True)
class FeedState:
    """What the poller remembers of one feed: the entries it has stored (id, updated)."""

    seen: set[tuple[str, str]] = field(default_factory=set)
    stored: int = 0
    refused: int = 0
    failures: int = 0


class CapFeedPoller:
    """Polls each feed every ``every`` seconds and stores each new alert as a signal.

    An entry is fetched once: its (id, updated) pair is remembered while the feed lists it
    (a resend after a restart is a repeat the writer answers from its idempotency key). An
    alert the schema refuses is logged and skipped; the feed goes on.
    """

    def __init__(
        self,
        urls: Sequence[str],
        every: float,
        sink: SignalSink,
        engine: sa.Engine,
        mapping: CapMapping,
        clock: Callable[[], datetime],
        languages: Sequence[str] = (),
    ) -> None:
        self.urls = list(urls)
        self.every = every
        self.sink = sink
        self.engine = engine
        self.mapping = mapping
        self.clock = clock
        self.languages = tuple(languages)
        self.feeds: dict[str, FeedState] = {u: FeedState() for u in self.urls}
        self.polls = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=10.0, follow_redirects=True) as client:
            while True:
                for url in self.urls:
                    try:
                        await self.poll(client, url)
                    except Exception:
                        self.feeds[url].failures += 1
                        log.exception("polling the CAP feed %s failed", url)
                self.polls += 1
                await asyncio.sleep(self.every)

    async def poll(self, client: httpx.AsyncClient, url: str) -> None:
        state = self.feeds[url]
        body = await _get(client, url)
        entries = await asyncio.to_thread(parse_feed, body)
        listed: set[tuple[str, str]] = set()
        for entry in entries:
            marker = (entry.id, entry.updated)
            listed.add(marker)
            if marker in state.seen:
                continue
            document = entry.alert
            if document is None and entry.link:
                link = urljoin(url, entry.link)
                if urlsplit(link).scheme not in {"http", "https"}:
                    state.seen.add(marker)
                    continue
                document = await _get(client, link)
            if document is None:
                state.seen.add(marker)
                continue
            try:
                signal = await asyncio.to_thread(
                    prepare, self.engine, document, self.mapping, self.clock(), self.languages
                )
            except InputError as exc:
                state.refused += 1
                state.seen.add(marker)
                log.warning("CAP feed %s: entry %s refused (%s): %s", url, entry.id, exc.code, exc)
                continue
            await self.sink.submit_signals([signal])
            state.stored += 1
            state.seen.add(marker)
        state.seen &= listed  # bounded by the feed's own length


async def _get(client: httpx.AsyncClient, url: str) -> bytes:
    """A document of at most ``MAX_DOCUMENT_BYTES``."""
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_DOCUMENT_BYTES:
                raise InvalidCap(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)
