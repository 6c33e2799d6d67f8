"""Retention policy: how long each class of data is kept, and the ceilings nobody may pass.

docs/architecture.md, "The line we hold", 4: *Data expires.* Every data class has a default in
configuration (``[retention]``) and a ceiling here, in code. Shortening a period is always
allowed; lengthening one past its ceiling is refused with the error code
``retention_ceiling``, at configuration load and wherever a policy is built. Raising a ceiling
is a change to this file, reviewed as a design decision (like adding a harm category).

The data classes:

``signals``
    Signals that belong to no incident: periodic tests, openings and closings, check-ins,
    restores that matched nothing. (Signals of an incident live and die with it.) Also
    parked signals (distributed mode: ``store/parked.py``), counted from their receipt.
``incidents``
    Final incidents (closed or cancelled), with their signals, timeline and desk routes.
    Counted from the time they became final. A period per harm category may override the
    default. Open and resolved-but-not-closed incidents are never erased. Calls imported
    from a CAD export (``history_calls``) are incident data too, counted from the last time
    the call records.
``notes``
    Free text operators wrote: the text of ``incident.noted`` events and the ``note`` of a
    resolution or cancellation. The text is replaced by a marker; the event stays.
``people``
    People on incidents (``payload.people``: role, name, callback number) and plate text.
``media``
    References to camera snapshots, clips and other media in signal payloads, and the camera
    event ids they are reached by. Past this period alarmdesk also refuses to fetch a signal's
    images from Frigate (``410 media_expired``), whatever the incident's status.
``audit``
    The content of audit entries. Only the content goes: the leaf hash stays, so every signed
    checkpoint still verifies (RFC 9162 tree; ``alarmdesk audit verify``).

Pure: no I/O. ``store/retention.py`` applies a policy to a database.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar

import msgspec

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import RetentionCeilingError, RetentionPolicyError


class DataClass(enum.StrEnum):
    SIGNALS = "signals"
    INCIDENTS = "incidents"
    NOTES = "notes"
    PEOPLE = "people"
    MEDIA = "media"
    AUDIT = "audit"


DESCRIPTIONS: dict[DataClass, str] = {
    DataClass.SIGNALS: "signals that belong to no incident (tests, openings/closings, "
    "check-ins), and parked signals",
    DataClass.INCIDENTS: "closed and cancelled incidents with their signals and timeline, "
    "and imported call history",
    DataClass.NOTES: "free text written by operators (notes, resolution and cancel notes)",
    DataClass.PEOPLE: "people on incidents (name, callback number, role) and plate text",
    DataClass.MEDIA: "references to camera snapshots, clips and other media",
    DataClass.AUDIT: "content of audit-log entries (their hashes are kept)",
}

# The longest any deployment may keep each class, in days. Reasons in docs/safeguards.md.
CEILINGS: dict[DataClass, int] = {
    DataClass.SIGNALS: 366,
    DataClass.INCIDENTS: 3653,
    DataClass.NOTES: 3653,
    DataClass.PEOPLE: 730,
    DataClass.MEDIA: 90,
    DataClass.AUDIT: 3653,
}

Days = Annotated[int, msgspec.Meta(ge=1)]


class RetentionConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[retention]`` in the configuration file: days per data class.

    ``incidents_by_category`` overrides ``incidents_days`` for the harm categories it names,
    e.g. ``{equipment = 180}``. ``schedule_hours`` is how often a running server applies the
    policy (0: never; run ``alarmdesk retention run`` from cron instead). ``max_rows_per_run``
    bounds one run per class: a backlog is worked off over several runs. (The alarm path
    waits for one chunk of a run at most: ``store/retention.py``.)
    """

    signals_days: Days = 90
    incidents_days: Days = 730
    incidents_by_category: dict[str, Days] = msgspec.field(default_factory=dict)
    notes_days: Days = 365
    people_days: Days = 90
    media_days: Days = 30
    audit_days: Days = 1826
    schedule_hours: Annotated[float, msgspec.Meta(ge=0, le=24 * 7)] = 24.0
    max_rows_per_run: Annotated[int, msgspec.Meta(ge=100)] = 100_000

    _FIELDS: ClassVar[dict[DataClass, str]] = {
        DataClass.SIGNALS: "signals_days",
        DataClass.INCIDENTS: "incidents_days",
        DataClass.NOTES: "notes_days",
        DataClass.PEOPLE: "people_days",
        DataClass.MEDIA: "media_days",
        DataClass.AUDIT: "audit_days",
    }

    def __post_init__(self) -> None:
        # Runs on construction and on msgspec.convert (where it becomes a ValidationError
        # naming the field), so a configuration over a ceiling never loads.
        self.validate()

    def validate(self) -> None:
        """Raises :class:`RetentionCeilingError` for a period over its ceiling, and
        :class:`RetentionPolicyError` for a period under one day or an unknown category."""
        for cls, name in self._FIELDS.items():
            _check(getattr(self, name), CEILINGS[cls], f"retention.{name}")
        known = {c.value for c in HarmCategory}
        for category, days in self.incidents_by_category.items():
            where = f"retention.incidents_by_category.{category}"
            if category not in known:
                raise RetentionPolicyError(
                    f"{where}: no harm category {category!r}; one of: {', '.join(sorted(known))}",
                    field=where,
                )
            _check(days, CEILINGS[DataClass.INCIDENTS], where)
        if self.max_rows_per_run < 1:
            raise RetentionPolicyError(
                "retention.max_rows_per_run must be at least 1", field="retention.max_rows_per_run"
            )

    def days(self, cls: DataClass) -> int:
        """The default period of a class (for incidents: categories without an override)."""
        value: int = getattr(self, self._FIELDS[cls])
        return value

    def incident_days(self, category: str) -> int:
        return self.incidents_by_category.get(category, self.incidents_days)

    def cutoffs(self, now: datetime) -> dict[str, datetime]:
        """What was final, recorded or written before these instants is expired at ``now``.

        Keys: each data class, and ``incidents.<category>`` for every harm category.
        """
        if now.tzinfo is None:
            raise ValueError("retention needs an aware (UTC) time")
        out = {cls.value: now - timedelta(days=self.days(cls)) for cls in DataClass}
        for category in HarmCategory:
            out[f"incidents.{category.value}"] = now - timedelta(
                days=self.incident_days(category.value)
            )
        return out

    def describe(self) -> dict[str, Any]:
        """The policy as published (transparency report, ``alarmdesk retention show``)."""
        classes = {
            cls.value: {
                "days": self.days(cls),
                "ceiling_days": CEILINGS[cls],
                "what": DESCRIPTIONS[cls],
            }
            for cls in DataClass
        }
        return {
            "classes": classes,
            "incidents_by_category": {c.value: self.incident_days(c.value) for c in HarmCategory},
            "schedule_hours": self.schedule_hours,
        }


def _check(days: int, ceiling: int, where: str) -> None:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise RetentionPolicyError(
            f"{where} must be a whole number of days, at least 1", field=where
        )
    if days > ceiling:
        raise RetentionCeilingError(
            f"{where} = {days} days is longer than its ceiling of {ceiling} days; retention may "
            "be shortened at any time but never lengthened past the ceiling set in code "
            "(alarmdesk.safeguards.retention_policy.CEILINGS) [retention_ceiling]",
            field=where,
        )


class ReportConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[report]``: what the transparency report states that the database cannot know.

    ``complaints``: complaints received about the system in the reporting period (CCOPS);
    ``costs``: the cost statement, free text (e.g. "licences 0; staff 0.2 FTE"); both may be
    given per run on the command line (``--complaints``, ``--costs``).
    """

    organisation: Annotated[str, msgspec.Meta(max_length=200)] = ""
    use_policy_url: Annotated[str, msgspec.Meta(max_length=500)] = ""
    complaints: Annotated[int, msgspec.Meta(ge=0)] = 0
    costs: Annotated[str, msgspec.Meta(max_length=2000)] = ""
