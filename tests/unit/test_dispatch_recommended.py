"""A dispatch's ``recommended`` units (what the operator was shown) are checked like its
``units``: ids of units that exist (others left out), a bounded list, each named once; so the
event's detail, and the override figures computed from it, only ever hold unit ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import AlarmdeskError
from alarmdesk.domain.events import EventType
from alarmdesk.domain.signal import Location, Signal, SourceKind
from alarmdesk.domain.taxonomy import Taxonomy, default_types
from alarmdesk.domain.units import Desk, Unit
from alarmdesk.pipeline import Pipeline

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def _pipeline() -> tuple[Pipeline, int]:
    units = [Unit(id="E1", kind="engine"), Unit(id="E2", kind="engine")]
    p = Pipeline(Taxonomy(default_types()), [Desk("west", "West")], units, fallback_desk="west")
    signal = Signal(
        id=1,
        idempotency_key="k1",
        content_digest="f",
        received_at=T0,
        source_kind=SourceKind.CALL,
        source_id="ct-1",
        type_code="FSTRU",
        occurred_at=T0,
        location=Location(lat=52.0, lon=4.0),
        summary="",
        payload={},
    )
    inc_id = p.ingest(signal).incident_id
    assert inc_id is not None
    return p, inc_id


@pytest.mark.parametrize(
    ("recommended", "kept"),
    [(("<script>alert(9)</script>",), []), (("E1", "E404"), ["E1"]), (("",), [])],
)
def test_a_recommended_unit_that_does_not_exist_is_left_out(recommended, kept) -> None:
    """Never stored as the recommendation; and never in the way of the dispatch (a unit
    removed from the set-up since the recommendation was shown)."""
    p, inc_id = _pipeline()
    result = p.handle(c.Dispatch(inc_id, "op", units=("E1",), recommended=recommended), T0)
    assert p.units["E1"].incident_id == inc_id
    (event,) = [e for e in result.events if e.detail.get("units") == ["E1"]]
    assert event.detail["recommended"] == kept
    assert event.detail["override"] is (kept != ["E1"])


def test_too_many_recommended_units_are_refused() -> None:
    p, inc_id = _pipeline()
    many = ("E1",) * (c.Dispatch.MAX_RECOMMENDED + 1)
    with pytest.raises(AlarmdeskError) as exc:
        p.handle(c.Dispatch(inc_id, "op", units=("E1",), recommended=many), T0)
    assert exc.value.code == "invalid_value"
    assert exc.value.field == "recommended"


def test_a_recommended_unit_named_twice_is_kept_once() -> None:
    p, inc_id = _pipeline()
    result = p.handle(c.Dispatch(inc_id, "op", units=("E2",), recommended=("E1", "E2", "E1")), T0)
    (event,) = [e for e in result.events if "recommended" in (e.detail or {})]
    assert event.type is EventType.TRANSITIONED
    assert event.detail["recommended"] == ["E1", "E2"]
    assert event.detail["override"] is True


def test_a_dispatch_as_recommended_is_no_override() -> None:
    p, inc_id = _pipeline()
    result = p.handle(c.Dispatch(inc_id, "op", units=("E1",), recommended=("E1", "E1")), T0)
    (event,) = [e for e in result.events if "recommended" in (e.detail or {})]
    assert event.detail["units"] == ["E1"] and event.detail["recommended"] == ["E1"]
    assert event.detail["override"] is False
