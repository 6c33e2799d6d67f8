"""The heat layer: calls per H3 cell over the days a KPI query selects, as a GeoJSON
FeatureCollection (RFC 7946) the console's map draws and the API returns (docs/analytics.md).

Each Feature is one cell's outline with its figures (``domain/heat.py`` computes them); the
collection carries the query it answers and the calls counted apart for want of a location.
Reading it is a ``combine`` audit entry (rule ``report.heat``), committed before any figure is
computed, as for the KPI report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

import msgspec
import sqlalchemy as sa

from alarmdesk.analytics.parts import PartStore
from alarmdesk.analytics.queries import Selection
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.heat import cells
from alarmdesk.domain.hexgrid import DEFAULT_RESOLUTION, boundary, check_cell, resolution_of
from alarmdesk.domain.history import Interval
from alarmdesk.domain.kpi import Dimension
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation
from alarmdesk.service.actions import in_transaction
from alarmdesk.service.analytics import export, open_analytics
from alarmdesk.service.history import AUDIT_OBJECT
from alarmdesk.service.kpi_report import DEFAULT_TARGET, PERCENTILES, KpiQuery
from alarmdesk.store.audit import AuditChain

__all__ = [
    "HeatFeature",
    "HeatPolygon",
    "HeatProperties",
    "HeatReport",
    "check_area",
    "check_interval",
    "heat_report",
]

AUDIT_RULE: Final = "report.heat"


class HeatProperties(msgspec.Struct, frozen=True):
    """One cell's figures: its calls, and the interval's count (calls that had it), p50 and
    p90 in seconds (null when none had it)."""

    cell: str  # the H3 index, 15 hex digits
    calls: int
    count: int
    p50: float | None
    p90: float | None


class HeatPolygon(msgspec.Struct, frozen=True):
    """The cell's outline: one closed ring of [longitude, latitude] positions."""

    coordinates: list[list[list[float]]]
    type: Literal["Polygon"] = "Polygon"


class HeatFeature(msgspec.Struct, frozen=True):
    geometry: HeatPolygon
    properties: HeatProperties
    type: Literal["Feature"] = "Feature"


class HeatReport(msgspec.Struct, frozen=True):
    """Calls per H3 cell received in the days from ``from`` to ``to`` (both included, in
    ``timezone``), of an import (``source``: one, or all) or of alarmdesk's own finished
    incidents (``own``). A GeoJSON FeatureCollection; the other members echo the query."""

    first_day: str = msgspec.field(name="from")
    last_day: str = msgspec.field(name="to")
    timezone: str = "UTC"
    source: str | None = None
    own: bool = False
    resolution: int = DEFAULT_RESOLUTION
    area: str | None = None  # only the calls inside this cell
    interval: str = Interval.CALL_TO_ON_SCENE.value
    target_seconds: float = DEFAULT_TARGET  # a cell whose p90 exceeds it is marked
    percentiles: str = PERCENTILES
    calls: int = 0  # every call counted, located or not
    unlocated: int = 0  # calls without a usable location: in no cell
    features: list[HeatFeature] = msgspec.field(default_factory=list)
    type: Literal["FeatureCollection"] = "FeatureCollection"


def check_interval(value: str, field: str = "interval") -> Interval:
    """An interval by its name (``call_to_on_scene``).

    Raises:
        InvalidField: not an interval's name (``invalid_value``).
    """
    try:
        return Interval(value.strip())
    except ValueError:
        allowed = ", ".join(i.value for i in Interval)
        raise InvalidField(
            f"{field} {value!r}: one of {allowed}", field=field, code="invalid_value"
        ) from None


def check_area(value: str, resolution: int, field: str = "cell") -> str:
    """A cell to limit a heat report to: a valid H3 cell no finer than the report's cells.

    Raises:
        InvalidField: not an H3 cell, or finer than ``resolution`` (``invalid_value``).
    """
    cell = check_cell(value, field)
    if resolution_of(cell) > resolution:
        raise InvalidField(
            f"{field} {cell} is of resolution {resolution_of(cell)}, finer than the report's "
            f"cells ({resolution})",
            field=field,
            code="invalid_value",
        )
    return cell


def heat_report(
    engine: sa.Engine,
    chain: AuditChain,
    query: KpiQuery,
    *,
    actor: Actor,
    now: datetime,
    interval: Interval = Interval.CALL_TO_ON_SCENE,
    area: str | None = None,
    target_seconds: float = DEFAULT_TARGET,
    analytics: PartStore,
) -> HeatReport:
    """The heat layer over the calls ``query`` selects, in cells of ``query.resolution`` (its
    grouping and period are not used).

    The ``combine`` audit entry (the days, source, resolution, interval; never a figure) is
    committed first; then what finished since the last export is exported, and the figures
    are computed with DuckDB over the analytics store (docs/analytics.md). ``interval`` and
    ``area`` are checked by the caller (:func:`check_interval`, :func:`check_area`).
    """
    resolution = query.resolution
    entry = AuditEvent(
        actor,
        Operation.COMBINE,
        AUDIT_OBJECT,
        f"{query.first_day.isoformat()}/{query.last_day.isoformat()}",
        rule=AUDIT_RULE,
        detail={
            "source": query.source,
            "own": query.own,
            "timezone": query.tz.key,
            "resolution": resolution,
            "interval": interval.value,
            "cell": area,
        },
    )

    def log(conn: sa.Connection) -> None:
        chain.append(conn, [entry], now)

    in_transaction(engine, chain, log, "heat report")

    export(engine, analytics, chain, now=now)
    which = Selection(query.start, query.end, own=query.own, source=query.source)
    with open_analytics(analytics) as figures:
        kpis = figures.kpis(
            which, (Dimension.H3,), intervals=(interval,), resolution=resolution, area=area
        )
    table = cells(kpis, interval)
    return HeatReport(
        first_day=query.first_day.isoformat(),
        last_day=query.last_day.isoformat(),
        timezone=query.tz.key,
        source=query.source,
        own=query.own,
        resolution=resolution,
        area=area,
        interval=interval.value,
        target_seconds=target_seconds,
        calls=table.calls,
        unlocated=table.unlocated,
        features=[
            HeatFeature(
                geometry=HeatPolygon([boundary(c.cell)]),
                properties=HeatProperties(c.cell, c.calls, c.stats.count, c.stats.p50, c.stats.p90),
            )
            for c in table.cells
        ],
    )
