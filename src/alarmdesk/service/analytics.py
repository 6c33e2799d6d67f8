"""The analytics export: finished calls, imported and alarmdesk's own, copied incrementally
into the analytics store (Parquet parts, ``analytics/parts.py``), and the schedule a running
server keeps; the retention rewrite of the store after a retention run (docs/analytics.md).

The export reads the database with a connection of its own (never the writer's) and writes
only files: the alarm path never waits on it. Each export that copied calls appends an
``export`` audit entry (counts and watermarks, never a figure or a call) before its parts are
committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

import msgspec
import sqlalchemy as sa

from alarmdesk.analytics.parts import Manifest, OlderFormat, Part, PartStore, Watermark
from alarmdesk.analytics.queries import Analytics
from alarmdesk.analytics.rows import Key
from alarmdesk.domain.history import CallRecord
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.safeguards.retention_policy import RetentionConfig
from alarmdesk.service.actions import in_transaction
from alarmdesk.store import history as store
from alarmdesk.store.audit import AuditChain

__all__ = [
    "ANALYTICS_ACTOR",
    "AUDIT_OBJECT",
    "AnalyticsHost",
    "ExportRun",
    "ExportStopped",
    "database_identity",
    "export",
    "export_loop",
    "open_analytics",
    "prune",
    "store_for",
]

log = logging.getLogger(__name__)

ANALYTICS_ACTOR: Final = Actor("system:analytics", "system")
AUDIT_OBJECT: Final = "analytics_store"
PART_CALLS: Final = 100_000  # calls per part: bounds the export's memory (~150 MB of columns)


def database_identity(engine: sa.Engine) -> str:
    """Which database a store's calls come from: a digest of its URL without the password."""
    url = engine.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ExportRun:
    """What one export copied."""

    calls: int
    units: int  # unit responses
    parts: int  # parts written
    seconds: float
    watermark: Watermark
    strays: int = 0  # files of an export that stopped before committing, removed


class _Cursor:
    """The calls to export, in order, remembering how far each source has been read.

    Imported calls never change once stored: those after the last exported
    ``history_calls.id``. alarmdesk's own incidents are exported when finished (resolved or
    closed) and again whenever their timeline changes afterwards (a unit reporting clear
    after the incident was resolved): those with a timeline event after the last event read.
    """

    def __init__(
        self, conn: sa.Connection, start: Watermark, chunk: int, upto: int | None = None
    ) -> None:
        self.conn = conn
        self.chunk = chunk
        self.upto = upto  # imported calls up to this number: all committed
        self.history_id = start.history_id
        self.event_id = start.event_id
        self.own: list[int] = []  # the own incidents exported

    def calls(self) -> Iterator[tuple[Key, CallRecord]]:
        for number, source, record in store.read_calls_after(
            self.conn, self.history_id, upto=self.upto, chunk=self.chunk
        ):
            self.history_id = number
            yield Key(False, source, record.call_id), record
        changed: set[int] = set()
        while True:
            touched, last = store.changed_after(self.conn, self.event_id, chunk=self.chunk)
            if last == self.event_id:
                break
            changed |= touched
            self.event_id = last
        ordered = sorted(changed)
        for at in range(0, len(ordered), self.chunk):
            ids = ordered[at : at + self.chunk]
            for record in store.read_own_calls(self.conn, None, None, ids=ids):
                self.own.append(int(record.call_id))
                yield Key(True, None, record.call_id), record

    @property
    def watermark(self) -> Watermark:
        """How far :meth:`calls` has read; complete once it is exhausted."""
        return Watermark(history_id=self.history_id, event_id=self.event_id)


class ExportStopped(Exception):
    """An export abandoned before it committed (the server is stopping)."""


def _until(
    stop: threading.Event, calls: Iterator[tuple[Key, CallRecord]]
) -> Iterator[tuple[Key, CallRecord]]:
    for item in calls:
        if stop.is_set():
            raise ExportStopped("the analytics export was stopped before it committed")
        yield item


def export(
    engine: sa.Engine,
    parts: PartStore,
    chain: AuditChain,
    *,
    now: datetime,
    actor: Actor = ANALYTICS_ACTOR,
    part_calls: int = PART_CALLS,
    chunk: int = 2000,
    stop: threading.Event | None = None,
) -> ExportRun:
    """Copies the calls finished since the last export into new parts, and commits them.

    ``stop`` set (a server shutting down) abandons the export at the next call read: nothing
    is committed, the parts written so far are strays the next export removes, and it starts
    again from the same watermarks (:class:`ExportStopped` is raised).

    Under the store's lock: stray files of an export that stopped before committing are
    removed first, then the new calls are written, part by part, and the older parts that
    held an own incident exported again are rewritten without it, and small parts merged
    (``PartStore.compacted``); an ``export`` audit entry is committed, and the manifest
    naming the parts and the advanced watermarks is written last (then the files it no
    longer names are removed).
    """
    began = time.perf_counter()
    with parts.lock():
        try:
            manifest = parts.manifest()
            afresh = False
        except OlderFormat:  # written by an earlier alarmdesk: exported again from the start
            manifest, afresh = Manifest(database=parts.database), True
        strays = parts.clean(manifest)
        written: list[Part] = []
        with engine.connect() as conn:
            upto = store.imported_upto(engine)  # a call numbered below it can't commit later
            cursor = _Cursor(conn, manifest.watermark, chunk, upto)
            calls = cursor.calls() if stop is None else _until(stop, cursor.calls())
            number = manifest.next_part
            while True:
                part = parts.write_part(number, itertools.islice(calls, part_calls))
                if part is None:
                    break
                written.append(part)
                number += 1
            watermark = cursor.watermark
        older, number = parts.replaced(manifest, cursor.own, number)
        merged = [*older, *written]
        if written:  # small parts add up with a frequent export: merged, sorted by time
            merged, number = parts.compacted(merged, number, part_calls)
        run = ExportRun(
            calls=sum(p.calls for p in written),
            units=sum(p.units for p in written),
            parts=len(written),
            seconds=0.0,
            watermark=watermark,
            strays=strays,
        )
        if written:
            _audit(engine, chain, actor, now, manifest, run)
        if written or afresh or watermark != manifest.watermark:
            updated = msgspec.structs.replace(
                manifest, parts=tuple(merged), next_part=number, watermark=watermark
            )
            parts.commit(updated)
            parts.clean(updated)  # the parts rewritten without an incident exported again
    return dataclasses.replace(run, seconds=time.perf_counter() - began)


