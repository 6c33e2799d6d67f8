"""The analytics store's files: finished calls as Parquet parts, committed by a manifest.

A directory holds:

- ``calls-NNNNNN.parquet``: one row per call (:data:`CALL_SCHEMA`): its key, type, category,
  priority, station area, desks, lat/lon as stored, its H3 cells at resolutions 5–10, its phase
  times (UTC, microseconds), and per unit kind the call's unit phase times counting only units
  of that kind (``kinds``), so that grouping by unit kind is one scan;
- ``units-NNNNNN.parquet``: one row per unit response (:data:`UNIT_SCHEMA`), for workload;
- ``manifest.json``: the parts that exist, and the export's watermarks. A part that the
  manifest does not name does not exist: queries read only the parts it names.

Writing is crash-safe: a part is written under a temporary name, flushed and renamed; the
manifest (with the advanced watermarks) is written the same way and renamed over the old one
only after that. A crash between the part's rename and the manifest's leaves a file the
manifest does not name: no query reads it, and the next export removes it and exports the
same calls again from the old watermark. So a call is in the store at most once.

The watermarks live in the manifest, beside the parts they describe (not in the database):
they commit together with the parts in one rename, a store copied or deleted takes its
watermarks with it (a deleted store is exported afresh), and the export never writes to the
live database.

No free text, no people, no summaries: only what the KPIs need.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alarmdesk.domain.errors import AnalyticsUnavailable
from alarmdesk.domain.hexgrid import MAX_RESOLUTION, MIN_RESOLUTION, cell_of
from alarmdesk.domain.history import UNIT_PHASES, CallRecord, Phase, phase_time

__all__ = [
    "CALL_SCHEMA",
    "H3_RESOLUTIONS",
    "UNIT_SCHEMA",
    "Key",
    "Manifest",
    "Part",
    "PartStore",
    "Watermark",
    "h3_column",
]

FORMAT: Final = 1  # the manifest's and the files' layout; another is refused, not guessed
H3_RESOLUTIONS: Final = tuple(range(MIN_RESOLUTION, MAX_RESOLUTION + 1))
_TIME: Final = pa.timestamp("us")  # UTC, without a zone: DuckDB reads it as TIMESTAMP
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PHASE_NAMES: Final = tuple(p.value for p in Phase)
_UNIT_PHASE_NAMES: Final = tuple((p, p.value) for p in UNIT_PHASES)
_MICROSECOND: Final = timedelta(microseconds=1)


def h3_column(resolution: int) -> str:
    """The column holding a call's H3 cell at ``resolution``."""
    return f"h3_{resolution}"


