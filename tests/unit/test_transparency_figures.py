"""The transparency report's figures from audit entries (safeguards/transparency.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alarmdesk.safeguards.retention_policy import DataClass
from alarmdesk.safeguards.transparency import AuditFigures

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


def erase(cls: DataClass, count: int, at: datetime, actor: str = "system:retention") -> dict:
    return {
        "op": "erase",
        "object_type": cls.value,
        "actor": actor,
        "role": "system",
        "outcome": "allowed",
        "at": at.isoformat(),
        "detail": {"count": count, "cutoff": "x", "days": 90},
    }


def test_a_retention_run_that_erased_several_classes_counts_once() -> None:
    """A run appends one erase entry per chunk it erased, all at the run's time: the
    report's "retention runs that erased something" counts the run, not its entries."""
    figures = AuditFigures()
    for day in range(6):  # six nightly runs, each erasing from three classes, incidents in 2 chunks
        at = T0 + timedelta(days=day)
        for cls in (DataClass.INCIDENTS, DataClass.INCIDENTS, DataClass.SIGNALS, DataClass.PEOPLE):
            figures.add(erase(cls, 5 if cls is DataClass.INCIDENTS else 10, at))
    # and one run from the command line at the same instant as a nightly one: a run of its own
    figures.add(erase(DataClass.MEDIA, 3, T0, actor="cli:admin"))
    out = figures.erasures()
    assert out["runs"] == 7
    assert out["by_data_class"]["incidents"] == 60
    assert out["by_data_class"]["media"] == "<5"
