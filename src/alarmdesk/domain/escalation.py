"""Escalation: what happens when nobody acknowledges an alarm, or no unit reaches the scene.

A policy (in the centre's set-up files) matches incidents by desk, category, type and
priority, and lists steps: *not acknowledged within N seconds* → add desks (the supervisor's,
another desk), raise the priority, sound the alert again; each step counts from the one
before. ``on_scene_minutes`` flags an incident dispatched for that long without a unit on
scene.

The policy is **frozen on the incident when it opens** (:class:`EscalationState` holds a
copy), so changing a policy never changes what an open incident was promised. Its due times
are stored with the incident, so after a restart each step fires at its time (at once if it
fell due meanwhile), exactly once: firing a step and moving to the next are one change of the
incident, committed together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec

from alarmdesk.domain.categories import HarmCategory

__all__ = ["EscalationSpec", "EscalationState", "StepSpec", "choose", "freeze"]

PolicyId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
]


class StepSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """One step: after this many seconds without acknowledgement (counted from the step
    before, the first from the opening), do this."""

    after_seconds: Annotated[int, msgspec.Meta(ge=5, le=86400)]
    add_desks: list[str] = msgspec.field(default_factory=list)
    raise_priority: bool = False  # one level more urgent, never above 1
    alert: bool = True  # sound the alert again on the consoles that see it


class EscalationMatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    desks: list[str] = msgspec.field(default_factory=list)  # routed to any of these
    categories: list[str] = msgspec.field(default_factory=list)
    types: list[str] = msgspec.field(default_factory=list)
    priorities: list[Annotated[int, msgspec.Meta(ge=1, le=5)]] = msgspec.field(default_factory=list)


class EscalationSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """A policy as written; the first policy whose match holds is frozen on the incident."""

    id: PolicyId
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    match: EscalationMatch = msgspec.field(default_factory=EscalationMatch)
    steps: list[StepSpec] = msgspec.field(default_factory=list)
    on_scene_minutes: Annotated[int, msgspec.Meta(ge=1, le=1440)] | None = None

    def matches(
        self, desks: Iterable[str], category: HarmCategory, type_code: str, priority: int
    ) -> bool:
        m = self.match
        if m.desks and not set(m.desks).intersection(desks):
            return False
        if m.categories and category.value not in m.categories:
            return False
        if m.types and type_code not in {t.upper() for t in m.types}:
            return False
        return not (m.priorities and priority not in m.priorities)


@dataclass(slots=True)
class EscalationState:
    """A policy frozen on an incident, and where the incident is in it."""

    policy: EscalationSpec
    step: int = 0  # steps fired so far
    due: datetime | None = None  # when the next step fires (None: none left, or acknowledged)
    on_scene_by: datetime | None = None  # when a dispatched incident is overdue on scene
    overdue: bool = False  # flagged: dispatched and no unit on scene in time

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": msgspec.to_builtins(self.policy),
            "step": self.step,
            "due": self.due.isoformat() if self.due else None,
            "on_scene_by": self.on_scene_by.isoformat() if self.on_scene_by else None,
            "overdue": self.overdue,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EscalationState:
        return cls(
            policy=msgspec.convert(data["policy"], EscalationSpec),
            step=int(data.get("step", 0)),
            due=datetime.fromisoformat(data["due"]) if data.get("due") else None,
            on_scene_by=(
                datetime.fromisoformat(data["on_scene_by"]) if data.get("on_scene_by") else None
            ),
            overdue=bool(data.get("overdue", False)),
        )

    def view(self) -> dict[str, Any]:
        """What a console shows: policy, steps fired of how many, the next due times."""
        steps = self.policy.steps
        return {
            "policy": self.policy.id,
            "step": self.step,
            "steps": len(steps),
            "due_at": self.due.isoformat() if self.due else None,
            "thresholds": _thresholds(steps),
            "on_scene_by": self.on_scene_by.isoformat() if self.on_scene_by else None,
            "overdue": self.overdue,
        }


def _thresholds(steps: Sequence[StepSpec]) -> list[int]:
    """Seconds after opening at which each step falls due (the console's amber and red)."""
    out, total = [], 0
    for s in steps:
        total += s.after_seconds
        out.append(total)
    return out


def choose(
    policies: Sequence[EscalationSpec],
    desks: Iterable[str],
    category: HarmCategory,
    type_code: str,
    priority: int,
) -> EscalationSpec | None:
    desks = tuple(desks)
    for p in policies:
        if p.matches(desks, category, type_code, priority):
            return p
    return None


def freeze(policy: EscalationSpec, opened_at: datetime) -> EscalationState:
    """The state of a new incident under ``policy``: its first step due."""
    due = opened_at + timedelta(seconds=policy.steps[0].after_seconds) if policy.steps else None
    return EscalationState(policy, 0, due)
