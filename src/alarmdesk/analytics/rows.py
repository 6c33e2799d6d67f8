"""The analytics store's rows: what a part's three files hold, and how a call record becomes
their rows (docs/analytics.md, "The files"). ``analytics/parts.py`` writes, commits, merges
and prunes the files; this module says what is in them.

No free text, no people, no summaries: only what the KPIs need.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pyarrow as pa

from alarmdesk.domain.hexgrid import MAX_RESOLUTION, MIN_RESOLUTION, cell_of
from alarmdesk.domain.history import CALL_PHASES, UNIT_PHASES, CallRecord, Phase, phase_time

__all__ = [
    "CALL_SCHEMA",
    "H3_RESOLUTIONS",
    "KIND_SCHEMA",
    "SCHEMAS",
    "UNIT_SCHEMA",
    "Columns",
    "Key",
    "by_received",
    "h3_column",
    "naive",
]

H3_RESOLUTIONS: Final = tuple(range(MIN_RESOLUTION, MAX_RESOLUTION + 1))
_TIME: Final = pa.timestamp("us")  # UTC, without a zone: DuckDB reads it as TIMESTAMP
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PHASE_NAMES: Final = tuple(p.value for p in Phase)
_CALL_PHASE_NAMES: Final = tuple(p.value for p in CALL_PHASES)
_UNIT_PHASE_NAMES: Final = tuple((p, p.value) for p in UNIT_PHASES)
_MICROSECOND: Final = timedelta(microseconds=1)
_ROW_BITS: Final = 32  # a call's n: its first part's number, then its row in that part


def h3_column(resolution: int) -> str:
    """The column holding a call's H3 cell at ``resolution``."""
    return f"h3_{resolution}"


_KEY_FIELDS: Final = [
    pa.field("own", pa.bool_(), nullable=False),  # alarmdesk's own incident, or imported
    pa.field("source", pa.string()),  # the import's source name; null for own incidents
    pa.field("call_id", pa.string(), nullable=False),  # the export's id; own: the incident id
    # unique in the store, kept when a part is rewritten or merged: joins kinds to calls
    pa.field("n", pa.int64(), nullable=False),
]
_GROUP_FIELDS: Final = [
    pa.field("type_code", pa.string(), nullable=False),
    pa.field("category", pa.string(), nullable=False),
    pa.field("priority", pa.int16(), nullable=False),
    pa.field("station_area", pa.string()),
]
CALL_SCHEMA: Final = pa.schema(
    [
        *_KEY_FIELDS,
        *_GROUP_FIELDS,
        pa.field("desks", pa.list_(pa.string())),
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
        *(pa.field(h3_column(r), pa.string()) for r in H3_RESOLUTIONS),
        *(pa.field(p.value, _TIME) for p in Phase),
        # the latest time the call records (retention counts from it)
        pa.field("last_time", _TIME, nullable=False),
    ]
)
KIND_SCHEMA: Final = pa.schema(
    [
        *_KEY_FIELDS,
        *_GROUP_FIELDS,
        pa.field("kind", pa.string()),
        *(pa.field(p.value, _TIME) for p in Phase),  # unit phases: this kind's units only
    ]
)
UNIT_SCHEMA: Final = pa.schema(
    [
        *_KEY_FIELDS,
        pa.field("received", _TIME, nullable=False),  # the call's, to select by day
        pa.field("station_area", pa.string()),  # the call's
        pa.field("unit_id", pa.string(), nullable=False),
        pa.field("kind", pa.string()),
        *(pa.field(p.value, _TIME) for p in UNIT_PHASES),
    ]
)
SCHEMAS: Final = {"calls": CALL_SCHEMA, "kinds": KIND_SCHEMA, "units": UNIT_SCHEMA}


@dataclass(frozen=True, slots=True, order=True)
class Key:
    """What identifies a call in the store: own incidents by id, imports by source and id."""

    own: bool
    source: str | None
    call_id: str


def naive(micros: int) -> datetime:
    return (_EPOCH + micros * _MICROSECOND).replace(tzinfo=None)


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


def _times(values: list[int | None]) -> pa.Array:
    return pa.array(values, pa.int64()).cast(_TIME)


class Columns:
    """A part's rows gathered column by column, then one Arrow table each.

    Args:
        number: the part's number, the high bits of each new call's ``n``.
    """

    def __init__(self, number: int) -> None:
        self.base = number << _ROW_BITS
        self.columns: dict[str, dict[str, list[Any]]] = {
            name: {f.name: [] for f in schema} for name, schema in SCHEMAS.items()
        }

    def __len__(self) -> int:
        return len(self.columns["calls"]["n"])

    def add(self, key: Key, record: CallRecord) -> None:
        n = self.base + len(self)
        c = self.columns["calls"]
        _add_key(c, key, n)
        _add_group(c, record)
        c["desks"].append(list(record.desks))
        c["lat"].append(record.lat)
        c["lon"].append(record.lon)
        for r in H3_RESOLUTIONS:
            c[h3_column(r)].append(cell_of(record.lat, record.lon, r))
        for name in _PHASE_NAMES:
            c[name].append(_micros(getattr(record, name)))
        c["last_time"].append(_micros(record.last_time()))
        k = self.columns["kinds"]
        call_times = [(name, _micros(getattr(record, name))) for name in _CALL_PHASE_NAMES]
        kinds: list[str | None] = list(record.unit_kinds()) or [None]
        for kind in kinds:
            only = None if kind is None else {kind}
            _add_key(k, key, n)
            _add_group(k, record)
            k["kind"].append(kind)
            for name, value in call_times:
                k[name].append(value)
            for p, name in _UNIT_PHASE_NAMES:
                k[name].append(_micros(phase_time(record, p, only)))
        u = self.columns["units"]
        received = _micros(record.received)
        for unit in record.units:
            _add_key(u, key, n)
            u["received"].append(received)
            u["station_area"].append(record.station_area)
            u["unit_id"].append(unit.unit_id)
            u["kind"].append(unit.kind)
            for _, name in _UNIT_PHASE_NAMES:
                u[name].append(_micros(getattr(unit, name)))

    def tables(self) -> dict[str, pa.Table]:
        return {name: _arrow_table(self.columns[name], schema) for name, schema in SCHEMAS.items()}


def _add_key(columns: dict[str, list[Any]], key: Key, n: int) -> None:
    columns["own"].append(key.own)
    columns["source"].append(key.source)
    columns["call_id"].append(key.call_id)
    columns["n"].append(n)


def _add_group(columns: dict[str, list[Any]], record: CallRecord) -> None:
    columns["type_code"].append(record.type_code)
    columns["category"].append(record.category.value)
    columns["priority"].append(record.priority)
    columns["station_area"].append(record.station_area)


def _arrow_table(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    arrays = [
        _times(columns[f.name]) if f.type == _TIME else pa.array(columns[f.name], f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def by_received(table: pa.Table) -> pa.Table:
    """The rows in order of received time (then n, so the order is the same every time)."""
    return table.sort_by([("received", "ascending"), ("n", "ascending")])
