"""Escalation timers of open incidents, and what firing one does to its incident.

The policy and its due times live on the incident (:class:`~alarmdesk.domain.escalation.
EscalationState`); :class:`Timers` only orders them: a heap of ``(due, incident id)`` from which
entries that no longer hold (acknowledged, moved to the next step) are skipped when popped.
The pipeline turns what :func:`fire_step` and :func:`flag_overdue` return into events.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

from alarmdesk.domain.escalation import EscalationSpec, choose, freeze
from alarmdesk.domain.incident import Incident, Status

__all__ = ["Timers", "escalated", "fire_step", "flag_overdue", "settle", "start"]


class Timers:
    def __init__(self) -> None:
        self._heap: list[tuple[datetime, int]] = []

    def arm(self, inc: Incident) -> None:
        """Queues the incident's next step and its on-scene deadline, whichever it has."""
        e = inc.escalation
        if e is not None:
            for due in (e.due, e.on_scene_by):
                if due is not None:
                    heapq.heappush(self._heap, (due, inc.id))

    def next_due(self) -> datetime | None:
        """When the next timer fires (it may have been cancelled meanwhile)."""
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: datetime) -> Iterator[tuple[datetime, int]]:
        """Every ``(due, incident id)`` due at ``now``, earliest first (timers a fired step
        arms meanwhile come out in turn)."""
        while self._heap and self._heap[0][0] <= now:
            yield heapq.heappop(self._heap)


def settle(inc: Incident, now: datetime, timers: Timers) -> None:
    """After a command: acknowledged stops the steps; dispatched starts the on-scene clock;
    on scene (or final) stops it."""
    e = inc.escalation
    if e is None:
        return
    if inc.status is not Status.NEW:
        e.due = None
    minutes = e.policy.on_scene_minutes
    if inc.status is Status.DISPATCHED and minutes and e.on_scene_by is None and not e.overdue:
        e.on_scene_by = now + timedelta(minutes=minutes)
        timers.arm(inc)
    elif inc.status is not Status.DISPATCHED:
        e.on_scene_by = None


def fire_step(inc: Incident, due: datetime, timers: Timers) -> dict[str, object]:
    """Applies the incident's next step (more desks, a higher priority), arms the one after
    it; returns the event's detail."""
    e = inc.escalation
    assert e is not None
    steps = e.policy.steps
    step = steps[e.step]
    detail: dict[str, object] = {
        "policy": e.policy.id,
        "step": e.step + 1,
        "of": len(steps),
        "due_at": due.isoformat(),
        "alert": step.alert,
    }
    added = tuple(d for d in dict.fromkeys(step.add_desks) if d not in inc.desks)
    if added:
        inc.desks = inc.desks + added
        detail["add_desks"] = list(added)
    if step.raise_priority and inc.priority > 1:
        detail["priority"] = {"from": inc.priority, "to": inc.priority - 1}
        inc.priority -= 1
    e.step += 1
    more = e.step < len(steps)
    e.due = due + timedelta(seconds=steps[e.step].after_seconds) if more else None
    inc.version += 1
    timers.arm(inc)
    return detail


def flag_overdue(inc: Incident, due: datetime) -> dict[str, object]:
    """Flags a dispatched incident no unit reached in time; returns the event's detail."""
    e = inc.escalation
    assert e is not None
    e.on_scene_by, e.overdue = None, True
    inc.version += 1
    return {"policy": e.policy.id, "overdue": "on_scene", "due_at": due.isoformat()}


def start(
    inc: Incident, policies: Sequence[EscalationSpec], at: datetime, timers: Timers
) -> EscalationSpec | None:
    """Freezes on ``inc`` the first policy that matches it (its desks, category, type and
    priority), its first step counted from ``at``, and arms it; the policy, or None."""
    policy = choose(policies, inc.desks, inc.category, inc.type_code, inc.priority)
    if policy is not None:
        inc.escalation = freeze(policy, at)
        timers.arm(inc)
    return policy


def escalated(inc: Incident) -> tuple[int, tuple[str, ...]]:
    """What the steps fired so far did: how often they raised the priority, and the desks
    they added. A reclassified incident keeps both: nobody picked it up in time, whatever
    its type (routing the new type afresh dropped those desks while it still waited)."""
    e = inc.escalation
    fired = e.policy.steps[: e.step] if e is not None else []
    raised = sum(1 for step in fired if step.raise_priority)
    return raised, tuple(dict.fromkeys(d for step in fired for d in step.add_desks))
