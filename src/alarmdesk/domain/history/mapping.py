"""The mapping of a CAD export onto :class:`~alarmdesk.domain.history.records.CallRecord`.

A centre describes its old CAD's export in a TOML file, without code (docs/analytics.md has
the whole format, docs/examples/sf-fire-calls.toml a real one): which column holds each phase's
time and how times are written, how its call types, priorities, unit kinds and station areas
map to alarmdesk's, where the coordinates are, which rows to leave out, and which columns
identify the same row twice. :func:`parse_mapping` reads and checks it; a file that cannot be
used is refused with a :class:`~alarmdesk.domain.errors.MappingError` naming the key.

Every source call type the file names, and every unit kind or station name it gives, is
screened like any other purpose text: a CAD's "demonstration" or "protest" type cannot be
mapped onto an incident type (``protected_purpose``), and the reader skips rows of such types
instead of giving them a default (``domain/history/reader.py``).
"""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Final, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import pyproj

from alarmdesk.domain.errors import MappingError
from alarmdesk.domain.history.records import Phase
from alarmdesk.domain.history.times import ISO_FORMAT, TimeFormat
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.taxonomy import Taxonomy, default_types

__all__ = [
    "ISO_FORMAT",
    "BoundingBox",
    "Exclusion",
    "Layout",
    "LocationSpec",
    "Mapping",
    "ValueMap",
    "load_mapping",
    "parse_mapping",
]

T = TypeVar("T")

# A group of unit rows is closed once its call id has not been seen for this many rows.
DEFAULT_GROUP_WINDOW: Final = 10_000
# The days a call's times may fall on, and a report may name (UTC): a time outside them is
# a typing error in the export, read as unreadable, never stored.
EARLIEST_DAY: Final = date(1900, 1, 1)
LATEST_DAY: Final = date(2999, 12, 31)


class Layout(enum.StrEnum):
    CALL_ROWS = "call_rows"  # one row per call
    UNIT_ROWS = "unit_rows"  # one row per unit per call, grouped by the call-id column


# ------------------------------------------------------------------ the file, as written


