"""Applying the retention policy: erase what expired, and log that it was erased.

``service.retention.run_retention`` works one data class at a time
(``safeguards/retention_policy.py`` says what each holds). Each class first finds what
expired (:attr:`Purge.find`: walking an index a chunk of ``batch`` keys at a time, from where
the chunk before stopped), then erases it a chunk at a time (:attr:`Purge.erase`), each chunk
in its own transaction with ONE audit entry (operation ``erase``, object type = the class,
detail = the chunk's count, the cutoff and period in days, never the erased content): the
erasure and its trace commit together or not at all. A run's entries share its actor and
time, which is how the transparency report counts runs.

Why this may run beside the writer (which owns signals, incidents and events while the
server runs): it erases only what the writer never touches again: final incidents (closed,
cancelled), imported call history (``history_calls``, which the writer never reads), signals
that belong to no incident, and text or payload keys of rows that are
not part of an unfinished incident. Notes, people and media of an incident that is still
open or resolved are kept whatever their age, so a long-running response keeps its callback
numbers. So what is found stays found: a rewrite still reads each chunk's rows again by key,
with its conditions tested anew.

Why find first and erase a chunk a transaction: on SQLite the database has one write lock,
which the driver takes at a transaction's first write and keeps until it ends. Reading inside
the erasing transaction made the writer (every alarm, every acknowledgement) wait while a
class read its way through the store; one transaction per class made it wait for the whole
class (1.25 s at once for 100,000 incidents). Now the lock is held for one chunk at a time,
and the run rests between chunks (``service/retention.py``), so the writer waits for a chunk
at most: 16 ms (``tests/integration/test_retention.py``; bench/README.md, "Find, then erase"
and "A transaction a chunk").

Audit entries are never deleted: their content is set to NULL and the leaf hash stays, so
every signed checkpoint still verifies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.events import EventType
from alarmdesk.domain.incident import FINAL, Status
from alarmdesk.safeguards.audit import Actor
from alarmdesk.safeguards.retention_policy import DataClass, RetentionConfig
from alarmdesk.store import tables as t

__all__ = [
    "ERASED_KEY",
    "MEDIA_KEYS",
    "NOTE_MARKER",
    "PEOPLE_KEYS",
    "PURGES",
    "RETENTION_ACTOR",
    "Chunk",
    "Erased",
    "Purge",
    "PurgeJob",
    "PurgeResult",
]

log = logging.getLogger(__name__)

RETENTION_ACTOR = Actor("system:retention", "system")

# What replaces erased note text; the event itself (who, when, which incident) stays.
NOTE_MARKER = "[erased under the retention policy]"
# A signal whose payload lost keys to retention lists the classes here.
ERASED_KEY = "retention_erased"
PEOPLE_KEYS: tuple[str, ...] = ("people", "plate", "plate_score")
# Everything that reaches media: a reference, and the Frigate event or review id from which
# alarmdesk builds its requests for the event's snapshot and clip (service/media.py).
MEDIA_KEYS: tuple[str, ...] = (
    "event_id",
    "review_id",
    "thumb_ref",
    "snapshot_ref",
    "snapshot_url",
    "snapshot",
    "clip_ref",
    "clip_url",
    "clip",
    "thumbnail",
    "thumbnail_url",
    "image",
    "image_url",
    "images",
    "video",
    "video_url",
    "recording",
    "recording_url",
    "media",
    "media_url",
    "attachments",
)

FINAL_VALUES = tuple(s.value for s in FINAL)
UNFINISHED_VALUES = tuple(s.value for s in Status if s not in FINAL)


# -- one class each ------------------------------------------------------------------------------


@dataclass(slots=True)
class Chunk:
    """Keys a class found, erased together in one transaction."""

    keys: list[int]
    # The incidents class: "incidents" or "history_calls", and the chunk's rows by category.
    kind: str = ""
    by_category: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class PurgeResult:
    """What a class's walk found (and what a dry run reports)."""

    count: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)


