"""Procedures: an incident type's standard operating procedure as a checklist.

A type's SOP is ordered steps; a step written with a leading ``!`` is mandatory ("!Call the
keyholder", "!Verify by video"). When an incident opens, its type's steps are copied onto it
(:class:`Procedure`), so a later edit of the type does not change the checklist in hand; a
reclassification starts the new type's checklist. Each ticked step records who ticked it and
when. An incident cannot be resolved while a mandatory step is open, unless a supervisor
overrides with a reason (the web layer decides who may; the reason is kept in the event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alarmdesk.domain.errors import Conflict, InvalidField

__all__ = ["Procedure", "Step", "check_steps", "steps_of"]

MANDATORY = "!"


@dataclass(frozen=True, slots=True)
class Step:
    text: str
    mandatory: bool = False


def check_steps(sop: Sequence[str], field: str) -> None:
    """Refuses a procedure with an empty step: empty, spaces only or a lone ``!`` (a
    checklist line with nothing to do, which :func:`steps_of` would drop). The one rule of a
    centre's own procedure (``procedures`` of the set-up) and a custom type's.

    Raises:
        InvalidField: ``invalid_value``, naming ``field`` and the step.
    """
    for n, raw in enumerate(sop, 1):
        if not raw.strip().removeprefix(MANDATORY).strip():
            raise InvalidField(
                f"step {n} of the procedure is empty: write what to do, or leave the step out",
                field=field,
                code="invalid_value",
            )


def steps_of(sop: Sequence[str]) -> tuple[Step, ...]:
    """A type's SOP strings as steps (``!`` marks a mandatory one)."""
    out = []
    for raw in sop:
        text = raw.strip()
        mandatory = text.startswith(MANDATORY)
        text = text.removeprefix(MANDATORY).strip()
        if text:
            out.append(Step(text, mandatory))
    return tuple(out)


@dataclass(slots=True)
class Procedure:
    """The checklist of one incident: its type's steps, and which are done, by whom, when."""

    type_code: str
    steps: tuple[Step, ...]
    done: dict[int, tuple[str, datetime]] = field(default_factory=dict)
    # view() and to_json() as last built, and how many steps were done then. Every event
    # carries the incident's checklist and every incident row stores it, so both are built
    # together; a step once done stays done (tick refuses a second tick), so the count says
    # whether they still hold. Rebuilding them per event was about a tenth of the writer's
    # time per batched signal (bench/README.md, issue 11).
    _built: tuple[int, list[dict[str, Any]], dict[str, Any]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def tick(self, index: int, actor: str, at: datetime) -> None:
        if not 0 <= index < len(self.steps):
            raise InvalidField(
                f"the procedure has steps 0 to {len(self.steps) - 1}, not {index}",
                field="step",
                code="invalid_value",
            )
        if index in self.done:
            raise Conflict(f"step {index} is done already", field="step")
        self.done[index] = (actor, at)

    def open_mandatory(self) -> list[int]:
        return [i for i, s in enumerate(self.steps) if s.mandatory and i not in self.done]

    def to_json(self) -> dict[str, Any]:
        """The stored form (a new dict each call; its parts are shared, not to be changed)."""
        return dict(self._remembered()[2])

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Procedure:
        return cls(
            type_code=str(data["type_code"]),
            steps=tuple(Step(str(s["text"]), bool(s["mandatory"])) for s in data["steps"]),
            done={
                int(i): (str(d["by"]), datetime.fromisoformat(d["at"]))
                for i, d in data.get("done", {}).items()
            },
        )

    def view(self) -> list[dict[str, Any]]:
        """The checklist as the console shows it (a new list each call; its steps' dicts are
        shared, not to be changed)."""
        return list(self._remembered()[1])

    def _remembered(self) -> tuple[int, list[dict[str, Any]], dict[str, Any]]:
        built = self._built
        if built is None or built[0] != len(self.done):
            done = {i: (by, at.isoformat()) for i, (by, at) in self.done.items()}
            view = [
                {
                    "step": i,
                    "text": s.text,
                    "mandatory": s.mandatory,
                    "done_by": done[i][0] if i in done else None,
                    "done_at": done[i][1] if i in done else None,
                }
                for i, s in enumerate(self.steps)
            ]
            stored = {
                "type_code": self.type_code,
                "steps": [{"text": s.text, "mandatory": s.mandatory} for s in self.steps],
                "done": {str(i): {"by": by, "at": at} for i, (by, at) in done.items()},
            }
            built = self._built = (len(self.done), view, stored)
        return built