_KIND: Final = pa.struct(
    [pa.field("kind", pa.string()), *(pa.field(p.value, _TIME) for p in UNIT_PHASES)]
)
_KEY_FIELDS: Final = [
    pa.field("own", pa.bool_(), nullable=False),  # alarmdesk's own incident, or imported
    pa.field("source", pa.string()),  # the import's source name; null for own incidents
    pa.field("call_id", pa.string(), nullable=False),  # the export's id; own: the incident id
]
CALL_SCHEMA: Final = pa.schema(
    [
        *_KEY_FIELDS,
        pa.field("type_code", pa.string(), nullable=False),
        pa.field("category", pa.string(), nullable=False),
        pa.field("priority", pa.int16(), nullable=False),
        pa.field("station_area", pa.string()),
        pa.field("desks", pa.list_(pa.string())),
        pa.field("lat", pa.float64()),
        pa.field("lon", pa.float64()),
        *(pa.field(h3_column(r), pa.string()) for r in H3_RESOLUTIONS),
        *(pa.field(p.value, _TIME) for p in Phase),
        # the latest time the call records (retention counts from it)
        pa.field("last_time", _TIME, nullable=False),
        # per unit kind on the call (alphabetical), that kind's unit phase times; a call with
        # no unit of a known kind has one entry of kind null with the call's own times
        pa.field("kinds", pa.list_(_KIND), nullable=False),
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


@dataclass(frozen=True, slots=True, order=True)
class Key:
    """What identifies a call in the store: own incidents by id, imports by source and id."""

    own: bool
    source: str | None
    call_id: str


class Watermark(msgspec.Struct, frozen=True):
    """How far the export has read: the last imported call (``history_calls.id``) and the
    last event (``events.id``, ids the single writer gives in commit order) it has seen."""

    history_id: int = 0
    event_id: int = 0


class Part(msgspec.Struct, frozen=True):
    number: int
    calls: int  # rows in its calls file
    units: int  # rows in its units file
    # the lowest and highest id of alarmdesk's own incidents in it (None: none): a change to
    # an incident already exported rewrites only the parts whose range holds its id
    own_min: int | None = None
    own_max: int | None = None

    def may_hold(self, ids: Collection[int]) -> bool:
        """Whether any of the own incidents ``ids`` can be in this part."""
        if self.own_min is None or self.own_max is None:
            return False
        return any(self.own_min <= i <= self.own_max for i in ids)

    @property
    def calls_file(self) -> str:
        return f"calls-{self.number:06d}.parquet"

    @property
    def units_file(self) -> str:
        return f"units-{self.number:06d}.parquet"


class Manifest(msgspec.Struct, frozen=True):
    database: str  # whose calls: an identity of the database they were read from
    format: int = FORMAT
    watermark: Watermark = Watermark()
    parts: tuple[Part, ...] = ()
    next_part: int = 1

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self.parts)


_MANIFEST: Final = "manifest.json"
_PART_FILE: Final = re.compile(r"^(calls|units)-\d{6}\.parquet$")
_TEMP_SUFFIX: Final = ".tmp"


def _micros(moment: datetime | None) -> int | None:
    return None if moment is None else (moment - _EPOCH) // _MICROSECOND


def _times(values: list[int | None]) -> pa.Array:
    return pa.array(values, pa.int64()).cast(_TIME)


class _Columns:
    """A part's rows gathered column by column, then one Arrow table each."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Any]] = {f.name: [] for f in CALL_SCHEMA}
        self.units: dict[str, list[Any]] = {f.name: [] for f in UNIT_SCHEMA}

    def __len__(self) -> int:
        return len(self.calls["call_id"])

    def add(self, key: Key, record: CallRecord) -> None:
        c = self.calls
        c["own"].append(key.own)
        c["source"].append(key.source)
        c["call_id"].append(key.call_id)
        c["type_code"].append(record.type_code)
        c["category"].append(record.category.value)
        c["priority"].append(record.priority)
        c["station_area"].append(record.station_area)
        c["desks"].append(list(record.desks))
        c["lat"].append(record.lat)
        c["lon"].append(record.lon)
        for r in H3_RESOLUTIONS:
            c[h3_column(r)].append(cell_of(record.lat, record.lon, r))
        for name in _PHASE_NAMES:
            c[name].append(_micros(getattr(record, name)))
        c["last_time"].append(_micros(record.last_time()))
        kinds: list[str | None] = list(record.unit_kinds()) or [None]
        entries = []
        for kind in kinds:
            only = None if kind is None else {kind}
            entry: dict[str, Any] = {"kind": kind}
            for p, name in _UNIT_PHASE_NAMES:
                entry[name] = _micros(phase_time(record, p, only))
            entries.append(entry)
        c["kinds"].append(entries)
        u = self.units
        received = _micros(record.received)
        for unit in record.units:
            u["own"].append(key.own)
            u["source"].append(key.source)
            u["call_id"].append(key.call_id)
            u["received"].append(received)
            u["station_area"].append(record.station_area)
            u["unit_id"].append(unit.unit_id)
            u["kind"].append(unit.kind)
            for _, name in _UNIT_PHASE_NAMES:
                u[name].append(_micros(getattr(unit, name)))

    def tables(self) -> tuple[pa.Table, pa.Table]:
        return _table(self.calls, CALL_SCHEMA), _table(self.units, UNIT_SCHEMA)


def _table(columns: dict[str, list[Any]], schema: pa.Schema) -> pa.Table:
    arrays = [
        _times(columns[f.name]) if f.type == _TIME else pa.array(columns[f.name], f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartStore:
    """One analytics directory: its manifest, its parts, and the lock writers take.

    Args:
        directory: where the files are (created when missing).
        database: an identity of the database the calls come from; a directory that holds
            another database's calls is refused (:class:`AnalyticsUnavailable`).
    """

    def __init__(self, directory: Path, database: str) -> None:
        self.directory = directory
        self.database = database

    # -- reading ------------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        """The committed state; an empty one for a directory never written."""
        path = self.directory / _MANIFEST
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return Manifest(database=self.database)
        except OSError as exc:
            raise AnalyticsUnavailable(f"analytics store {self.directory}: {exc}") from None
        try:
            manifest = msgspec.json.decode(data, type=Manifest)
        except msgspec.DecodeError as exc:
            raise AnalyticsUnavailable(f"analytics store {path}: not a manifest ({exc})") from None
        if manifest.format != FORMAT:
            raise AnalyticsUnavailable(
                f"analytics store {path}: format {manifest.format}, this alarmdesk reads "
                f"{FORMAT}; remove the directory to export afresh"
            )
        if manifest.database != self.database:
            raise AnalyticsUnavailable(
                f"analytics store {self.directory} holds the calls of another database; "
                "configure [analytics] dir for this one"
            )
        return manifest

    def files(self, manifest: Manifest) -> tuple[list[Path], list[Path]]:
        """The committed parts' calls and units files."""
        return (
            [self.directory / p.calls_file for p in manifest.parts],
            [self.directory / p.units_file for p in manifest.parts],
        )

    # -- writing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, *, shared: bool = False) -> Iterator[None]:
        """Writers (export, retention) one at a time; readers beside each other, not beside a
        writer that removes files (an advisory lock on ``.lock``, across processes)."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Incident data: readable by alarmdesk's own user only, so no one reads it past the
            # audit log (the signing key is kept the same way).
            if stat.S_IMODE(self.directory.stat().st_mode) != 0o700:
                self.directory.chmod(0o700)
            fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AnalyticsUnavailable(f"analytics store {self.directory}: {exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def clean(self, manifest: Manifest) -> int:
        """Removes files no committed part names: temporary files, and parts renamed by an
        export that stopped before its manifest. Returns how many. Call it under the lock."""
        named = {n for p in manifest.parts for n in (p.calls_file, p.units_file)}
        removed = 0
        for path in self.directory.iterdir():
            stray = path.name.endswith(_TEMP_SUFFIX) or (
                _PART_FILE.match(path.name) is not None and path.name not in named
            )
            if stray:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def write_part(self, number: int, calls: Iterable[tuple[Key, CallRecord]]) -> Part | None:
        """Writes the calls as part ``number`` (temporary names, then renamed), not yet
        committed: :meth:`commit` names it in the manifest. None when there were no calls."""
        columns = _Columns()
        for key, record in calls:
            columns.add(key, record)
        if not len(columns):
            return None
        calls_table, units_table = columns.tables()
        return self._write(number, calls_table, units_table)

    def _write(self, number: int, calls: pa.Table, units: pa.Table) -> Part:
        own = [
            int(c)
            for o, c in zip(_column(calls, "own"), _column(calls, "call_id"), strict=True)
            if o
        ]
        part = Part(
            number,
            calls.num_rows,
            units.num_rows,
            min(own) if own else None,
            max(own) if own else None,
        )
        for table, name in ((calls, part.calls_file), (units, part.units_file)):
            final = self.directory / name
            temp = final.with_name(name + _TEMP_SUFFIX)
            with temp.open("wb") as out:
                pq.write_table(table, out, compression="zstd")
                out.flush()
                os.fsync(out.fileno())
            temp.replace(final)
        _fsync_dir(self.directory)
        return part

    def commit(self, manifest: Manifest) -> None:
        """Writes the manifest (temporary name, flushed, renamed): the parts it names and its
        watermarks take effect together."""
        path = self.directory / _MANIFEST
        temp = path.with_name(_MANIFEST + _TEMP_SUFFIX)
        with temp.open("wb") as out:
            out.write(msgspec.json.encode(manifest))
            out.flush()
            os.fsync(out.fileno())
        temp.replace(path)
        _fsync_dir(self.directory)

    # -- rewriting: calls exported again, calls erased --------------------------------------

    def without(
        self,
        manifest: Manifest,
        doomed: Callable[[Part, pa.Table], set[Key]],
        number: int | None = None,
    ) -> tuple[list[Part], int, int]:
        """Each committed part, rewritten without the calls ``doomed`` names (given the part
        and its key columns and ``last_time`` and ``category``), under a new number (from
        ``number``, default the manifest's next). Returns the parts (unchanged ones as they
        were), the next free number and the calls removed. Nothing is committed: the caller's
        manifest names the result."""
        parts: list[Part] = []
        number = manifest.next_part if number is None else number
        removed = 0
        for part in manifest.parts:
            path = self.directory / part.calls_file
            keys = pq.read_table(path, columns=[*_KEY_NAMES, "last_time", "category"])
            drop = doomed(part, keys)
            if not drop:
                parts.append(part)
                continue
            calls = pq.read_table(path)
            units = pq.read_table(self.directory / part.units_file)
            kept = calls.filter(pc.invert(_is_in(calls, drop)))
            removed += calls.num_rows - kept.num_rows
            if kept.num_rows:
                parts.append(
                    self._write(number, kept, units.filter(pc.invert(_is_in(units, drop))))
                )
                number += 1
        return parts, number, removed

    def replaced(
        self, manifest: Manifest, own: Collection[int], number: int
    ) -> tuple[list[Part], int]:
        """The committed parts without the own incidents ``own`` (exported again because
        their timeline changed after they were resolved), rewritten parts numbered from
        ``number``, and the next free number."""
        wanted = set(own)

        def doomed(part: Part, keys: pa.Table) -> set[Key]:
            if not part.may_hold(wanted):
                return set()
            return {
                Key(True, None, c)
                for o, c in zip(_column(keys, "own"), _column(keys, "call_id"), strict=True)
                if o and int(c) in wanted
            }

        if not wanted:
            return list(manifest.parts), number
        parts, number, _ = self.without(manifest, doomed, number)
        return parts, number

    def prune(
        self,
        manifest: Manifest,
        cutoff: Callable[[str], datetime],
        gone: Callable[[list[Key]], set[Key]],
    ) -> tuple[Manifest, int]:
        """Rewrites the parts holding calls that the retention job erased, without them.

        A call is a candidate when its ``last_time`` is before ``cutoff(category)``; of the
        candidates, those ``gone`` says are no longer stored are removed, with their unit
        rows. The manifest naming the rewritten parts is committed before the old files are
        removed. Returns the manifest and the calls removed. Call it under the lock.
        """
        limits: dict[str, datetime] = {}

        def limit(category: str) -> datetime:
            if category not in limits:
                limits[category] = cutoff(category).astimezone(UTC).replace(tzinfo=None)
            return limits[category]

        def doomed(part: Part, keys: pa.Table) -> set[Key]:
            last = _column(keys, "last_time")
            categories = _column(keys, "category")
            old = [n for n, (t, c) in enumerate(zip(last, categories, strict=True)) if t < limit(c)]
            return gone([_key_at(keys, n) for n in old]) if old else set()

        parts, number, removed = self.without(manifest, doomed)
        if not removed:
            return manifest, 0
        updated = msgspec.structs.replace(manifest, parts=tuple(parts), next_part=number)
        self.commit(updated)
        self.clean(updated)
        return updated, removed


_KEY_NAMES: Final = ("own", "source", "call_id")


def _column(table: pa.Table, name: str) -> list[Any]:
    return list(table.column(name).to_pylist())


def _key_at(table: pa.Table, n: int) -> Key:
    return Key(
        bool(table.column("own")[n].as_py()),
        table.column("source")[n].as_py(),
        str(table.column("call_id")[n].as_py()),
    )


def _is_in(table: pa.Table, keys: set[Key]) -> pa.ChunkedArray:
    """Which rows carry one of ``keys`` (own, source and call id)."""
    wanted = {(k.own, k.source or "", k.call_id) for k in keys}
    own = table.column("own").to_pylist()
    source = table.column("source").to_pylist()
    call = table.column("call_id").to_pylist()
    return pa.chunked_array(
        [
            pa.array(
                [(o, s or "", c) in wanted for o, s, c in zip(own, source, call, strict=True)],
                pa.bool_(),
            )
        ]
    )
