"""Reading a CAD export (CSV) with a mapping: call records and a data-quality report.

The file is read as a stream, one row at a time, whatever its size. With one row per call,
each row is a call. With one row per unit per call, rows are grouped by the call-id column;
they need not be adjacent, but a call's group is closed once its call id has not been seen for
``source.group_window`` rows (memory stays bounded), and a row of a call already closed is
skipped (``call_rows_apart``).

Data-quality rules, in the order they apply (docs/analytics.md says the same;
:class:`DataQuality` counts each):

1. a row an exclusion rule matches is skipped (``excluded``);
2. a row whose duplicate-rule columns repeat an earlier row's is the same row: counted once,
   the repeats counted under ``duplicates`` and read no further;
3. a row is skipped, counted by reason, when it has no call id (``missing_call_id``) or, in a
   unit-row file, no unit id (``missing_unit_id``), when its call type targets people
   exercising rights (``protected_purpose``), or when its type, priority, unit kind or station
   value is not in the mapping's table and the table has no default (``unmapped_type`` …);
4. a time that no format reads is counted (by column) and taken as missing; a call with no
   received time is skipped (``missing_received``);
5. an interval that is missing, negative or zero is left out of that interval's statistics
   and counted per interval;
6. coordinates that are missing, unreadable, out of range, (0, 0) or outside the mapping's
   bounding box are counted and left out of the record (lat/lon None), so out of every
   geographic figure.
"""

from __future__ import annotations

import csv
import math
import re
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from alarmdesk.domain.errors import InvalidField, MappingError
from alarmdesk.domain.history.mapping import Layout, Mapping, ValueMap
from alarmdesk.domain.history.records import (
    CALL_PHASES,
    UNIT_PHASES,
    CallRecord,
    Gap,
    Interval,
    Phase,
    UnitResponse,
    duration,
)
from alarmdesk.domain.purpose import find_protected

__all__ = ["DataQuality", "IntervalQuality", "check_csv", "read_calls", "read_calls_file"]


@dataclass(slots=True)
class IntervalQuality:
    """How many calls had a duration for one interval, and why the others had none."""

    measured: int = 0
    missing: int = 0
    negative: int = 0
    zero: int = 0

    def count(self, value: float | Gap) -> None:
        if isinstance(value, Gap):
            setattr(self, value.value, getattr(self, value.value) + 1)
        else:
            self.measured += 1


@dataclass(slots=True)
class DataQuality:
    """What reading a file found. Row counts are rows; interval and coordinate counts are
    calls (a call built from several unit rows counts once)."""

    rows_read: int = 0
    calls: int = 0
    duplicates: int = 0  # rows that repeat an earlier row (its duplicate-rule columns)
    skipped: Counter[str] = field(default_factory=Counter)  # reason → rows
    excluded: Counter[tuple[str, str]] = field(default_factory=Counter)  # (column, value) → rows
    unmapped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (key, value) → rows
    defaulted: Counter[tuple[str, str]] = field(default_factory=Counter)  # given the default
    unreadable_times: Counter[str] = field(default_factory=Counter)  # column → values
    coordinates: Counter[str] = field(default_factory=Counter)  # valid, missing, zero… → calls
    intervals: dict[Interval, IntervalQuality] = field(
        default_factory=lambda: {i: IntervalQuality() for i in Interval}
    )

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def lines(self) -> list[str]:
        """The report in words, one line each, as the import prints it."""
        out = [
            f"rows read: {self.rows_read}",
            f"calls: {self.calls}",
            f"duplicate rows (counted once): {self.duplicates}",
            f"rows skipped: {self.rows_skipped}",
        ]
        out += [f"  {reason}: {n}" for reason, n in sorted(self.skipped.items())]
        out += [f"  excluded {col} = {val!r}: {n}" for (col, val), n in _by_count(self.excluded)]
        out += [f"  unmapped {key} {val!r}: {n}" for (key, val), n in _by_count(self.unmapped)]
        if self.defaulted:
            out.append("values given the mapping's default:")
            out += [f"  {key} {val!r}: {n}" for (key, val), n in _by_count(self.defaulted)]
        if self.unreadable_times:
            out.append("unreadable times (taken as missing):")
            out += [f"  {col}: {n}" for col, n in sorted(self.unreadable_times.items())]
        out.append("coordinates (calls): " + _pairs(self.coordinates))
        out.append("intervals (calls): measured / missing / negative / zero")
        for interval, q in self.intervals.items():
            out.append(f"  {interval.value}: {q.measured} / {q.missing} / {q.negative} / {q.zero}")
        return out


