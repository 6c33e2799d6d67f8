"""The analytics store's files: finished calls as Parquet parts, committed by a manifest.

A directory holds:

- ``calls-NNNNNN.parquet``: one row per call (:data:`CALL_SCHEMA`): its key, a number ``n``
  unique in the store, type, category, priority, station area, desks, lat/lon as stored, its
  H3 cells at resolutions 5–10, and its phase times (UTC, microseconds);
- ``kinds-NNNNNN.parquet``: one row per call and unit kind on it (:data:`KIND_SCHEMA`): the
  call's ``n``, key and grouping columns, its own phase times, and the unit phase times
  counting only units of that kind (a call with no unit of a known kind has one row of kind
  null with the call's times). Grouping by unit kind, and objectives about a unit kind, read
  it as a flat table: a list column unnested at query time was ten times slower;
- ``units-NNNNNN.parquet``: one row per unit response (:data:`UNIT_SCHEMA`), for workload;
- ``manifest.json``: the parts that exist, each with the span of its calls' received times,
  and the export's watermarks. A part that the manifest does not name does not exist: queries
  read only the parts it names, and of those only the ones whose span meets the days asked.

Every file is sorted by received time and written in row groups of :data:`ROW_GROUP` rows,
whose minimum and maximum Parquet keeps: a query for thirty days reads the row groups of
those days and skips the rest. The export merges small parts (:meth:`PartStore.compacted`):
a server exporting every quarter of an hour would otherwise leave 35,000 parts a year, and a
query opens every part whose span it meets.

Writing is crash-safe: a part is written under a temporary name, flushed and renamed; the
manifest (with the advanced watermarks) is written the same way and renamed over the old one
only after that. A crash between the part's rename and the manifest's leaves a file the
manifest does not name: no query reads it, and the next export removes it and exports the
same calls again from the old watermark. So a call is in the store at most once.

The watermarks live in the manifest, beside the parts they describe (not in the database):
they commit together with the parts in one rename, a store copied or deleted takes its
watermarks with it (a deleted store is exported afresh), and the export never writes to the
live database. A store of an older format is exported afresh the same way
(:class:`OlderFormat`): it holds nothing the database does not.

No free text, no people, no summaries: only what the KPIs need.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from alarmdesk.analytics.rows import SCHEMAS, Columns, Key, by_received, naive
from alarmdesk.domain.errors import AnalyticsUnavailable
from alarmdesk.domain.history import CallRecord

__all__ = [
    "ROW_GROUP",
    "Manifest",
    "OlderFormat",
    "Part",
    "PartFiles",
    "PartStore",
    "Watermark",
]

# The manifest's and the files' layout; another is refused, not guessed. 2: files sorted by
# received time in small row groups, unit kinds in a flat file of their own, each part's span.
FORMAT: Final = 2
# Rows per row group: a query's time range skips whole row groups by their min/max, so
# smaller groups skip more; below some thousands the per-group overhead shows (16,384 read a
# thirty-day window of a year of 5,000,000 calls in a tenth of the time 1,000,000 took).
ROW_GROUP: Final = 16_384
# The export merges the parts under a quarter of a full part once there are this many.
MERGE_SMALL: Final = 8


class Watermark(msgspec.Struct, frozen=True):
    """How far the export has read: the last imported call (``history_calls.id``) and the
    last event (``events.id``, ids the single writer gives in commit order) it has seen."""

    history_id: int = 0
    event_id: int = 0


class Part(msgspec.Struct, frozen=True):
    number: int
    calls: int  # rows in its calls file
    units: int  # rows in its units file
    # the earliest and latest received time of its calls (UTC microseconds): a query reads
    # only the parts whose span meets its days
    first: int
    last: int
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

    @property
    def kinds_file(self) -> str:
        return f"kinds-{self.number:06d}.parquet"

    @property
    def file_names(self) -> tuple[str, str, str]:
        return self.calls_file, self.kinds_file, self.units_file


@dataclass(frozen=True, slots=True)
class PartFiles:
    """A committed part as a query reads it: its files, and the span of received times
    (UTC, naive, as DuckDB reads the files' times) its calls have."""

    calls: Path
    kinds: Path
    units: Path
    first: datetime
    last: datetime

    def meets(self, start: datetime, end: datetime) -> bool:
        """Whether a call of this part can be received in [start, end) (naive UTC)."""
        return self.first < end and self.last >= start


class Manifest(msgspec.Struct, frozen=True):
    database: str  # whose calls: an identity of the database they were read from
    format: int = FORMAT
    watermark: Watermark = Watermark()
    parts: tuple[Part, ...] = ()
    next_part: int = 1

    @property
    def calls(self) -> int:
        return sum(p.calls for p in self.parts)


class _Header(msgspec.Struct):
    """What a manifest of any format has: read first, so an older one is known as such."""

    database: str
    format: int = 1


class OlderFormat(AnalyticsUnavailable):
    """The store was written by an earlier alarmdesk: the export writes it afresh (it holds
    nothing the database does not), and until then it is not read."""


_MANIFEST: Final = "manifest.json"
_PART_FILE: Final = re.compile(r"^(calls|kinds|units)-\d{6}\.parquet$")
_TEMP_SUFFIX: Final = ".tmp"


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
            header = msgspec.json.decode(data, type=_Header)
            if header.database != self.database:
                raise AnalyticsUnavailable(
                    f"analytics store {self.directory} holds the calls of another database; "
                    "configure [analytics] dir for this one"
                )
            if header.format < FORMAT:
                raise OlderFormat(
                    f"analytics store {path}: format {header.format}, this alarmdesk reads "
                    f"{FORMAT}; the next export writes it afresh from the database"
                )
            if header.format != FORMAT:
                raise AnalyticsUnavailable(
                    f"analytics store {path}: format {header.format}, written by a newer "
                    f"alarmdesk; this one reads {FORMAT}"
                )
            return msgspec.json.decode(data, type=Manifest)
        except msgspec.DecodeError as exc:
            raise AnalyticsUnavailable(f"analytics store {path}: not a manifest ({exc})") from None

    def files(self, manifest: Manifest) -> list[PartFiles]:
        """The committed parts' files, with the span of their calls' received times."""
        return [
            PartFiles(
                self.directory / p.calls_file,
                self.directory / p.kinds_file,
                self.directory / p.units_file,
                naive(p.first),
                naive(p.last),
            )
            for p in manifest.parts
        ]

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
        named = {n for p in manifest.parts for n in p.file_names}
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
        columns = Columns(number)
        for key, record in calls:
            columns.add(key, record)
        if not len(columns):
            return None
        return self._write(number, columns.tables())

    def _write(self, number: int, tables: Mapping[str, pa.Table]) -> Part:
        """Writes the tables (calls, kinds, units) as part ``number``, each sorted by
        received time in row groups of :data:`ROW_GROUP`."""
        calls = tables["calls"]
        own = [
            int(c)
            for o, c in zip(_column(calls, "own"), _column(calls, "call_id"), strict=True)
            if o
        ]
        received = pc.min_max(calls.column("received").cast(pa.int64()))
        part = Part(
            number,
            calls.num_rows,
            tables["units"].num_rows,
            received["min"].as_py(),
            received["max"].as_py(),
            min(own) if own else None,
            max(own) if own else None,
        )
        for name, file in zip(SCHEMAS, part.file_names, strict=True):
            final = self.directory / file
            temp = final.with_name(file + _TEMP_SUFFIX)
            with temp.open("wb") as out:
                table = by_received(tables[name])
                pq.write_table(table, out, compression="zstd", row_group_size=ROW_GROUP)
                out.flush()
                os.fsync(out.fileno())
            temp.replace(final)
        _fsync_dir(self.directory)
        return part

    def _read(self, part: Part) -> dict[str, pa.Table]:
        return {
            name: pq.read_table(self.directory / file)
            for name, file in zip(SCHEMAS, part.file_names, strict=True)
        }

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
            gone = _numbers_of(keys, drop)
            tables = {
                name: table.filter(pc.invert(pc.is_in(table.column("n"), gone)))
                for name, table in self._read(part).items()
            }
            removed += part.calls - tables["calls"].num_rows
            if tables["calls"].num_rows:
                parts.append(self._write(number, tables))
                number += 1
        return parts, number, removed

    def compacted(
        self, parts: Sequence[Part], number: int, part_calls: int
    ) -> tuple[list[Part], int]:
        """The parts with the small ones (under a quarter of ``part_calls`` calls) merged
        into parts of up to ``part_calls``, sorted by received time, once there are
        :data:`MERGE_SMALL` of them; new parts numbered from ``number``. Returns the parts
        and the next free number. Nothing is committed: the caller's manifest names them."""
        small = [p for p in parts if p.calls < part_calls // 4]
        if len(small) < MERGE_SMALL:
            return list(parts), number
        merged = {
            name: by_received(pa.concat_tables(tables))
            for name, tables in zip(
                SCHEMAS, zip(*(self._read(p).values() for p in small), strict=True), strict=True
            )
        }
        kept = [p for p in parts if p.calls >= part_calls // 4]
        calls = merged["calls"]
        for at in range(0, calls.num_rows, part_calls):
            chunk = calls.slice(at, part_calls)
            these = chunk.column("n")
            tables = {
                "calls": chunk,
                **{
                    name: merged[name].filter(pc.is_in(merged[name].column("n"), these))
                    for name in ("kinds", "units")
                },
            }
            kept.append(self._write(number, tables))
            number += 1
        return kept, number

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


_KEY_NAMES: Final = ("own", "source", "call_id", "n")


def _column(table: pa.Table, name: str) -> list[Any]:
    return list(table.column(name).to_pylist())


def _key_at(table: pa.Table, n: int) -> Key:
    return Key(
        bool(table.column("own")[n].as_py()),
        table.column("source")[n].as_py(),
        str(table.column("call_id")[n].as_py()),
    )


def _numbers_of(keys: pa.Table, wanted: set[Key]) -> pa.Array:
    """The ``n`` of the rows of ``keys`` that carry one of ``wanted`` (own, source, call id)."""
    match = {(k.own, k.source or "", k.call_id) for k in wanted}
    rows = zip(
        _column(keys, "own"),
        _column(keys, "source"),
        _column(keys, "call_id"),
        _column(keys, "n"),
        strict=True,
    )
    return pa.array([n for o, s, c, n in rows if (o, s or "", c) in match], pa.int64())
