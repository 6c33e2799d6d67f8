"""Commands: what an operator asks for (imperative, small, frozen).

Each carries the actor and, optionally, the incident version the actor last saw: when
someone else acted first the command fails with ``version_conflict`` instead of acting on
a state the operator never saw.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    incident_id: int
    actor: str
    expected_version: int | None = None
    # The desks the actor works for; None: any. Checked against the incident's desks in the
    # same step that applies the command, so no race can slip a command past it.
    desks: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Acknowledge(Command):
    pass


@dataclass(frozen=True, slots=True)
class Dispatch(Command):
    units: tuple[str, ...] = ()
    # What alarmdesk recommended, when shown: ids of units that exist, at most
    # MAX_RECOMMENDED of them (a response plan's needs, each at most 20 units).
    recommended: tuple[str, ...] | None = None

    MAX_RECOMMENDED = 100  # a class constant, not a field


@dataclass(frozen=True, slots=True)
class Arrive(Command):
    units: tuple[str, ...] = ()  # empty: every assigned unit


@dataclass(frozen=True, slots=True)
class AddNote(Command):
    text: str = ""


@dataclass(frozen=True, slots=True)
class Reclassify(Command):
    type_code: str = ""


@dataclass(frozen=True, slots=True)
class Resolve(Command):
    disposition: str = ""
    note: str = ""
    # Resolve with a mandatory procedure step open; the caller has checked the actor may.
    override_reason: str = ""


@dataclass(frozen=True, slots=True)
class UnitReport:
    """A unit's status and/or position, from its crew or an AVL feed."""

    unit_id: str
    actor: str
    status: str | None = None
    lat: float | None = None
    lon: float | None = None
    # The desks the reporter works for; None: any (every desk, or a machine reporting for
    # its units). A status that moves an incident is refused unless it shares one of them.
    desks: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class CompleteStep(Command):
    """Ticks step ``step`` (0-based) of the incident's procedure."""

    step: int = -1


@dataclass(frozen=True, slots=True)
class Close(Command):
    pass


@dataclass(frozen=True, slots=True)
class Cancel(Command):
    reason: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Verify(Command):
    """The operator's verdict on the camera images of the alarm (video verification)."""

    verdict: str = ""  # verified | false
    note: str = ""