def _by_count(counter: Counter[tuple[str, str]]) -> list[tuple[tuple[str, str], int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))


def _pairs(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


T = TypeVar("T")
_CsvReader = Any  # the type of csv.reader(...), which the csv module does not export


class _Unmapped(Exception):
    """A value the mapping does not map and has no default for: the row is skipped."""


@dataclass(slots=True)
class _Row:
    """One kept row, its values mapped."""

    call_id: str
    type_code: str
    priority: int | None
    station: str | None
    times: dict[Phase, datetime | None]
    unit: UnitResponse | None
    place: tuple[str, ...]  # the raw location cells, read once per call


@dataclass(slots=True)
class _Group:
    last_row: int
    rows: list[_Row]


def read_calls_file(
    path: str | Path, mapping: Mapping, quality: DataQuality
) -> Iterator[CallRecord]:
    """:func:`read_calls` over a file, opened in the mapping's encoding."""
    with Path(path).open(encoding=mapping.encoding, newline="") as f:
        yield from read_calls(f, mapping, quality)


def read_calls(
    lines: Iterable[str], mapping: Mapping, quality: DataQuality
) -> Iterator[CallRecord]:
    """The call records of a CSV export (its header first), counting into ``quality``.

    Args:
        lines: the file's lines, as ``open(..., newline="")`` gives them.
        mapping: a checked mapping (:func:`~alarmdesk.domain.history.mapping.parse_mapping`).
        quality: the report to count into; complete once the iterator is exhausted.

    Raises:
        MappingError: the file has no header, or lacks a column the mapping names.
        InvalidField: the file is not CSV in the mapping's encoding (``malformed_csv``).
    """
    yield from read_rows(_cells(csv.reader(lines, delimiter=mapping.delimiter)), mapping, quality)


def read_rows(
    rows: Iterator[list[str]], mapping: Mapping, quality: DataQuality
) -> Iterator[CallRecord]:
    """The call records of a table given as rows of text cells, its header first: a CSV
    file's (:func:`read_calls`) or a spreadsheet's (``domain/history/sheets.py``).

    Raises:
        MappingError: the table has no header, or lacks a column the mapping names.
    """
    header = next(rows, None)
    if header is None:
        raise MappingError("the file is empty: no header row")
    header = [h.strip() for h in header]
    mapping.check_header(header)
    index = {name: i for i, name in enumerate(header)}
    build = _Builder(mapping, index, quality)
    seen: set[tuple[str, ...]] = set()
    dup_cols = [index[c] for c in mapping.duplicate_columns]
    open_groups: OrderedDict[str, _Group] = OrderedDict()
    closed: set[str] = set()
    for n, cells in enumerate(rows):
        if not any(c.strip() for c in cells):
            continue  # a blank line is no row
        quality.rows_read += 1
        if len(cells) < len(header):
            cells = cells + [""] * (len(header) - len(cells))
        if build.excluded(cells):
            continue
        key = tuple(cells[i].strip() for i in dup_cols)
        if key in seen:
            quality.duplicates += 1
            continue
        seen.add(key)
        if (row := build.row(cells)) is None:
            continue
        if mapping.layout is Layout.CALL_ROWS:
            if (record := build.call([row])) is not None:
                yield record
            continue
        group = open_groups.get(row.call_id)
        if group is not None:
            group.last_row = n
            group.rows.append(row)
            open_groups.move_to_end(row.call_id)
        elif row.call_id in closed:
            quality.skipped["call_rows_apart"] += 1
        else:
            open_groups[row.call_id] = _Group(n, [row])
        while open_groups:
            call_id, oldest = next(iter(open_groups.items()))
            if oldest.last_row > n - mapping.group_window:
                break
            del open_groups[call_id]
            closed.add(call_id)
            if (record := build.call(oldest.rows)) is not None:
                yield record
    for group in open_groups.values():
        if (record := build.call(group.rows)) is not None:
            yield record


def check_csv(lines: Iterable[str], mapping: Mapping) -> int:
    """Reads a whole export as CSV without mapping a row, and returns its number of rows
    (blank lines included). An importer runs it first, so that a file that breaks off halfway
    stores nothing.

    Raises:
        MappingError: the file has no header, or lacks a column the mapping names.
        InvalidField: the file is not CSV in the mapping's encoding (``malformed_csv``).
    """
    return check_rows(_cells(csv.reader(lines, delimiter=mapping.delimiter)), mapping)


def check_rows(rows: Iterator[list[str]], mapping: Mapping) -> int:
    """Reads a whole table without mapping a row: its header is checked, its rows counted."""
    header = next(rows, None)
    if header is None:
        raise MappingError("the file is empty: no header row")
    mapping.check_header([h.strip() for h in header])
    return sum(1 for _ in rows)


def _cells(reader: _CsvReader) -> Iterator[list[str]]:
    """The reader's rows; a file that is not CSV in its stated encoding is bad input."""
    try:
        yield from reader
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InvalidField(
            f"line {reader.line_num}: not readable as CSV in the mapping's encoding ({exc})",
            code="malformed_csv",
        ) from exc


_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_POINT = re.compile(rf"\(?\s*{_NUMBER}\s*,\s*{_NUMBER}\s*\)?")  # "(lat, lon)"


class _Builder:
    """Maps rows and builds calls, counting everything it leaves out."""

    def __init__(self, mapping: Mapping, index: dict[str, int], quality: DataQuality) -> None:
        self.m = mapping
        self.q = quality
        self.col = {c: index[c] for c in mapping.columns().values()}
        self.protected: dict[str, bool] = {}  # type value → targets people exercising rights
        loc = mapping.location
        self.place_cols = [self.col[c] for c in loc.columns()] if loc else []

    def _skip(self, reason: str) -> None:
        self.q.skipped[reason] += 1

    def _value(self, vm: ValueMap[T], cells: list[str]) -> T | None:
        """The mapped value of a cell; raises _Unmapped (counted) when the row is skipped."""
        raw = cells[self.col[vm.column]].strip()
        found, value = vm.lookup(raw)
        if found:
            return value
        if vm.default is not None:
            self.q.defaulted[(vm.key, raw)] += 1
            return vm.default
        self.q.unmapped[(vm.key, raw)] += 1
        self._skip(f"unmapped_{vm.key}")
        raise _Unmapped

    def excluded(self, cells: list[str]) -> bool:
        """Whether an exclusion rule leaves the row out (counted)."""
        for rule in self.m.exclude:
            value = cells[self.col[rule.column]].strip()
            if value in rule.values:
                self.q.excluded[(rule.column, value)] += 1
                self._skip("excluded")
                return True
        return False

    def row(self, cells: list[str]) -> _Row | None:
        """The row's values mapped, or None when it is skipped (counted)."""
        m = self.m
        call_id = cells[self.col[m.call_id]].strip()
        if not call_id:
            self._skip("missing_call_id")
            return None
        unit_id = cells[self.col[m.unit_id]].strip() if m.unit_id else ""
        if m.layout is Layout.UNIT_ROWS and not unit_id:
            self._skip("missing_unit_id")
            return None
        raw_type = cells[self.col[m.type.column]].strip()
        if self._is_protected(raw_type):
            self._skip("protected_purpose")
            return None
        try:
            type_code = self._value(m.type, cells)
            priority = self._value(m.priority, cells) if m.priority else None
            kind = self._value(m.unit_kind, cells) if m.unit_kind else None
            station = self._value(m.station, cells) if m.station else None
        except _Unmapped:
            return None
        assert type_code is not None  # a type map gives a code or nothing
        times: dict[Phase, datetime | None] = {}
        for phase, column in m.phase_columns.items():
            raw = cells[self.col[column]].strip()
            if not raw:
                times[phase] = None
                continue
            times[phase] = m.parse_time(raw)
            if times[phase] is None:
                self.q.unreadable_times[column] += 1
        unit = None
        if unit_id:
            unit = UnitResponse(
                unit_id=unit_id,
                kind=kind,
                **{p.value: times.get(p) for p in UNIT_PHASES},
            )
        return _Row(
            call_id=call_id,
            type_code=type_code,
            priority=priority,
            station=station,
            times=times,
            unit=unit,
            place=tuple(cells[i].strip() for i in self.place_cols),
        )

    def _is_protected(self, value: str) -> bool:
        known = self.protected.get(value)
        if known is None:
            known = self.protected[value] = bool(value) and find_protected(value) is not None
        return known

    def call(self, rows: list[_Row]) -> CallRecord | None:
        first = rows[0]
        call_times = {p: _earliest(r.times.get(p) for r in rows) for p in CALL_PHASES}
        received = call_times[Phase.RECEIVED]
        if received is None:
            self.q.skipped["missing_received"] += len(rows)
            return None
        units = tuple(r.unit for r in rows if r.unit is not None)
        itype = self.m.taxonomy.resolve(first.type_code)
        lat, lon = self._place(first.place)
        draft = CallRecord(
            call_id=first.call_id,
            type_code=itype.code,
            category=itype.category,
            priority=first.priority if first.priority is not None else itype.priority,
            station_area=first.station,
            lat=lat,
            lon=lon,
            received=received,
            answered=call_times[Phase.ANSWERED],
            entered=call_times[Phase.ENTERED],
            units=units,
            # one row per call: the row's own unit phase times; per unit: the units' (below)
            dispatched=None if units else first.times.get(Phase.DISPATCHED),
            en_route=None if units else first.times.get(Phase.EN_ROUTE),
            on_scene=None if units else first.times.get(Phase.ON_SCENE),
            transport=None if units else first.times.get(Phase.TRANSPORT),
            cleared=None if units else first.times.get(Phase.CLEARED),
        )
        record = _with_unit_phases(draft) if units else draft
        self.q.calls += 1
        for interval, q in self.q.intervals.items():
            q.count(duration(record, interval))
        return record

    def _place(self, cells: tuple[str, ...]) -> tuple[float | None, float | None]:
        loc = self.m.location
        if loc is None or not any(cells):
            self.q.coordinates["missing"] += 1
            return None, None
        try:
            if loc.point:
                match = _POINT.fullmatch(cells[0])
                if match is None:
                    raise ValueError(cells[0])
                a, b = float(match.group(1)), float(match.group(2))
            else:
                a, b = float(cells[0]), float(cells[1])
        except ValueError:
            self.q.coordinates["unreadable"] += 1
            return None, None
        if not (math.isfinite(a) and math.isfinite(b)):
            self.q.coordinates["unreadable"] += 1
            return None, None
        if a == 0 and b == 0:
            self.q.coordinates["zero"] += 1
            return None, None
        if loc.transformer is not None:
            lon, lat = loc.transformer.transform(a, b)
        else:
            lat, lon = a, b
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or not math.isfinite(lat + lon):
            self.q.coordinates["out_of_range"] += 1
            return None, None
        if loc.bbox is not None and not loc.bbox.contains(lat, lon):
            self.q.coordinates["outside_bbox"] += 1
            return None, None
        self.q.coordinates["valid"] += 1
        return lat, lon


def _earliest(values: Iterable[datetime | None]) -> datetime | None:
    return min((v for v in values if v is not None), default=None)


def _with_unit_phases(draft: CallRecord) -> CallRecord:
    """The record with its unit phases set from its units (the first unit; the last to clear)."""
    times: dict[str, datetime | None] = {}
    for phase in UNIT_PHASES:
        unit = draft.first_unit(phase)
        times[phase.value] = unit.time(phase) if unit is not None else None
    return msgspec.structs.replace(draft, **times)