@dataclass(slots=True)
class Erased:
    """What one chunk's transaction erased: its count and its audit entry's detail."""

    count: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PurgeJob:
    """What every class's purge needs to know."""

    policy: RetentionConfig
    cutoffs: dict[str, datetime]
    batch: int
    limit: int
    stop: threading.Event | None

    def more(self, done: int) -> bool:
        """Another chunk may be taken: the run's limit is not reached and nobody asked the
        run to stop (the server shutting down)."""
        return done < self.limit and not (self.stop is not None and self.stop.is_set())

    def take(self, done: int) -> int:
        return min(self.batch, self.limit - done)


@dataclass(frozen=True, slots=True)
class Purge:
    """One data class: ``find`` reads what expired, in chunks (no write); ``erase`` erases
    one chunk in the caller's transaction. ``keeps_ids``: it deletes rows whose ids the
    writer gives, so each table's highest id is kept first (``repository.keep_highest_ids``,
    in the transaction of the first chunk: every id found is at most the highest then)."""

    find: Callable[[sa.Connection, PurgeJob], PurgeResult]
    erase: Callable[[sa.Connection, PurgeJob, Chunk], Erased]
    keeps_ids: bool = False


def _unfinished_incidents() -> sa.Select[tuple[int]]:
    i = t.incidents
    return sa.select(i.c.id).where(i.c.status.in_(UNFINISHED_VALUES))