def _audit(
    engine: sa.Engine,
    chain: AuditChain,
    actor: Actor,
    now: datetime,
    before: Manifest,
    run: ExportRun,
) -> None:
    entry = AuditEvent(
        actor,
        Operation.EXPORT,
        AUDIT_OBJECT,
        rule="analytics.export",
        detail={
            "calls": run.calls,
            "unit_responses": run.units,
            "parts": run.parts,
            "from": msgspec.to_builtins(before.watermark),
            "to": msgspec.to_builtins(run.watermark),
        },
    )

    def log_it(conn: sa.Connection) -> None:
        chain.append(conn, [entry], now)

    in_transaction(engine, chain, log_it, "analytics export")


@contextlib.contextmanager
def open_analytics(parts: PartStore, *, threads: int | None = None) -> Iterator[Analytics]:
    """A DuckDB connection over the committed parts, for a ``with`` block. It holds the
    store's lock shared while open: an export or a retention run that would remove a part
    it reads waits until it is closed (parts are never changed in place)."""
    with parts.lock(shared=True):
        manifest = parts.manifest()
        generation = (str(parts.directory), manifest.database, manifest.next_part)
        with Analytics(parts.files(manifest), threads=threads, generation=generation) as figures:
            yield figures


def prune(engine: sa.Engine, parts: PartStore, policy: RetentionConfig, now: datetime) -> int:
    """After a retention run: the calls past the incidents period of their category that the
    database no longer holds are removed from the store's parts. Returns how many."""
    cutoffs = policy.cutoffs(now)

    def cutoff(category: str) -> datetime:
        return cutoffs.get(f"incidents.{category}", cutoffs["incidents"])

    def gone(keys: list[Key]) -> set[Key]:
        own = [int(k.call_id) for k in keys if k.own]
        imported = [(k.source or "", k.call_id) for k in keys if not k.own]
        with engine.connect() as conn:
            kept_own, kept = store.stored_keys(conn, own, imported)
        return {
            k
            for k in keys
            if (int(k.call_id) not in kept_own if k.own else (k.source, k.call_id) not in kept)
        }

    if not parts.directory.is_dir():
        return 0  # no store here (never exported): nothing to remove, nothing to create
    with parts.lock():
        try:
            manifest = parts.manifest()
        except OlderFormat:
            return 0  # the next export writes it afresh, from what the database still holds
        _, removed = parts.prune(manifest, cutoff, gone)
    if removed:
        log.info("analytics store: %d erased calls removed", removed)
    return removed


# -- the scheduled export ----------------------------------------------------------------------


def _export_and_prune(
    services: AnalyticsHost,
    chain: AuditChain,
    policy: RetentionConfig | None,
    stop: threading.Event | None = None,
) -> ExportRun:
    now = services.clock()
    run = export(services.engine, services.analytics, chain, now=now, stop=stop)
    if policy is not None:
        prune(services.engine, services.analytics, policy, now)
    return run


class AnalyticsHost(Protocol):
    """What the scheduled export needs of a running alarmdesk (``bootstrap.Services``)."""

    engine: sa.Engine
    analytics: PartStore

    def clock(self) -> datetime: ...

    def new_audit_chain(self) -> AuditChain: ...


async def export_loop(
    services: AnalyticsHost, every_minutes: float, policy: RetentionConfig | None = None
) -> None:
    """Exports every ``every_minutes`` until cancelled (0: returns at once), each run in a
    thread of its own so the event loop and the writer never wait on it. A failed run is
    logged and tried again at the next period. Cancelling stops a run in progress at its next
    call (nothing committed; the next export starts from the same place), so a server never
    waits on a long export to shut down.

    With ``policy``, each run also removes from the store the calls the database no longer
    holds (:func:`prune`): with several nodes on one database, only the node holding the
    retention lease runs the retention job, and every node's store must follow it."""
    if every_minutes <= 0:
        return
    chain = services.new_audit_chain()
    stop = threading.Event()
    while True:
        running = asyncio.ensure_future(
            asyncio.to_thread(_export_and_prune, services, chain, policy, stop)
        )
        try:
            run = await asyncio.shield(running)
        except asyncio.CancelledError:
            stop.set()  # abandoned at its next call: nothing half-committed
            with contextlib.suppress(BaseException):
                await running
            raise
        except Exception:
            log.exception("analytics export failed; next attempt in %.1f min", every_minutes)
        else:
            if run.calls:
                log.info("analytics export: %d calls in %d parts", run.calls, run.parts)
        await asyncio.sleep(every_minutes * 60.0)


def store_for(directory: str | Path, engine: sa.Engine) -> PartStore:
    """The analytics store of ``engine``'s database in ``directory``."""
    return PartStore(Path(directory), database_identity(engine))