class _Source(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    call_id: str
    layout: Literal["call_rows", "unit_rows"] = "call_rows"
    delimiter: str = ","
    encoding: str = "utf-8-sig"
    group_window: int = DEFAULT_GROUP_WINDOW
    sheet: str | None = None  # a spreadsheet's sheet (XLSX); None: its first


class _PhaseColumns(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    received: str
    answered: str | None = None
    entered: str | None = None
    dispatched: str | None = None
    en_route: str | None = None
    on_scene: str | None = None
    transport: str | None = None
    cleared: str | None = None


class _Times(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    timezone: str
    formats: list[str]
    columns: _PhaseColumns


# values are checked one by one (_text, _check_priority) so that an error names its key:
# msgspec reports a bad dict value only as "values[...]"
class _StrValues(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    column: str
    values: dict[str, object] = {}
    default: str | None = None


class _IntValues(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    column: str
    values: dict[str, object] = {}
    default: int | None = None


class _Unit(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str


class _BBox(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    south: float
    west: float
    north: float
    east: float


class _Location(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    lat: str | None = None
    lon: str | None = None
    point: str | None = None
    x: str | None = None
    y: str | None = None
    crs: int | str | None = None
    bbox: _BBox | None = None


class _Exclude(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    column: str
    values: list[str]


class _Duplicates(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    columns: list[str]


class _File(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    source: _Source
    times: _Times
    type: _StrValues
    priority: _IntValues | None = None
    unit: _Unit | None = None
    unit_kind: _StrValues | None = None
    station: _StrValues | None = None
    location: _Location | None = None
    exclude: list[_Exclude] = []
    duplicates: _Duplicates | None = None


# ------------------------------------------------------------------ the mapping, checked


@dataclass(frozen=True, slots=True)
class ValueMap(Generic[T]):
    """How one column's values become alarmdesk's (a type code, a priority, a unit kind…).

    A value listed in ``values`` maps to its entry. Without a ``values`` table, ``accept``
    reads the value itself (a type column that already holds taxonomy codes). A value neither
    gives is *unmapped*: it takes ``default`` when the file states one, or else its row is
    skipped and counted with the reason ``unmapped_<key>``.
    """

    key: str  # the table of the mapping file: type, priority, unit_kind, station
    column: str
    values: MappingProxyType[str, T]
    default: T | None
    accept: Callable[[str], tuple[bool, T | None]] = field(compare=False)

    def lookup(self, raw: str) -> tuple[bool, T | None]:
        """(True, value) when the value maps; (False, None) when it is unmapped."""
        value = raw.strip()
        if self.values:
            if value in self.values:
                return True, self.values[value]
            return False, None
        return self.accept(value)


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """Where valid coordinates lie (WGS 84 degrees); a call outside is left out of maps."""

    south: float
    west: float
    north: float
    east: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east


@dataclass(frozen=True, slots=True)
class LocationSpec:
    """Where a row's coordinates are: ``lat``/``lon`` columns, a ``point`` column written
    "(lat, lon)", or ``x``/``y`` columns in a projected ``crs`` (an EPSG code)."""

    lat: str | None = None
    lon: str | None = None
    point: str | None = None
    x: str | None = None
    y: str | None = None
    crs: str | None = None
    bbox: BoundingBox | None = None
    transformer: pyproj.Transformer | None = field(default=None, compare=False, repr=False)

    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.lat, self.lon, self.point, self.x, self.y) if c)


@dataclass(frozen=True, slots=True)
class Exclusion:
    """Rows whose ``column`` holds one of ``values`` (compared exactly, spaces trimmed) are
    left out, counted under ``excluded`` with the column and value."""

    column: str
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class Mapping:
    """A checked mapping: everything the reader needs to turn rows into call records."""

    layout: Layout
    call_id: str
    delimiter: str
    encoding: str
    group_window: int
    sheet: str | None  # the sheet of a spreadsheet export; None: the first
    timezone: ZoneInfo
    formats: tuple[TimeFormat, ...]
    phase_columns: MappingProxyType[Phase, str]
    type: ValueMap[str]
    priority: ValueMap[int] | None  # None: the priority of the call's type
    unit_id: str | None
    unit_kind: ValueMap[str] | None
    station: ValueMap[str] | None
    location: LocationSpec | None
    exclude: tuple[Exclusion, ...]
    duplicate_columns: tuple[str, ...]
    taxonomy: Taxonomy = field(compare=False, repr=False)

    def columns(self) -> dict[str, str]:
        """Every column the mapping reads, keyed by the mapping-file key that names it."""
        named: dict[str, str] = {"source.call_id": self.call_id}
        for phase, column in self.phase_columns.items():
            named[f"times.columns.{phase.value}"] = column
        for vm in (self.type, self.priority, self.unit_kind, self.station):
            if vm is not None:
                named[f"{vm.key}.column"] = vm.column
        if self.unit_id:
            named["unit.id"] = self.unit_id
        if self.location is not None:
            for key in ("lat", "lon", "point", "x", "y"):
                column = getattr(self.location, key)
                if column:
                    named[f"location.{key}"] = column
        for i, rule in enumerate(self.exclude):
            named[f"exclude[{i}].column"] = rule.column
        for i, column in enumerate(self.duplicate_columns):
            named[f"duplicates.columns[{i}]"] = column
        return named

    def check_header(self, header: Sequence[str]) -> None:
        """Refuses a file that lacks a column the mapping names.

        Raises:
            MappingError: with the mapping key as ``field`` and the missing column named.
        """
        present = set(header)
        for key, column in self.columns().items():
            if column not in present:
                raise MappingError(
                    f"{key}: column {column!r} is not in the file "
                    f"(its columns: {', '.join(repr(h) for h in header)})",
                    field=key,
                )

    def parse_time(self, raw: str) -> datetime | None:
        """A time as written in the export → aware UTC; None when no format reads it.

        A time without an offset is local time in the mapping's time zone; a local time that
        occurs twice (clocks going back) is read as the first of the two (``fold=0``).
        """
        text = raw.strip()
        for fmt in self.formats:
            value = fmt.parse(text)
            if value is None:
                continue
            if value.tzinfo is None:
                value = value.replace(tzinfo=self.timezone)
            try:
                value = value.astimezone(UTC)
            except OverflowError:  # 9999-12-31 23:59 in a zone west of UTC
                return None
            # Outside the days a report may name: unreadable, as the reports would refuse
            # them (a clear time in 2999 made a 974-year handling time, kept until then).
            return value if EARLIEST_DAY <= value.date() <= LATEST_DAY else None
        return None


# ------------------------------------------------------------------ reading and checking


def load_mapping(path: str | Path, taxonomy: Taxonomy | None = None) -> Mapping:
    """Reads and checks a mapping file (TOML). See :func:`parse_mapping`."""
    p = Path(path)
    try:
        text = p.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{p}: cannot read the mapping file: {exc}") from exc
    return parse_mapping(text, taxonomy, source=str(p))


def parse_mapping(text: str, taxonomy: Taxonomy | None = None, *, source: str = "") -> Mapping:
    """A checked :class:`Mapping` from the text of a TOML mapping file.

    Args:
        text: the file's text.
        taxonomy: the incident types the ``type`` table maps to (default: alarmdesk's).
        source: the file's name, put before the key in error messages.

    Raises:
        MappingError: the file is not TOML, has an unknown or missing key, a value of the
            wrong type, or a value that cannot be used; ``field`` is the dotted key.
        ProtectedPurposeError: a source call type, unit kind or station value targets people
            exercising rights (code ``protected_purpose``).
    """
    where = f"{source}: " if source else ""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{where}not a TOML file: {exc}") from exc
    try:
        raw = msgspec.convert(data, _File)
    except msgspec.ValidationError as exc:
        key = _key_of(str(exc))
        raise MappingError(f"{where}{key}: {_plain(str(exc))}", field=key or None) from exc
    try:
        return _build(raw, taxonomy or Taxonomy(default_types()))
    except MappingError as exc:
        if where:
            exc.args = (where + exc.message,)
            exc.message = where + exc.message
        raise


_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED = re.compile(r"(?:unknown|required) field `(?P<name>[^`]+)`")


def _key_of(message: str) -> str:
    """The dotted key a msgspec validation message is about ("times.columns.received")."""
    at = _AT.search(message)
    path = at.group("path") if at else ""
    named = _NAMED.search(message)
    if named:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    return path


def _plain(message: str) -> str:
    return _AT.sub("", message)


def _fail(key: str, message: str) -> MappingError:
    return MappingError(f"{key}: {message}", field=key)


def _nonblank(key: str, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise _fail(key, "must name a column, not be empty")
    return value


def _build(raw: _File, taxonomy: Taxonomy) -> Mapping:
    src = raw.source
    _nonblank("source.call_id", src.call_id)
    if len(src.delimiter) != 1:
        raise _fail("source.delimiter", f"must be one character, not {src.delimiter!r}")
    if src.group_window < 1:
        raise _fail("source.group_window", "must be at least 1 (rows)")
    if src.sheet is not None and not src.sheet.strip():
        raise _fail("source.sheet", "must name a sheet, not be empty")
    try:
        "".encode(src.encoding)
    except LookupError as exc:
        raise _fail("source.encoding", f"unknown encoding {src.encoding!r}") from exc
    layout = Layout(src.layout)
    if layout is Layout.UNIT_ROWS and raw.unit is None:
        raise _fail("unit.id", 'layout "unit_rows" needs the unit-id column ([unit] id = …)')

    try:
        zone = ZoneInfo(raw.times.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail("times.timezone", f"unknown time zone {raw.times.timezone!r}") from exc
    if not raw.times.formats:
        raise _fail("times.formats", "needs at least one time format")
    for i, fmt in enumerate(raw.times.formats):
        _check_format(f"times.formats[{i}]", fmt)
    phase_columns = {
        Phase(name): column
        for name in msgspec.structs.asdict(raw.times.columns)
        if (column := _nonblank(f"times.columns.{name}", getattr(raw.times.columns, name)))
    }

    unit_id = _nonblank("unit.id", raw.unit.id) if raw.unit else None
    location = _location(raw.location) if raw.location else None
    exclude = tuple(_exclusion(i, e) for i, e in enumerate(raw.exclude))
    if raw.duplicates is not None:
        if not raw.duplicates.columns:
            raise _fail("duplicates.columns", "needs at least one column")
        for i, column in enumerate(raw.duplicates.columns):
            _nonblank(f"duplicates.columns[{i}]", column)
        duplicates = tuple(raw.duplicates.columns)
    else:
        duplicates = (src.call_id,) if unit_id is None else (src.call_id, unit_id)

    return Mapping(
        layout=layout,
        call_id=src.call_id,
        delimiter=src.delimiter,
        encoding=src.encoding,
        group_window=src.group_window,
        sheet=src.sheet,
        timezone=zone,
        formats=tuple(TimeFormat(f) for f in raw.times.formats),
        phase_columns=MappingProxyType(phase_columns),
        type=_type_map(raw.type, taxonomy),
        priority=_priority_map(raw.priority) if raw.priority else None,
        unit_id=unit_id,
        unit_kind=_name_map("unit_kind", raw.unit_kind) if raw.unit_kind else None,
        station=_name_map("station", raw.station) if raw.station else None,
        location=location,
        exclude=exclude,
        duplicate_columns=duplicates,
        taxonomy=taxonomy,
    )


_SAMPLE = datetime(2017, 1, 7, 23, 58, 9, tzinfo=UTC)


def _check_format(key: str, fmt: str) -> None:
    if fmt == ISO_FORMAT:
        return
    if "%" not in fmt:
        raise _fail(key, f'{fmt!r} is neither a strptime format nor "{ISO_FORMAT}"')
    try:
        datetime.strptime(_SAMPLE.strftime(fmt), fmt)  # noqa: DTZ007 (a check, no time kept)
    except ValueError as exc:
        raise _fail(key, f"{fmt!r} is not a usable time format ({exc})") from exc


def _quoted(key: str, value: str) -> str:
    return f'{key}."{value}"'


def _type_map(spec: _StrValues, taxonomy: Taxonomy) -> ValueMap[str]:
    _nonblank("type.column", spec.column)
    values: dict[str, str] = {}
    for source_value, target in spec.values.items():
        key = _quoted("type.values", source_value)
        screen({key: source_value})
        code = _text(key, target).upper()
        if code not in taxonomy:
            raise _fail(key, f"{target!r} is not an incident type of the taxonomy")
        values[source_value.strip()] = code
    default = None
    if spec.default is not None:
        if spec.default.strip().upper() not in taxonomy:
            raise _fail("type.default", f"{spec.default!r} is not an incident type")
        default = spec.default.strip().upper()

    def accept(value: str) -> tuple[bool, str | None]:
        code = value.upper()
        return (True, code) if code and code in taxonomy else (False, None)

    return ValueMap("type", spec.column, MappingProxyType(values), default, accept)


def _text(key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, f"must be a text, not {value!r}")
    return value.strip()


def _check_priority(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise _fail(key, f"a priority is 1 (immediate threat to life) … 5, not {value}")
    return value


def _priority_map(spec: _IntValues) -> ValueMap[int]:
    _nonblank("priority.column", spec.column)
    values = {
        k.strip(): _check_priority(_quoted("priority.values", k), v) for k, v in spec.values.items()
    }
    default = None if spec.default is None else _check_priority("priority.default", spec.default)

    def accept(value: str) -> tuple[bool, int | None]:
        return (True, int(value)) if value in {"1", "2", "3", "4", "5"} else (False, None)

    return ValueMap("priority", spec.column, MappingProxyType(values), default, accept)


def _name_map(key: str, spec: _StrValues) -> ValueMap[str]:
    """Unit kinds and station areas: names alarmdesk will show, so they are screened."""
    _nonblank(f"{key}.column", spec.column)
    values: dict[str, str] = {}
    for source_value, target in spec.values.items():
        entry = _quoted(f"{key}.values", source_value)
        name = _text(entry, target)
        screen({entry: name})
        values[source_value.strip()] = name
    default = None
    if spec.default is not None:
        if not spec.default.strip():
            raise _fail(f"{key}.default", "must not be empty")
        screen({f"{key}.default": spec.default})
        default = spec.default.strip()

    def accept(value: str) -> tuple[bool, str | None]:
        # the export's own names, as written; an empty cell is "not recorded", not unmapped
        return True, value or None

    return ValueMap(key, spec.column, MappingProxyType(values), default, accept)


def _location(spec: _Location) -> LocationSpec:
    for key in ("lat", "lon", "point", "x", "y"):
        _nonblank(f"location.{key}", getattr(spec, key))
    ways = [
        name
        for name, given in (
            ("lat/lon", spec.lat or spec.lon),
            ("point", spec.point),
            ("x/y", spec.x or spec.y),
        )
        if given
    ]
    if len(ways) != 1:
        raise _fail(
            "location",
            "state exactly one of: lat and lon columns, a point column, or x and y with crs"
            + (f" (found {' and '.join(ways)})" if ways else ""),
        )
    if ways == ["lat/lon"] and not (spec.lat and spec.lon):
        raise _fail("location.lon" if spec.lat else "location.lat", "lat and lon go together")
    crs: str | None = None
    transformer: pyproj.Transformer | None = None
    if ways == ["x/y"]:
        if not (spec.x and spec.y):
            raise _fail("location.y" if spec.x else "location.x", "x and y go together")
        if spec.crs is None:
            raise _fail("location.crs", "x/y columns need the EPSG code of their projection")
        crs = f"EPSG:{spec.crs}" if isinstance(spec.crs, int) else spec.crs.strip()
        if not re.fullmatch(r"(?i)EPSG:\d+", crs):
            raise _fail("location.crs", f"{spec.crs!r} is not an EPSG code (EPSG:2227 or 2227)")
        try:
            transformer = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        except pyproj.exceptions.CRSError as exc:
            raise _fail("location.crs", f"{crs} is not a known projection ({exc})") from exc
    elif spec.crs is not None:
        raise _fail("location.crs", "a crs goes with x and y columns only")
    bbox = None
    if spec.bbox is not None:
        b = spec.bbox
        if not (-90 <= b.south < b.north <= 90):
            raise _fail("location.bbox", "needs -90 ≤ south < north ≤ 90")
        if not (-180 <= b.west < b.east <= 180):
            raise _fail("location.bbox", "needs -180 ≤ west < east ≤ 180")
        bbox = BoundingBox(b.south, b.west, b.north, b.east)
    return LocationSpec(
        lat=spec.lat,
        lon=spec.lon,
        point=spec.point,
        x=spec.x,
        y=spec.y,
        crs=crs,
        bbox=bbox,
        transformer=transformer,
    )


def _exclusion(i: int, spec: _Exclude) -> Exclusion:
    _nonblank(f"exclude[{i}].column", spec.column)
    if not spec.values:
        raise _fail(f"exclude[{i}].values", "needs at least one value")
    return Exclusion(spec.column, frozenset(v.strip() for v in spec.values))