def _not_in_unfinished(column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The row belongs to no incident, or to a final one."""
    return sa.or_(column.is_(None), column.not_in(_unfinished_incidents()))


def _expired_final(cutoff: datetime) -> sa.ColumnElement[bool]:
    """A final incident that ended (closed, or was cancelled) before ``cutoff``.

    One CASE expression, not an OR of (status, time) pairs: given the OR, SQLite reads every
    closed and every cancelled incident through the (status, priority) index and sorts them
    by id, on every chunk, so a run took time in the square of the incidents stored (140 ms
    a chunk at 200,000). With nothing it can look up, it walks the primary key from the
    chunk before, as PostgreSQL does either way (bench/README.md, "Retention's reads")."""
    i = t.incidents
    ended = sa.case(
        (i.c.status == Status.CLOSED.value, i.c.closed_at),
        (i.c.status == Status.CANCELLED.value, i.c.cancelled_at),
    )
    return ended < cutoff


def _overrides(job: PurgeJob) -> list[str]:
    """The categories whose incidents period is not the default."""
    policy = job.policy
    return sorted(c for c, d in policy.incidents_by_category.items() if d != policy.incidents_days)


def _category_groups(
    job: PurgeJob, category: sa.Column[Any]
) -> list[tuple[sa.ColumnElement[bool], datetime]]:
    """(rows of a group, its cutoff) for each of :func:`_overrides` and then for every other
    category (a retired one still stored included)."""
    overrides, cutoffs = _overrides(job), job.cutoffs
    groups: list[tuple[sa.ColumnElement[bool], datetime]] = [
        (category == c, cutoffs[f"incidents.{c}"]) for c in overrides
    ]
    groups.append((category.not_in(overrides), cutoffs[DataClass.INCIDENTS.value]))
    return groups


def _take(result: PurgeResult, chunk: Chunk, categories: Sequence[str] = ()) -> None:
    """Adds a chunk the walk found to the result (with its rows' categories, if any)."""
    for c in categories:
        chunk.by_category[c] = chunk.by_category.get(c, 0) + 1
        result.by_category[c] = result.by_category.get(c, 0) + 1
    result.count += len(chunk.keys)
    result.chunks.append(chunk)


def _find_incidents(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    """The final incidents whose period is over, by category group, in chunks of ids."""
    i = t.incidents
    result = PurgeResult()
    for in_group, cutoff in _category_groups(job, i.c.category):
        # Nothing opened at or after the cutoff ended before it: the walk by id stops at the
        # newest incident opened before it, not at the newest incident.
        top = conn.execute(sa.select(sa.func.max(i.c.id)).where(i.c.opened_at < cutoff)).scalar()
        if top is None:
            continue
        last: int | None = None
        while job.more(result.count):
            q = sa.select(i.c.id, i.c.category).where(
                i.c.id <= top, in_group, _expired_final(cutoff)
            )
            if last is not None:
                q = q.where(i.c.id > last)
            rows = conn.execute(q.order_by(i.c.id).limit(job.take(result.count))).all()
            if not rows:
                break
            ids = [int(r.id) for r in rows]
            last = ids[-1]
            _take(result, Chunk(ids, "incidents"), [r.category for r in rows])
            if len(ids) < job.batch:
                break
    result.by_category = dict(sorted(result.by_category.items()))
    result.detail = {"by_category": result.by_category}
    if cutoffs := _category_cutoffs(job):
        result.detail["category_cutoffs"] = cutoffs
    return result


def _category_cutoffs(job: PurgeJob) -> dict[str, str]:
    """The cutoff of each category with a period of its own, for the audit entries."""
    return {c: job.cutoffs[f"incidents.{c}"].isoformat() for c in _overrides(job)}


def _find_history(conn: sa.Connection, job: PurgeJob, done: int) -> PurgeResult:
    """Imported history calls (docs/analytics.md) are incident data: erased with their units
    once their last recorded time (``closed_at``) is past the incidents period of their
    category. ``done``: rows of the class already found in this run (the run's limit)."""
    h = t.history_calls
    result = PurgeResult()
    for in_group, cutoff in _category_groups(job, h.c.category):
        # In the order of the closed_at index, from where the chunk before stopped: each chunk
        # reads its own rows only (in id order, every chunk read and sorted every expired call).
        last: tuple[datetime, int] | None = None
        while job.more(done + result.count):
            q = sa.select(h.c.id, h.c.category, h.c.closed_at).where(
                in_group, h.c.closed_at < cutoff
            )
            if last is not None:
                at, key = last
                # the first term bounds the index's range; the pair, the rows within it
                q = q.where(
                    h.c.closed_at >= at,
                    sa.or_(h.c.closed_at > at, sa.and_(h.c.closed_at == at, h.c.id > key)),
                )
            rows = conn.execute(
                q.order_by(h.c.closed_at, h.c.id).limit(job.take(done + result.count))
            ).all()
            if not rows:
                break
            ids = [int(r.id) for r in rows]
            last = (rows[-1].closed_at, ids[-1])
            _take(result, Chunk(ids, "history_calls"), [r.category for r in rows])
            if len(ids) < job.batch:
                break
    result.by_category = dict(sorted(result.by_category.items()))
    return result


def _find_incident_data(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    """The incidents class: final incidents, then imported history calls. The count is both;
    ``by_category`` is the incidents'; the detail names the history calls apart."""
    result = _find_incidents(conn, job)
    history = _find_history(conn, job, result.count)
    if history.count:
        result.count += history.count
        result.chunks += history.chunks
        result.detail["history_calls"] = history.count
        result.detail["history_by_category"] = history.by_category
    return result


def _erase_incident_data(conn: sa.Connection, job: PurgeJob, chunk: Chunk) -> Erased:
    """Erases a chunk of incidents, with everything that names them, and counts their
    signals and events; or a chunk of history calls, with their units. Every entry of the
    class has the same keys; the run's are summed by the transparency report."""
    ids = chunk.keys
    detail: dict[str, Any] = {"by_category": {}, "signals": 0, "events": 0}
    if cutoffs := _category_cutoffs(job):
        detail["category_cutoffs"] = cutoffs
    if chunk.kind == "history_calls":
        h = t.history_calls
        conn.execute(t.history_units.delete().where(t.history_units.c.history_call_id.in_(ids)))
        conn.execute(h.delete().where(h.c.id.in_(ids)))
        detail["history_calls"] = len(ids)
        detail["history_by_category"] = dict(sorted(chunk.by_category.items()))
        return Erased(len(ids), detail)
    i = t.incidents
    detail["by_category"] = dict(sorted(chunk.by_category.items()))
    s_, e_ = t.signals, t.events
    detail["signals"] = conn.execute(s_.delete().where(s_.c.incident_id.in_(ids))).rowcount
    detail["events"] = conn.execute(e_.delete().where(e_.c.incident_id.in_(ids))).rowcount
    conn.execute(t.incident_desks.delete().where(t.incident_desks.c.incident_id.in_(ids)))
    # The public warnings published from them go with them (docs/cap.md).
    conn.execute(t.cap_alerts.delete().where(t.cap_alerts.c.incident_id.in_(ids)))
    # The webhook delivery log names them: it goes with them (docs/webhooks.md).
    conn.execute(t.webhook_deliveries.delete().where(t.webhook_deliveries.c.incident_id.in_(ids)))
    conn.execute(i.delete().where(i.c.id.in_(ids)))
    return Erased(len(ids), detail)


def _find_signals(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    """Signals of no incident (record-only: a panel's periodic tests, its openings and
    closings; silenced ones), once received before the cutoff.

    They are read in the order of the ``incident_id`` index, from where the chunk before
    stopped, up to the newest signal received before the cutoff. On SQLite that order
    is the row id's: the index's entries for no incident are kept in row-id order, not
    ``id`` order, and in ``id`` order every chunk read and sorted every signal of no incident
    (207 ms a chunk at 1,000,000; an alarm-receiving centre stores that many in weeks).
    The row id is only the walk's place within this run; what is erased is named by id."""
    s = t.signals
    cutoff = job.cutoffs[DataClass.SIGNALS.value]
    order: sa.ColumnElement[int] = (
        sa.literal_column("signals.rowid") if conn.dialect.name == "sqlite" else s.c.id
    )
    top = conn.execute(sa.select(sa.func.max(order)).where(s.c.received_at < cutoff)).scalar()
    result = PurgeResult()
    if top is None:
        return result
    where = sa.and_(s.c.incident_id.is_(None), order <= top, s.c.received_at < cutoff)
    last: int | None = None
    while job.more(result.count):
        q = sa.select(s.c.id, order).where(where)
        if last is not None:
            q = q.where(order > last)
        rows = conn.execute(q.order_by(order).limit(job.take(result.count))).all()
        if not rows:
            break
        last = int(rows[-1][1])
        _take(result, Chunk([int(r[0]) for r in rows]))
        if len(rows) < job.batch:
            break
    return result


def _find_signal_data(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    """The signals class: signals of no incident, then parked signals (distributed mode:
    ``store/parked.py``) received before the cutoff, waiting or put back. The count is both;
    the detail names the parked ones apart."""
    result = _find_signals(conn, job)
    p = t.parked_signals
    expired = p.c.received_at < job.cutoffs[DataClass.SIGNALS.value]
    found = _find_keys(conn, job, p.c.id, expired, result.count, "parked_signals")
    if found.count:
        result.count += found.count
        result.chunks += found.chunks
        result.detail["parked_signals"] = found.count
    return result


def _erase_signals(conn: sa.Connection, _job: PurgeJob, chunk: Chunk) -> Erased:
    if chunk.kind == "parked_signals":
        p = t.parked_signals
        conn.execute(p.delete().where(p.c.id.in_(chunk.keys)))
        return Erased(len(chunk.keys), {"parked_signals": len(chunk.keys)})
    s = t.signals
    conn.execute(s.delete().where(s.c.id.in_(chunk.keys)))
    return Erased(len(chunk.keys))


def _find_keys(
    conn: sa.Connection,
    job: PurgeJob,
    key: sa.Column[Any],
    where: sa.ColumnElement[bool],
    done: int = 0,
    kind: str = "",
) -> PurgeResult:
    """The keys of the rows matching ``where``, in key order and chunks of ``kind``.
    ``done``: rows of the class already found in this run (the run's limit)."""
    result = PurgeResult()
    last: int | None = None
    while job.more(done + result.count):
        q = sa.select(key).where(where)
        if last is not None:
            q = q.where(key > last)
        limit = job.take(done + result.count)
        keys = [int(k) for k in conn.execute(q.order_by(key).limit(limit)).scalars()]
        if not keys:
            break
        last = keys[-1]
        _take(result, Chunk(keys, kind))
        if len(keys) < job.batch:
            break
    return result


@dataclass(frozen=True, slots=True)
class _Rewrite:
    """A class that rewrites one JSON column of the rows matching ``where``: its keys found
    in key order and chunks, then each chunk's rows read again by key (``where`` tested
    anew: a chunk erases what still matches) and rewritten by ``erase``."""

    table: sa.Table
    key: sa.Column[Any]
    column: sa.Column[Any]
    where: Callable[[PurgeJob], sa.ColumnElement[bool]]
    change: Callable[[dict[str, Any], Any], dict[str, Any]]
    extra: sa.Column[Any] | None = None

    def find(self, conn: sa.Connection, job: PurgeJob) -> PurgeResult:
        return _find_keys(conn, job, self.key, self.where(job))

    def erase(self, conn: sa.Connection, job: PurgeJob, chunk: Chunk) -> Erased:
        key, column, extra = self.key, self.column, self.extra
        cols: list[sa.ColumnElement[Any]] = [key, column]
        if extra is not None:
            cols.append(extra)
        rows = conn.execute(
            sa.select(*cols).where(key.in_(chunk.keys), self.where(job)).order_by(key)
        ).all()
        if rows:
            conn.execute(
                self.table.update().where(key == sa.bindparam("b_key")),
                [
                    {
                        "b_key": r[0],
                        column.name: self.change(
                            dict(r[1] or {}), r[2] if extra is not None else None
                        ),
                    }
                    for r in rows
                ],
            )
        return Erased(len(rows))

    def purge(self) -> Purge:
        return Purge(self.find, self.erase)


def _notes_where(job: PurgeJob) -> sa.ColumnElement[bool]:
    e = t.events
    text = e.c.detail["text"].as_string()
    note = e.c.detail["note"].as_string()
    return sa.and_(
        e.c.at < job.cutoffs[DataClass.NOTES.value],
        sa.or_(
            sa.and_(e.c.type == EventType.NOTED.value, text.is_not(None), text != NOTE_MARKER),
            sa.and_(note.is_not(None), note != NOTE_MARKER),
        ),
        _not_in_unfinished(e.c.incident_id),
    )


def _erase_note(detail: dict[str, Any], type_: Any) -> dict[str, Any]:
    out = dict(detail)
    if type_ == EventType.NOTED.value and "text" in out:
        out["text"] = NOTE_MARKER
    if "note" in out:
        out["note"] = NOTE_MARKER
    return out


def _payload_where(
    keys: Sequence[str], cls: DataClass
) -> Callable[[PurgeJob], sa.ColumnElement[bool]]:
    def where(job: PurgeJob) -> sa.ColumnElement[bool]:
        s = t.signals
        return sa.and_(
            s.c.received_at < job.cutoffs[cls.value],
            sa.or_(*(s.c.payload[k].as_string().is_not(None) for k in keys)),
            _not_in_unfinished(s.c.incident_id),
        )

    return where


def _strip(keys: Sequence[str], cls: DataClass) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def erase(payload: dict[str, Any], _extra: Any) -> dict[str, Any]:
        out = {k: v for k, v in payload.items() if k not in keys}
        marks = out.get(ERASED_KEY)
        marks = [m for m in marks if isinstance(m, str)] if isinstance(marks, list) else []
        out[ERASED_KEY] = sorted({*marks, cls.value})
        return out

    return erase


def _payload_rewrite(keys: Sequence[str], cls: DataClass) -> Purge:
    s = t.signals
    return _Rewrite(s, s.c.id, s.c.payload, _payload_where(keys, cls), _strip(keys, cls)).purge()


def _find_audit(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    a = t.audit_entries
    where = sa.and_(a.c.at < job.cutoffs[DataClass.AUDIT.value], a.c.entry.is_not(None))
    return _find_keys(conn, job, a.c.seq, where)


def _erase_audit(conn: sa.Connection, _job: PurgeJob, chunk: Chunk) -> Erased:
    a = t.audit_entries
    # Content only: the row and its leaf hash stay, and so does every checkpoint.
    conn.execute(a.update().where(a.c.seq.in_(chunk.keys)).values(entry=None))
    return Erased(len(chunk.keys), {"first_seq": chunk.keys[0], "last_seq": chunk.keys[-1]})


_events = t.events
PURGES: dict[DataClass, Purge] = {
    DataClass.INCIDENTS: Purge(_find_incident_data, _erase_incident_data, keeps_ids=True),
    DataClass.SIGNALS: Purge(_find_signal_data, _erase_signals, keeps_ids=True),
    DataClass.NOTES: _Rewrite(
        _events, _events.c.id, _events.c.detail, _notes_where, _erase_note, _events.c.type
    ).purge(),
    DataClass.PEOPLE: _payload_rewrite(PEOPLE_KEYS, DataClass.PEOPLE),
    DataClass.MEDIA: _payload_rewrite(MEDIA_KEYS, DataClass.MEDIA),
    DataClass.AUDIT: Purge(_find_audit, _erase_audit),
}
