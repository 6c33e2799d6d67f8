"""The audit log in the database: append entries as Merkle leaves, sign checkpoints.

One :class:`AuditChain` appends inside the caller's transaction, so an action and its
audit entry commit together or not at all. The chain's in-memory tree is checked against
the database at every append (one ``max(seq)`` query) and rebuilt from the last checkpoint's
frontier when someone else (the command line) appended in between.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from alarmdesk.domain.errors import ConfigError
from alarmdesk.safeguards.audit import AuditEvent, entry_of
from alarmdesk.safeguards.auditlog_file import checkpoint_line, entry_line, erased_line
from alarmdesk.safeguards.checkpoint import check_key_pair, generate_key, sign_checkpoint
from alarmdesk.safeguards.merkle import MerkleAccumulator, canonical_entry, leaf_hash
from alarmdesk.store import tables as t
from alarmdesk.store.bulk import BulkInsert

KEY_NAME = "alarmdesk-audit"
AUDIT_LOCK_KEY = 0x6175646974  # "audit": every appender takes this lock first


# The three statements of every append, rendered once and handed to the driver: through
# SQLAlchemy Core (compile-cache look-up, execution context) they were a fifth of the writer's
# work per transaction (py-spy, single-signal requests: one transaction each). The SQL is
# the same as Core rendered.
_LOCK_SQL = {
    "postgresql": f"SELECT pg_advisory_xact_lock({AUDIT_LOCK_KEY})",
    "sqlite": "UPDATE audit_checkpoints SET size = size WHERE 0",
}
_TOP_SQL = "SELECT max(seq) FROM audit_entries"


def lock_audit(conn: sa.Connection) -> None:
    """Serialises appenders of the audit log until the transaction ends, so two of them (the
    writer, the command line, retention, a report signing a checkpoint) never compute the
    same next sequence number or checkpoint size.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: a write that changes nothing
    takes the database's single write lock before the chain reads ``max(seq)``.
    """
    sql = _LOCK_SQL.get(conn.dialect.name)
    if sql is not None:
        conn.exec_driver_sql(sql)


@cache
def _entries_insert(dialect: str) -> BulkInsert:
    return BulkInsert(t.audit_entries, dialect)


@dataclass(frozen=True, slots=True)
class Signer:
    """The Ed25519 key that signs checkpoints; ``vkey`` is what anyone verifies with."""

    skey: str
    vkey: str

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> Signer:
        """Reads the key file (signer key, then verifier key), creating it (0600) if absent.
        Raises :class:`ConfigError`, naming the file, when it cannot be created or read or
        does not hold a signer key and its verifier key."""
        p = Path(path)
        try:
            if not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                skey, vkey = generate_key(KEY_NAME)
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(f"{skey}\n{vkey}\n")
            text = p.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(f"audit key file {p} ([audit] key_file): {why}") from None
        words = text.split()
        if len(words) < 2:
            raise ConfigError(
                f"audit key file {p} ([audit] key_file) does not hold a signer key and its "
                f"verifier key ({'it is empty' if not words else 'one word only'})"
            )
        skey, vkey = words[:2]
        try:
            check_key_pair(skey, vkey)
        except ValueError as exc:
            raise ConfigError(f"audit key file {p} ([audit] key_file): {exc}") from None
        return cls(skey, vkey)


class AuditChain:
    def __init__(
        self,
        signer: Signer,
        origin: str = "alarmdesk/audit",
        *,
        every: int = 1000,
        interval: timedelta = timedelta(minutes=15),
    ) -> None:
        self.signer = signer
        self.origin = origin
        self.every = every
        self.interval = interval
        self._acc: MerkleAccumulator | None = None
        self._checkpoint_size = 0
        self._checkpoint_at: datetime | None = None

    @property
    def size(self) -> int:
        return self._acc.size if self._acc is not None else 0

    def reset(self) -> None:
        """Forget the in-memory tree (after a rolled-back transaction)."""
        self._acc = None

    def _sync(self, conn: sa.Connection) -> MerkleAccumulator:
        top = conn.exec_driver_sql(_TOP_SQL).scalar()
        size = 0 if top is None else int(top) + 1
        if self._acc is not None and self._acc.size == size:
            return self._acc
        last = (
            conn.execute(
                sa.select(t.audit_checkpoints).order_by(t.audit_checkpoints.c.size.desc()).limit(1)
            )
            .mappings()
            .first()
        )
        if last is not None:
            acc = MerkleAccumulator.from_frontier(
                int(last["size"]), [bytes.fromhex(h) for h in last["frontier"]]
            )
            self._checkpoint_size, self._checkpoint_at = int(last["size"]), last["at"]
        else:
            acc = MerkleAccumulator()
            self._checkpoint_size, self._checkpoint_at = 0, None
        rest = conn.execute(
            sa.select(t.audit_entries.c.leaf_hash)
            .where(t.audit_entries.c.seq >= acc.size)
            .order_by(t.audit_entries.c.seq)
        )
        acc.extend(bytes(r.leaf_hash) for r in rest)
        self._acc = acc
        return acc

    def append(self, conn: sa.Connection, events: Sequence[AuditEvent], now: datetime) -> None:
        """Appends entries in the caller's transaction; signs a checkpoint when one is due."""
        lock_audit(conn)
        acc = self._sync(conn)
        if events:
            rows: list[dict[str, Any]] = []
            for ev in events:
                data = canonical_entry(entry_of(acc.size, now, ev))
                h = leaf_hash(data)
                rows.append(
                    {"seq": acc.size, "at": now, "leaf_hash": h, "entry": data.decode("utf-8")}
                )
                acc.append(h)
            _entries_insert(conn.dialect.name).execute(conn, rows)
        self._maybe_checkpoint(conn, acc, now, force=False)

    def checkpoint(self, conn: sa.Connection, now: datetime) -> str | None:
        """Signs a checkpoint now if any entry is not covered yet; returns the note."""
        lock_audit(conn)
        return self._maybe_checkpoint(conn, self._sync(conn), now, force=True)

    def _maybe_checkpoint(
        self, conn: sa.Connection, acc: MerkleAccumulator, now: datetime, *, force: bool
    ) -> str | None:
        pending = acc.size - self._checkpoint_size
        if pending <= 0:
            return None
        due = (
            force
            or pending >= self.every
            or self._checkpoint_at is None
            or now - self._checkpoint_at >= self.interval
        )
        if not due:
            return None
        note = sign_checkpoint(self.origin, acc.size, acc.root(), now, self.signer.skey)
        conn.execute(
            t.audit_checkpoints.insert().values(
                size=acc.size, at=now, note=note, frontier=[h.hex() for h in acc.frontier]
            )
        )
        self._checkpoint_size, self._checkpoint_at = acc.size, now
        return note


def export_lines(conn: sa.Connection) -> Iterator[dict[str, Any]]:
    """The whole log in the export format: entries in order, each checkpoint after the entry
    that closes it (see ``safeguards/auditlog_file.py``)."""
    checkpoints = {
        int(r.size): r.note
        for r in conn.execute(sa.select(t.audit_checkpoints.c.size, t.audit_checkpoints.c.note))
    }
    result = conn.execute(
        sa.select(t.audit_entries.c.seq, t.audit_entries.c.leaf_hash, t.audit_entries.c.entry)
        .order_by(t.audit_entries.c.seq)
        .execution_options(yield_per=2000)  # on the statement: streams, leaves conn as is
    )
    for r in result:
        if r.entry is None:
            yield erased_line(int(r.seq), bytes(r.leaf_hash))
        else:
            yield entry_line(int(r.seq), json.loads(r.entry))
        if (note := checkpoints.get(int(r.seq) + 1)) is not None:
            yield checkpoint_line(note)
