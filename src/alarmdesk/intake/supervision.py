"""Supervision: devices that must check in, and the incident when one falls silent.

A supervised device (a ``devices`` row with ``checkin_seconds``) proves it is alive by
anything it sends: DC-09 link tests (``NULL``), Contact ID 602 / SIA RP periodic tests, any
event; an MQTT device by its availability topic. Missing one interval plus a grace period
opens a *communication failure* incident (type ``EQCOMM``); the next check-in restores it
(device condition ``restored``; the operator still closes it).

Two parts:

- :class:`Tracker`, pure: a dict of watches and ONE min-heap of deadlines, one heap entry per
  device. A check-in only moves the device's deadline (O(1), no heap push); when an entry
  comes up, a device that checked in meanwhile is pushed again at its new deadline
  (lazy re-arming), so memory stays at one entry per device and a check-in costs a dict
  lookup. :meth:`Tracker.due` pops only what is due: no scan, no query per device.
- :class:`Supervisor`, the asyncio driver: pops due deadlines on a timer, turns them (and
  restores) into signals and stores them through the writer; rebuilds its state from the
  store at start (:func:`load_state`: two queries, whatever the number of devices).

Supervision incidents are told apart from a panel's own communication-trouble reports (CID
350-359, SIA YC/LT/NT, also ``EQCOMM``) by ``payload.label = "supervision"``, which puts them
under their own correlation key: a check-in restores the missed-check-in incident only.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.correlation import CorrelationKey
from alarmdesk.domain.incident import FINAL
from alarmdesk.domain.signal import SignalIn, SourceKind
from alarmdesk.intake.devices import Device, DeviceRegistry, SignalSink, store
from alarmdesk.store import tables as t

log = logging.getLogger(__name__)

EQCOMM = "EQCOMM"
LABEL = "supervision"  # payload label: the correlation key of supervision incidents
#: After a restart every device gets at least this long (or its interval, if shorter) to
#: check in again before it counts as missing: the outage was ours, not the device's.
STARTUP_ALLOWANCE = 600.0
#: How long to wait before retrying to store a miss the writer refused.
RETRY_SECONDS = 5.0


@dataclass(slots=True)
class _Watch:
    interval: float | None  # seconds; None: no timer (availability-only devices)
    deadline: float | None  # epoch seconds; None while failed or without interval
    last: float | None  # last check-in, epoch seconds
    failed: bool = False
    queued: bool = False  # has an entry in the heap


class Tracker:
    """Deadlines of supervised devices. Times are epoch seconds (floats).

    Args:
        grace: seconds after a missed interval before the device counts as missing.
    """

    def __init__(self, grace: float = 30.0) -> None:
        self.grace = grace
        self._watches: dict[str, _Watch] = {}
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        return len(self._watches)

    def __contains__(self, device_id: object) -> bool:
        return device_id in self._watches

    @property
    def heap_size(self) -> int:
        return len(self._heap)

    def watch(
        self,
        device_id: str,
        interval: float | None,
        now: float,
        *,
        last: float | None = None,
        failed: bool = False,
        startup: bool = False,
    ) -> None:
        """Starts (or updates) supervising a device.

        Args:
            interval: expected seconds between check-ins; ``None`` for devices that only
                report up/down (MQTT availability).
            last: its last known check-in.
            failed: it is already known to be missing (an open supervision incident).
            startup: the receiver just (re)started; see :data:`STARTUP_ALLOWANCE`.
        """
        w = self._watches.get(device_id)
        if w is not None:  # a reload: keep its state, take the new interval
            w.interval = interval
            if interval is not None and w.deadline is None and not w.failed:
                self._arm(device_id, w, now + interval + self.grace)
            return
        w = _Watch(interval=interval, deadline=None, last=last, failed=failed)
        self._watches[device_id] = w
        if failed or interval is None:
            return
        if last is None:
            deadline = now + interval
        else:
            allowance = min(interval, STARTUP_ALLOWANCE) if startup else 0.0
            deadline = max(last + interval, now + allowance)
        self._arm(device_id, w, deadline + self.grace)

    def unwatch(self, device_id: str) -> None:
        """Stops supervising a device (its heap entry is skipped when it comes up)."""
        self._watches.pop(device_id, None)

    def ids(self) -> set[str]:
        return set(self._watches)

    def failed(self) -> set[str]:
        return {k for k, w in self._watches.items() if w.failed}

    def is_failed(self, device_id: str) -> bool:
        w = self._watches.get(device_id)
        return w is not None and w.failed

    def last_checkin(self, device_id: str) -> float | None:
        w = self._watches.get(device_id)
        return w.last if w is not None else None

    def interval(self, device_id: str) -> float | None:
        w = self._watches.get(device_id)
        return w.interval if w is not None else None

    def checkin(self, device_id: str, now: float) -> bool:
        """Records a check-in; True when it ends a failure (a restore is due)."""
        w = self._watches.get(device_id)
        if w is None:
            return False
        w.last = now
        was_failed = w.failed
        w.failed = False
        if w.interval is not None:
            deadline = now + w.interval + self.grace
            if w.queued:
                w.deadline = deadline  # the heap entry is re-armed lazily when it comes up
            else:
                self._arm(device_id, w, deadline)
        return was_failed

    def down(self, device_id: str) -> bool:
        """Marks a device missing now (e.g. its last will arrived); True if it was not."""
        w = self._watches.get(device_id)
        if w is None or w.failed:
            return False
        w.failed = True
        w.deadline = None
        return True

    def set_failed(self, device_id: str, failed: bool, now: float) -> None:
        """Corrects the state after the store refused a signal or an operator closed one."""
        w = self._watches.get(device_id)
        if w is None:
            return
        w.failed = failed
        if failed:
            w.deadline = None
        elif w.interval is not None:
            self._arm(device_id, w, now + w.interval + self.grace)

    def rearm(self, device_id: str, at: float) -> None:
        """Makes a device due again at ``at`` (a miss that could not be stored is retried)."""
        w = self._watches.get(device_id)
        if w is None:
            return
        w.failed = False
        self._arm(device_id, w, at)

    def due(self, now: float, limit: int | None = None) -> list[str]:
        """Pops the devices whose deadline has passed (``deadline < now``), marks them failed
        and returns them, at most ``limit``."""
        out: list[str] = []
        heap = self._heap
        while heap and heap[0][0] < now and (limit is None or len(out) < limit):
            _, device_id = heapq.heappop(heap)
            w = self._watches.get(device_id)
            if w is None:
                continue  # unwatched since
            w.queued = False
            if w.failed or w.deadline is None:
                continue
            if w.deadline >= now:  # checked in since this entry was pushed
                heapq.heappush(heap, (w.deadline, device_id))
                w.queued = True
                continue
            w.failed = True
            w.deadline = None
            out.append(device_id)
        return out

    def next_deadline(self) -> float | None:
        """The earliest heap entry (maybe stale: the true deadline is never earlier)."""
        return self._heap[0][0] if self._heap else None

    def _arm(self, device_id: str, w: _Watch, deadline: float) -> None:
        # With an entry already queued only the deadline moves. Deadlines move earlier only
        # if the clock is set back or an interval shrinks; the miss is then seen when the
        # queued entry comes up, at the latest its old deadline.
        w.deadline = deadline
        if not w.queued:
            heapq.heappush(self._heap, (deadline, device_id))
            w.queued = True


# -------------------------------------------------------------------------- the store


@dataclass(frozen=True, slots=True)
class StoredState:
    """What the store says about supervised devices."""

    failed: frozenset[str]  # devices with an open, active supervision incident
    last: dict[str, datetime]  # last signal received from each equipment source


def supervision_key(device_id: str) -> CorrelationKey:
    """The correlation key of the supervision incident of ``device_id``: the key the pipeline
    gives the signals this module sends (EQCOMM, label "supervision", no zone)."""
    return CorrelationKey.equipment(device_id, None, HarmCategory.EQUIPMENT, LABEL, EQCOMM)


def open_supervision_incidents(conn: sa.Connection) -> frozenset[str]:
    """Source ids with an open supervision incident whose device is still missing."""
    q = sa.select(t.incidents.c.source_id, t.incidents.c.correlation_key).where(
        t.incidents.c.type_code == EQCOMM,
        t.incidents.c.status.not_in([s.value for s in FINAL]),
        t.incidents.c.condition == "active",
        t.incidents.c.correlation_key.is_not(None),
    )
    return frozenset(
        r.source_id
        for r in conn.execute(q)
        if CorrelationKey.parse(r.correlation_key) == supervision_key(r.source_id)
    )


def load_state(
    engine: sa.Engine, now: datetime, horizon: timedelta, *, last: bool = True
) -> StoredState:
    """Two queries: open supervision incidents, and the last signal per equipment source.

    Only signals received within ``horizon`` of ``now`` are looked at (they bound the scan,
    and anything older makes no difference to a deadline). ``last=False`` skips that scan.
    """
    with engine.connect() as conn:
        failed = open_supervision_incidents(conn)
        if not last:
            return StoredState(failed=failed, last={})
        q = (
            sa.select(t.signals.c.source_id, sa.func.max(t.signals.c.received_at))
            .where(
                t.signals.c.source_kind == SourceKind.EQUIPMENT.value,
                t.signals.c.received_at >= now - horizon,
            )
            .group_by(t.signals.c.source_id)
        )
        seen = {sid: _aware(at) for sid, at in conn.execute(q) if at is not None}
    return StoredState(failed=failed, last=seen)


def _aware(at: datetime | str) -> datetime:
    # max() over a UTCDateTime column comes back raw on SQLite (no TypeDecorator on
    # aggregates): a naive datetime or an ISO string, always UTC.
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# ------------------------------------------------------------------------- the driver


@dataclass
class SupervisorStats:
    missed: int = 0
    restored: int = 0
    store_failures: int = 0
    checkins: int = 0


@dataclass
class Supervisor:
    """Runs a :class:`Tracker` against the clock and stores what it finds.

    Args:
        sink: where signals go (the writer).
        clock: the receiver clock (aware datetimes).
        grace: seconds past a missed interval before a device is missing.
        tick: longest sleep between two looks at the heap.
        batch: most signals stored in one write.
    """

    sink: SignalSink
    clock: Callable[[], datetime]
    grace: float = 30.0
    tick: float = 1.0
    batch: int = 1000
    registry: DeviceRegistry = field(default_factory=DeviceRegistry)
    tracker: Tracker = field(init=False)
    stats: SupervisorStats = field(default_factory=SupervisorStats)
    _restores: list[str] = field(default_factory=list)
    _wake: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.tracker = Tracker(self.grace)

    # -- state ---------------------------------------------------------------------------

    def load(self, registry: DeviceRegistry, state: StoredState, *, startup: bool) -> None:
        """Watches the registry's supervised devices (again), with the stored state."""
        self.registry = registry
        now = self.clock().timestamp()
        supervised = {d.id: d for d in registry.supervised()}
        for device_id in self.tracker.ids() - supervised.keys():
            if self.tracker.interval(device_id) is not None:
                self.tracker.unwatch(device_id)
        for d in supervised.values():
            last = state.last.get(d.id)
            self.tracker.watch(
                d.id,
                float(d.checkin_seconds or 0) or None,
                now,
                last=last.timestamp() if last is not None else None,
                failed=d.id in state.failed,
                startup=startup,
            )
        if not startup:
            # An operator may have closed a supervision incident while the device is still
            # silent: watch it again, so that a further silence opens a new one.
            for device_id in self.tracker.failed() - state.failed:
                self.tracker.set_failed(device_id, False, now)

    def watch_availability(self, device_id: str, *, failed: bool) -> None:
        """Supervises a device that reports up/down itself (no timer)."""
        if device_id not in self.tracker:
            self.tracker.watch(device_id, None, self.clock().timestamp(), failed=failed)

    # -- the hot path ----------------------------------------------------------------------

    def checkin(self, device_id: str) -> None:
        """A supervised device showed life; a restore is stored in the background if due."""
        self.stats.checkins += 1
        if self.tracker.checkin(device_id, self.clock().timestamp()):
            self._restores.append(device_id)
            if self._wake is not None:
                self._wake.set()

    def checkin_signal(self, device_id: str) -> SignalIn | None:
        """A check-in whose restore the caller stores itself (before acknowledging)."""
        self.stats.checkins += 1
        if self.tracker.checkin(device_id, self.clock().timestamp()):
            return self.restore_signal(device_id)
        return None

    def down_signal(self, device_id: str, reason: str) -> SignalIn | None:
        """The device says it is gone (MQTT last will): the incident to store, if new."""
        if self.tracker.down(device_id):
            return self.missed_signal(device_id, reason=reason)
        return None

    # -- signals ---------------------------------------------------------------------------

    def missed_signal(self, device_id: str, *, reason: str = "missed_checkin") -> SignalIn:
        now = self.clock()
        device = self.registry.get(device_id)
        interval = self.tracker.interval(device_id)
        last = self.tracker.last_checkin(device_id)
        last_at = datetime.fromtimestamp(last, UTC) if last is not None else None
        if reason == "missed_checkin":
            silent = (
                f"nothing received for {int(now.timestamp() - last)} s"
                if last
                else ("nothing received since supervision started")
            )
            summary = f"Missed check-in: {silent} (expected every {int(interval or 0)} s)"
        else:
            summary = f"Device reports itself unavailable ({reason})"
        payload: dict[str, object] = {"label": LABEL, "reason": reason}
        if interval is not None:
            payload["interval_seconds"] = interval
            payload["grace_seconds"] = self.grace
        if last_at is not None:
            payload["last_checkin"] = last_at.isoformat()
        return self._signal(device_id, device, now, summary, payload, "active")

    def restore_signal(self, device_id: str) -> SignalIn:
        device = self.registry.get(device_id)
        payload: dict[str, object] = {"label": LABEL, "reason": "checked_in"}
        return self._signal(
            device_id, device, self.clock(), "Device checked in again", payload, "restored"
        )

    def _signal(
        self,
        device_id: str,
        device: Device | None,
        now: datetime,
        summary: str,
        payload: dict[str, object],
        condition: str,
    ) -> SignalIn:
        site = f" — {device.site}" if device is not None and device.site else ""
        return SignalIn(
            source_kind=SourceKind.EQUIPMENT,
            source_id=device_id,
            type_code=EQCOMM,
            occurred_at=now,
            location=device.location(None) if device is not None else None,
            summary=(summary + site)[:1000],
            payload=payload,
            condition="restored" if condition == "restored" else "active",
            record_only=bool(device is not None and device.test_mode and condition == "active"),
        )

    # -- the driver --------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Stores the misses that are due and the restores waiting; returns how many signals."""
        now = self.clock()
        stored = 0
        while True:
            missed = self.tracker.due(now.timestamp(), limit=self.batch)
            if not missed:
                break
            stored += await self._store_misses(missed, now)
        while self._restores:
            ids, self._restores = self._restores[: self.batch], self._restores[self.batch :]
            stored += await self._store_restores(ids, now)
        return stored

    async def _store_misses(self, ids: Sequence[str], now: datetime) -> int:
        signals = [self.missed_signal(i) for i in ids]
        try:
            await store(self.sink, signals)
        except Exception:
            self.stats.store_failures += 1
            log.exception("storing %d missed check-ins failed; retrying", len(ids))
            for i in ids:
                self.tracker.rearm(i, now.timestamp() + RETRY_SECONDS)
            return 0
        self.stats.missed += len(ids)
        return len(ids)

    async def _store_restores(self, ids: Iterable[str], now: datetime) -> int:
        ids = [i for i in ids if not self.tracker.is_failed(i)]  # failed again meanwhile
        signals = [self.restore_signal(i) for i in ids]
        try:
            await store(self.sink, signals)
        except Exception:
            self.stats.store_failures += 1
            log.exception("storing %d restores failed; the next check-in retries", len(ids))
            for i in ids:
                self.tracker.set_failed(i, True, now.timestamp())
            return 0
        self.stats.restored += len(ids)
        return len(ids)

    async def run(self) -> None:
        """Looks at the heap every ``tick`` seconds (at once when a restore waits), forever.

        It does not sleep until the next deadline: with 100,000 devices a deadline falls
        every millisecond, and waking for each costs more than the work. A miss is seen
        within ``tick`` of its deadline, against intervals of minutes.
        """
        self._wake = asyncio.Event()
        while True:
            try:
                await self.run_once()
            except Exception:  # never let supervision die silently
                log.exception("supervision round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.tick)
            self._wake.clear()
