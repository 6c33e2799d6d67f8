"""The retention job: apply the policy one data class at a time, each class found first and
then erased a chunk a transaction, each with its ``erase`` audit entry; and the schedule a
running server keeps.

What each class erases, and why it may run beside the writer, is ``store/retention.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from alarmdesk.analytics.parts import PartStore
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.safeguards.retention_policy import DataClass, RetentionConfig
from alarmdesk.service.actions import in_transaction
from alarmdesk.service.analytics import prune
from alarmdesk.store import leases
from alarmdesk.store import repository as repo
from alarmdesk.store.audit import AuditChain, lock_audit
from alarmdesk.store.retention import PURGES, RETENTION_ACTOR, Chunk, Erased, PurgeJob

__all__ = ["RetentionHost", "RetentionRun", "retention_loop", "run_retention"]

log = logging.getLogger(__name__)

LEASE = "retention"  # the lease of the scheduled run (store/leases.py)


class RetentionHost(Protocol):
    """What the scheduled job needs of a running alarmdesk (``bootstrap.Services``)."""

    engine: sa.Engine
    analytics: PartStore
    node_id: str  # this node, as the leases name it

    def clock(self) -> datetime: ...

    def new_audit_chain(self) -> AuditChain: ...


@dataclass(frozen=True, slots=True)
class RetentionRun:
    """What one run erased (or, with ``dry_run``, would erase), per data class."""

    counts: dict[str, int]
    cutoffs: dict[str, datetime]
    dry_run: bool = False
    incidents_by_category: dict[str, int] = field(default_factory=dict)
    # Of the incidents class's count: calls of imported history (docs/analytics.md).
    history_calls: int = 0
    # Classes that reached ``max_rows``: more expired rows remain for the next run.
    incomplete: frozenset[str] = frozenset()
    # Calls removed from the analytics store because the database no longer holds them.
    analytics_calls: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def run_retention(
    engine: sa.Engine,
    policy: RetentionConfig,
    chain: AuditChain,
    now: datetime,
    actor: Actor = RETENTION_ACTOR,
    *,
    dry_run: bool = False,
    batch: int = 500,
    max_rows: int | None = None,
    classes: Iterable[DataClass] = tuple(DataClass),
    stop: threading.Event | None = None,
    analytics: PartStore | None = None,
    rest: Callable[[float], None] | None = None,
) -> RetentionRun:
    """Erases what expired at ``now`` (an injected clock in tests) under ``policy``.

    Returns the count per class: incidents erased, signals erased, events whose note text
    was erased, signals that lost people or media keys, audit entries whose content was
    erased. ``dry_run`` counts without changing anything and logs nothing. ``max_rows``
    (default: the policy's ``max_rows_per_run``) bounds each class; setting ``stop`` ends the
    run after the current chunk, which commits with its audit entry. With ``analytics``, the
    incidents class is followed by the analytics store's rewrite: the calls the database no
    longer holds leave its parts too (``service/analytics.prune``).

    Each class finds what expired, then erases it a chunk (``batch`` rows) a transaction,
    each with its audit entry, and rests between chunks as long as the chunk took
    (``rest``, default: sleeping, cut short by ``stop``): on SQLite the writer then waits
    for one chunk at most, not for a class (``store/retention.py`` says why).
    """
    policy.validate()
    cutoffs = policy.cutoffs(now)
    limit = max_rows if max_rows is not None else policy.max_rows_per_run
    job = PurgeJob(policy, cutoffs, max(1, batch), max(1, limit), stop)
    pause = rest if rest is not None else _sleeper(stop)
    wanted = set(classes)
    counts: dict[str, int] = {}
    by_category: dict[str, int] = {}
    history_calls = analytics_calls = 0
    incomplete: set[str] = set()

    def erase(cls: DataClass, chunk: Chunk, first: bool) -> Erased:
        """One chunk of a class erased, with its audit entry, in one transaction."""
        purge = PURGES[cls]

        def work(conn: sa.Connection) -> Erased:
            if first and purge.keeps_ids:
                repo.keep_highest_ids(conn)  # the newest may go: their ids are not given again
            erased = purge.erase(conn, job, chunk)
            if erased.count:
                detail: dict[str, Any] = {
                    "count": erased.count,
                    "cutoff": cutoffs[cls.value].isoformat(),
                    "days": policy.days(cls),
                    **erased.detail,
                }
                entry = AuditEvent(actor, Operation.ERASE, cls.value, detail=detail)
                lock_audit(conn)
                chain.append(conn, [entry], now)
            return erased

        return in_transaction(engine, chain, work, "retention")

    # In enumeration order, audit last: this run's own erase entries are never its victims.
    for cls in DataClass:
        if cls not in wanted:
            continue
        if stop is not None and stop.is_set():
            incomplete.add(cls.value)
            continue
        purge = PURGES[cls]
        with engine.connect() as conn:  # reads only: on SQLite no lock is taken
            found = purge.find(conn, job)
        if not job.more(found.count):
            incomplete.add(cls.value)
        if dry_run:
            counts[cls.value] = found.count
            if cls is DataClass.INCIDENTS:
                by_category = found.by_category
                history_calls = int(found.detail.get("history_calls", 0))
        else:
            erased: list[Erased] = []
            took = 0.0
            for n, chunk in enumerate(found.chunks):
                if n and stop is not None and stop.is_set():
                    incomplete.add(cls.value)
                    break
                if n:
                    pause(took)  # the writer's turn, for as long as this run had the lock
                started = time.monotonic()
                erased.append(erase(cls, chunk, n == 0))
                took = time.monotonic() - started
            counts[cls.value] = sum(e.count for e in erased)
            if cls is DataClass.INCIDENTS:
                for e in erased:
                    for c, k in e.detail.get("by_category", {}).items():
                        by_category[c] = by_category.get(c, 0) + k
                    history_calls += int(e.detail.get("history_calls", 0))
                by_category = dict(sorted(by_category.items()))
                if analytics is not None:
                    # also when nothing was erased now: a rewrite a failure cut short is redone
                    analytics_calls = prune(engine, analytics, policy, now)
        if counts[cls.value]:
            log.info(
                "retention %s %s: %d in %d chunk(s) (cutoff %s)",
                "would erase" if dry_run else "erased",
                cls.value,
                counts[cls.value],
                len(found.chunks),
                cutoffs[cls.value].isoformat(),
            )
    return RetentionRun(
        counts,
        cutoffs,
        dry_run,
        by_category,
        incomplete=frozenset(incomplete),
        history_calls=history_calls,
        analytics_calls=analytics_calls,
    )


def _sleeper(stop: threading.Event | None) -> Callable[[float], None]:
    """Rests between chunks: sleeps, or waits on ``stop`` so that a shutdown is not kept."""
    if stop is None:
        return time.sleep

    def rest(seconds: float) -> None:
        stop.wait(seconds)

    return rest


# -- the scheduled job -----------------------------------------------------------------------


async def retention_loop(
    services: RetentionHost,
    policy: RetentionConfig,
    every_hours: float,
    *,
    first_delay_seconds: float = 60.0,
    backlog_pause_seconds: float = 5.0,
) -> None:
    """Applies ``policy`` every ``every_hours`` until cancelled (0: returns at once).

    Each run works in a thread with its own audit chain (same key and origin as the writer's),
    so neither the event loop nor the writer waits on it. A run that left a backlog (a class
    reached ``max_rows_per_run``) is followed by another after ``backlog_pause_seconds``.
    A failed run is logged and retried at the next period; nothing is lost by waiting.
    With several nodes on one database, only the node holding the ``retention`` lease runs
    it (``store/leases.py``); when that node stops renewing, another takes over.
    Cancelling (server shutdown) asks a running run to stop after its current chunk and
    waits for it, so the purge never outlives the engine it uses.
    """
    if every_hours <= 0:
        return
    chain = services.new_audit_chain()  # its own appender, synced under the audit lock
    stop = threading.Event()
    delay = first_delay_seconds
    while True:
        await asyncio.sleep(delay)
        delay = every_hours * 3600.0
        # One node runs it across a cluster: the holder of the lease, renewed at each run
        # and free for another node once it has not been renewed for a period and a half.
        ttl = timedelta(hours=every_hours * 1.5)
        try:
            lease = await asyncio.to_thread(
                leases.acquire, services.engine, LEASE, services.node_id, ttl, services.clock()
            )
        except Exception:
            log.exception("retention: the lease could not be read; next try in %.1f h", every_hours)
            continue
        if lease is None:
            log.info("retention: another node holds the lease; next look in %.1f h", every_hours)
            continue
        running = asyncio.ensure_future(
            asyncio.to_thread(
                run_retention,
                services.engine,
                policy,
                chain,
                services.clock(),
                stop=stop,
                analytics=services.analytics,
            )
        )
        try:
            run = await asyncio.shield(running)
        except asyncio.CancelledError:
            stop.set()  # the run commits its current chunk, then returns
            with contextlib.suppress(BaseException):
                await running
            raise
        except Exception:
            log.exception("retention run failed; next attempt in %.1f h", every_hours)
            continue
        if run.incomplete:
            delay = backlog_pause_seconds
