"""Applying the retention policy: erase what expired, and log that it was erased.

``service.retention.run_retention`` works one data class at a time
(``safeguards/retention_policy.py`` says what each holds), each in its own transaction, in
chunks of ``batch`` rows. A class that erased anything appends ONE audit entry (operation
``erase``, object type = the class, detail = count, cutoff and period in days, never the
erased content) in the same transaction: the erasure and its trace commit together or not
at all.

Why this may run beside the writer (which owns signals, incidents and events while the
server runs): it erases only what the writer never touches again: final incidents (closed,
cancelled), imported call history (``history_calls``, which the writer never reads), signals
that belong to no incident, and text or payload keys of rows that are
not part of an unfinished incident. Notes, people and media of an incident that is still
open or resolved are kept whatever their age, so a long-running response keeps its callback
numbers.

Audit entries are never deleted: their content is set to NULL and the leaf hash stays, so
every signed checkpoint still verifies.

Each class first finds what expired (walking an index a chunk at a time, from where the chunk
before stopped), then erases it by key. On SQLite that order matters: the driver begins the
transaction at its first write, and from then on the database's one write lock is held, so
the writer waits only while rows are erased, not while the class reads its way to them
(``tests/integration/test_retention.py``, "the writer is never locked out while retention
reads"). What is found stays found: the rows are ones the writer never changes again, and a
rewrite reads each chunk's rows again by key with its conditions tested anew.

The run itself (one transaction per class, with its audit entry) and the scheduled job are
``service/retention.py``; what is here erases, one class at a time, in the caller's
transaction.
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
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t

__all__ = [
    "ERASED_KEY",
    "MEDIA_KEYS",
    "NOTE_MARKER",
    "PEOPLE_KEYS",
    "PURGES",
    "RETENTION_ACTOR",
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
class PurgeResult:
    count: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    # What a class's reads found, a chunk a list: what its writes erase in a real run.
    chunks: list[list[int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PurgeJob:
    """What every class's purge needs to know."""

    policy: RetentionConfig
    cutoffs: dict[str, datetime]
    batch: int
    limit: int
    dry_run: bool
    stop: threading.Event | None

    def more(self, done: int) -> bool:
        """Another chunk may be taken: the run's limit is not reached and nobody asked the
        run to stop (the server shutting down)."""
        return done < self.limit and not (self.stop is not None and self.stop.is_set())

    def take(self, done: int) -> int:
        return min(self.batch, self.limit - done)


Purge = Callable[[sa.Connection, PurgeJob], PurgeResult]


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


