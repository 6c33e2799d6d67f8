"""Where a process's writer sends work while the process does not write: a standby node
(distributed mode), or an HTTP worker in front of the writer process (``[server] workers``).

A standby serves consoles (docs/operations.md "Several nodes"), so what a console does must
work there too. Two kinds of work, two ways:

- what changes the writer's own state (an incident command, a unit's report, a call-taker's
  call) goes to the node that writes, over NATS (bus/commands.py), and comes back with its
  answer;
- an audit entry (a reading, a denial), and a change of accounts or configuration (signing
  in and out, saved reports, webhooks, silences, the centre's set-up) runs here in a
  transaction of its own with its audit entries, as the command line runs it beside a
  server: the writer reads silences and the
  set-up's revision again within seconds. Changing the types in force is the exception: the
  writer holds the taxonomy and takes a change up only from its own transaction, so that
  answers ``503`` here.

An HTTP worker (bus/link.py) differs in two things: its audit entries go to the writer's
next transaction over the link, as they would in one process (one flush serves them with the
signals'), and a change of the types in force runs here and then asks the writer to take the
types up (the same database, and no other way to reach the writer).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alarmdesk.bus.commands import WriterClient
from alarmdesk.domain.errors import WriterStopped
from alarmdesk.safeguards.audit import AuditEvent
from alarmdesk.service.actions import Action, in_transaction, perform
from alarmdesk.service.batch import Work
from alarmdesk.store.audit import AuditChain

__all__ = ["Elsewhere"]


class Elsewhere:
    """Where the writer's work goes on a node that does not write (``Writer.elsewhere``)."""

    def __init__(
        self,
        relay: WriterClient,
        engine: sa.Engine,
        chain: AuditChain,
        clock: Callable[[], datetime],
        *,
        same_machine: bool = False,
    ) -> None:
        self.relay = relay
        self.same_machine = same_machine  # an HTTP worker's link: audit and type reloads too
        self.engine = engine
        self.chain = chain  # this node's appender for what it runs itself
        self.clock = clock
        self._lock = asyncio.Lock()  # one action at a time through this node's appender

    async def take(self, work: Work) -> Any:
        """What the writer was handed while this node does not write: sent to the node that
        does, run here, or refused (``503``) when only this node's own writer may do it
        (signals from the intake log, reloads, escalation timers)."""
        if work.command is not None:
            return await self.relay.submit_command(work.command, work.actor)
        if work.unit_report is not None:
            return await self.relay.submit_unit_report(work.unit_report, work.actor)
        local = not (work.reload_taxonomy or work.reload_state or work.lease is not None)
        if work.signals and local and work.received_at is None:
            return await self.relay.submit_signals(work.signals, work.actor)
        if work.action is not None:
            return await self.run(work.action)
        if work.audit and local:
            if self.same_machine:
                return await self.relay.submit_audit(work.audit)
            return await self.submit_audit(work.audit)
        raise WriterStopped("this node does not write; the node that does takes this")

    async def submit_audit(self, events: Sequence[AuditEvent]) -> None:
        """Entries appended here, in a transaction of their own (a reading on a standby is
        audited like anywhere else), through this node's one appender."""

        def append(conn: sa.Connection) -> None:
            self.chain.append(conn, list(events), self.clock())

        async with self._lock:
            await asyncio.to_thread(in_transaction, self.engine, self.chain, append, "audit")

    async def run(self, action: Action) -> Any:
        if action.reload_taxonomy and not self.same_machine:
            raise WriterStopped(
                "changing the incident types in force is done on the writing node "
                "(/readyz?role=writer answers 200 there)"
            )
        async with self._lock:
            result = await asyncio.to_thread(perform, self.engine, self.chain, action, self.clock())
        if action.reload_taxonomy:
            await self.relay.reload_taxonomy()
        return result
