"""Leases in the database: a job that must run on one node at a time (the retention run)
is run by whichever node holds its lease (docs/operations.md, "Several nodes").

A node takes a lease that is free, expired, or its own (a renewal), for ``ttl``; another node
is refused until it expires. Taking it over from another holder increments ``token``, a
fencing token: work stamped with an older token was done by a node that has since lost the
lease. The check and the write are one conditional UPDATE (or an INSERT for a lease never
taken), so two nodes asking at once cannot both win: PostgreSQL re-checks the condition on
the row the first one changed, SQLite writes one transaction at a time.

Times are the nodes' own clocks; nodes keep them in step (NTP) as they must for incident
times anyway. A lease's ``ttl`` should be many times the clocks' possible drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from alarmdesk.store import tables as t

__all__ = ["Lease", "acquire", "forget_expired", "holds", "live", "release"]

_c = t.leases.c


@dataclass(frozen=True, slots=True)
class Lease:
    name: str
    holder: str
    token: int  # grows at every change of holder
    expires_at: datetime


def acquire(
    engine: sa.Engine, name: str, holder: str, ttl: timedelta, now: datetime
) -> Lease | None:
    """Takes or renews the lease ``name`` for ``holder`` until ``now + ttl``, in a
    transaction of its own; None when another holder has it and it has not expired."""
    until = now + ttl
    with engine.begin() as conn:
        row = conn.execute(
            sa.update(t.leases)
            .where(_c.name == name, sa.or_(_c.holder == holder, _c.expires_at <= now))
            .values(
                token=sa.case((_c.holder == holder, _c.token), else_=_c.token + 1),
                holder=holder,
                expires_at=until,
            )
            .returning(_c.token)
        ).first()
        if row is not None:
            return Lease(name, holder, int(row.token), until)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(t.leases).values(name=name, holder=holder, token=1, expires_at=until)
            )
    except sa.exc.IntegrityError:
        return None  # another node took it first
    return Lease(name, holder, 1, until)


def release(engine: sa.Engine, lease: Lease, now: datetime) -> bool:
    """Gives a lease up now (a node stopping), if it is still this holder's; True if it was."""
    with engine.begin() as conn:
        done = conn.execute(
            sa.update(t.leases)
            .where(_c.name == lease.name, _c.holder == lease.holder, _c.token == lease.token)
            .values(expires_at=now)
        )
    return done.rowcount == 1


def holds(conn: sa.Connection, lease: Lease, now: datetime) -> bool:
    """Whether ``lease`` is still its holder's, unexpired, with the same token: the fence a
    holder checks inside the transaction whose writes the lease guards.

    The row is read FOR SHARE (PostgreSQL; SQLite writes one transaction at a time anyway):
    another node's takeover, an UPDATE of that row, waits until this transaction ends, so
    the new holder starts after these writes are committed or rolled back, never between.
    """
    row = conn.execute(
        sa.select(_c.token)
        .where(
            _c.name == lease.name,
            _c.holder == lease.holder,
            _c.token == lease.token,
            _c.expires_at > now,
        )
        .with_for_update(read=True)
    ).first()
    return row is not None


def live(engine: sa.Engine, prefix: str, now: datetime) -> dict[str, str]:
    """The leases named ``prefix…`` that have not expired: name → holder."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(_c.name, _c.holder).where(
                _c.name.startswith(prefix, autoescape=True), _c.expires_at > now
            )
        )
        return {r.name: r.holder for r in rows}


def forget_expired(engine: sa.Engine, prefix: str, before: datetime) -> int:
    """Deletes the leases named ``prefix…`` expired before ``before`` (the heartbeats of
    nodes that stopped, which would otherwise pile up: each run names itself anew)."""
    with engine.begin() as conn:
        done = conn.execute(
            sa.delete(t.leases).where(
                _c.name.startswith(prefix, autoescape=True), _c.expires_at < before
            )
        )
    return done.rowcount