def _find_incidents(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    """The final incidents whose period is over, by category group, in chunks of ids."""
    i = t.incidents
    policy, cutoffs = job.policy, job.cutoffs
    overrides = sorted(
        c for c, d in policy.incidents_by_category.items() if d != policy.incidents_days
    )
    groups: list[tuple[sa.ColumnElement[bool], datetime]] = [
        (i.c.category == c, cutoffs[f"incidents.{c}"]) for c in overrides
    ]
    # Every other category, and any retired one still stored, under the default period.
    groups.append((i.c.category.not_in(overrides), cutoffs[DataClass.INCIDENTS.value]))
    result = PurgeResult()
    per_category: dict[str, int] = {}
    for in_group, cutoff in groups:
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
            for r in rows:
                per_category[r.category] = per_category.get(r.category, 0) + 1
            result.count += len(ids)
            result.chunks.append(ids)
            if len(ids) < job.batch:
                break
    result.by_category = {c: per_category[c] for c in sorted(per_category)}
    result.detail = {"by_category": result.by_category, "signals": 0, "events": 0}
    if overrides:
        result.detail["category_cutoffs"] = {
            c: cutoffs[f"incidents.{c}"].isoformat() for c in overrides
        }
    return result


def _erase_incidents(conn: sa.Connection, found: PurgeResult) -> None:
    """Erases the incidents found, with everything that names them; counts their signals and
    events in the detail."""
    i = t.incidents
    signals = events = 0
    if found.chunks:
        # The newest may go: its ids are not given again. Once, before the first erasing:
        # every id found is at most the highest now.
        repo.keep_highest_ids(conn)
    for ids in found.chunks:
        signals += conn.execute(t.signals.delete().where(t.signals.c.incident_id.in_(ids))).rowcount
        events += conn.execute(t.events.delete().where(t.events.c.incident_id.in_(ids))).rowcount
        conn.execute(t.incident_desks.delete().where(t.incident_desks.c.incident_id.in_(ids)))
        # The public warnings published from them go with them (docs/cap.md).
        conn.execute(t.cap_alerts.delete().where(t.cap_alerts.c.incident_id.in_(ids)))
        # The webhook delivery log names them: it goes with them (docs/webhooks.md).
        conn.execute(
            t.webhook_deliveries.delete().where(t.webhook_deliveries.c.incident_id.in_(ids))
        )
        conn.execute(i.delete().where(i.c.id.in_(ids)))
    found.detail["signals"], found.detail["events"] = signals, events


def _find_history(conn: sa.Connection, job: PurgeJob, done: int) -> PurgeResult:
    """Imported history calls (docs/analytics.md) are incident data: erased with their units
    once their last recorded time (``closed_at``) is past the incidents period of their
    category. ``done``: rows of the class already erased in this run (the run's limit)."""
    h = t.history_calls
    policy, cutoffs = job.policy, job.cutoffs
    overrides = sorted(
        c for c, d in policy.incidents_by_category.items() if d != policy.incidents_days
    )
    groups: list[tuple[sa.ColumnElement[bool], datetime]] = [
        (h.c.category == c, cutoffs[f"incidents.{c}"]) for c in overrides
    ]
    groups.append((h.c.category.not_in(overrides), cutoffs[DataClass.INCIDENTS.value]))
    result = PurgeResult()
    per_category: dict[str, int] = {}
    for in_group, cutoff in groups:
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
            for r in rows:
                per_category[r.category] = per_category.get(r.category, 0) + 1
            result.count += len(ids)
            result.chunks.append(ids)
            if len(ids) < job.batch:
                break
    result.by_category = {c: per_category[c] for c in sorted(per_category)}
    return result


def _erase_history(conn: sa.Connection, found: PurgeResult) -> None:
    h = t.history_calls
    for ids in found.chunks:
        conn.execute(t.history_units.delete().where(t.history_units.c.history_call_id.in_(ids)))
        conn.execute(h.delete().where(h.c.id.in_(ids)))


def _purge_incident_data(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    """The incidents class: final incidents, then imported history calls. The count is both;
    ``by_category`` is the incidents'; the detail names the history calls apart. Both are
    found before either is erased (the module's docstring says why)."""
    result = _find_incidents(conn, job)
    history = _find_history(conn, job, result.count)
    if not job.dry_run:
        _erase_incidents(conn, result)
        _erase_history(conn, history)
    if history.count:
        result.count += history.count
        result.detail["history_calls"] = history.count
        result.detail["history_by_category"] = history.by_category
    return result


def _purge_signals(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    """Signals of no incident (record-only: a panel's periodic tests, its openings and
    closings; silenced ones), once received before the cutoff.

    They are read in the order of the ``incident_id`` index, from where the chunk before
    stopped, up to the newest signal received before the cutoff (found first, before
    anything is erased, so no write lock is held while it is sought). On SQLite that order
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
        ids = [int(r[0]) for r in rows]
        result.count += len(ids)
        last = int(rows[-1][1])
        result.chunks.append(ids)
        if len(ids) < job.batch:
            break
    if not job.dry_run and result.chunks:
        repo.keep_highest_ids(conn)
        for ids in result.chunks:
            conn.execute(s.delete().where(s.c.id.in_(ids)))
    return result


def _purge_notes(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    e = t.events
    text = e.c.detail["text"].as_string()
    note = e.c.detail["note"].as_string()
    where = sa.and_(
        e.c.at < job.cutoffs[DataClass.NOTES.value],
        sa.or_(
            sa.and_(e.c.type == EventType.NOTED.value, text.is_not(None), text != NOTE_MARKER),
            sa.and_(note.is_not(None), note != NOTE_MARKER),
        ),
        _not_in_unfinished(e.c.incident_id),
    )

    def erase(detail: dict[str, Any], type_: Any) -> dict[str, Any]:
        out = dict(detail)
        if type_ == EventType.NOTED.value and "text" in out:
            out["text"] = NOTE_MARKER
        if "note" in out:
            out["note"] = NOTE_MARKER
        return out

    return _rewrite_json(conn, job, e, e.c.id, e.c.detail, where, erase, extra=e.c.type)


def _payload_where(keys: Sequence[str], cutoff: datetime) -> sa.ColumnElement[bool]:
    s = t.signals
    return sa.and_(
        s.c.received_at < cutoff,
        sa.or_(*(s.c.payload[k].as_string().is_not(None) for k in keys)),
        _not_in_unfinished(s.c.incident_id),
    )


def _strip(keys: Sequence[str], cls: DataClass) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def erase(payload: dict[str, Any], _extra: Any) -> dict[str, Any]:
        out = {k: v for k, v in payload.items() if k not in keys}
        marks = out.get(ERASED_KEY)
        marks = [m for m in marks if isinstance(m, str)] if isinstance(marks, list) else []
        out[ERASED_KEY] = sorted({*marks, cls.value})
        return out

    return erase


def _purge_people(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    s = t.signals
    where = _payload_where(PEOPLE_KEYS, job.cutoffs[DataClass.PEOPLE.value])
    return _rewrite_json(
        conn, job, s, s.c.id, s.c.payload, where, _strip(PEOPLE_KEYS, DataClass.PEOPLE)
    )


def _purge_media(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    s = t.signals
    where = _payload_where(MEDIA_KEYS, job.cutoffs[DataClass.MEDIA.value])
    return _rewrite_json(
        conn, job, s, s.c.id, s.c.payload, where, _strip(MEDIA_KEYS, DataClass.MEDIA)
    )


def _rewrite_json(
    conn: sa.Connection,
    job: PurgeJob,
    table: sa.Table,
    key: sa.Column[Any],
    column: sa.Column[Any],
    where: sa.ColumnElement[bool],
    erase: Callable[[dict[str, Any], Any], dict[str, Any]],
    *,
    extra: sa.Column[Any] | None = None,
) -> PurgeResult:
    """Rewrites one JSON column of the rows matching ``where``: their keys found in key order
    and chunks, then each chunk's rows read again by key (``where`` tested anew) and
    rewritten."""
    result = PurgeResult()
    last: int | None = None
    while job.more(result.count):
        q = sa.select(key).where(where)
        if last is not None:
            q = q.where(key > last)
        keys = [
            int(k) for k in conn.execute(q.order_by(key).limit(job.take(result.count))).scalars()
        ]
        if not keys:
            break
        last = keys[-1]
        result.count += len(keys)
        result.chunks.append(keys)
        if len(keys) < job.batch:
            break
    if job.dry_run:
        return result
    cols: list[sa.ColumnElement[Any]] = [key, column]
    if extra is not None:
        cols.append(extra)
    stmt = table.update().where(key == sa.bindparam("b_key"))
    result.count = 0
    for keys in result.chunks:
        rows = conn.execute(sa.select(*cols).where(key.in_(keys), where).order_by(key)).all()
        if not rows:
            continue
        result.count += len(rows)
        conn.execute(
            stmt,
            [
                {
                    "b_key": r[0],
                    column.name: erase(dict(r[1] or {}), r[2] if extra is not None else None),
                }
                for r in rows
            ],
        )
    return result


def _purge_audit(conn: sa.Connection, job: PurgeJob) -> PurgeResult:
    a = t.audit_entries
    where = sa.and_(a.c.at < job.cutoffs[DataClass.AUDIT.value], a.c.entry.is_not(None))
    result = PurgeResult()
    first: int | None = None
    last: int | None = None
    while job.more(result.count):
        q = sa.select(a.c.seq).where(where)
        if last is not None:
            q = q.where(a.c.seq > last)
        seqs = [
            int(x)
            for x in conn.execute(q.order_by(a.c.seq).limit(job.take(result.count))).scalars()
        ]
        if not seqs:
            break
        first = seqs[0] if first is None else first
        last = seqs[-1]
        result.count += len(seqs)
        result.chunks.append(seqs)
        if len(seqs) < job.batch:
            break
    if not job.dry_run:
        for seqs in result.chunks:
            # Content only: the row and its leaf hash stay, and so does every checkpoint.
            conn.execute(a.update().where(a.c.seq.in_(seqs)).values(entry=None))
    if result.count:
        result.detail = {"first_seq": first, "last_seq": last}
    return result


PURGES: dict[DataClass, Purge] = {
    DataClass.INCIDENTS: _purge_incident_data,
    DataClass.SIGNALS: _purge_signals,
    DataClass.NOTES: _purge_notes,
    DataClass.PEOPLE: _purge_people,
    DataClass.MEDIA: _purge_media,
    DataClass.AUDIT: _purge_audit,
}
