"""Bulk inserts on the hot path, straight to the driver.

SQLAlchemy Core's ``executemany`` spends most of its time processing each row's parameters
in Python (compiled-statement setup, type processors): the profile of the writer showed it at
a quarter of the time, against 7 % in SQLite itself. For the few tables every signal writes,
this module renders each row to driver values once, per column type, and hands the driver
one ``executemany``. The tables stay defined in ``tables.py``; only the conversion is here.

The statements are rendered once, when the writer first needs them; a batch only converts
its rows: a row is read with one ``itemgetter`` call and only its time and JSON columns go
through a converter (the profile showed a converter call per column as a sixth of the
writer's time). An incident's repeat signal is written the same way (:class:`BulkUpdate`):
it changes a few counters, and SQLAlchemy's per-row parameter processing cost more than
SQLite's own update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any

import msgspec
import sqlalchemy as sa

from alarmdesk.store.tables import UTCDateTime, stored_utc

_encode = msgspec.json.Encoder().encode

Converter = Callable[[Any], Any]


def _sqlite_time(value: datetime | None) -> str | None:
    # The storage format of SQLAlchemy's SQLite DATETIME, so reads parse it as before.
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return _sqlite_utc(value)


@lru_cache(maxsize=4096)
def _sqlite_utc(value: datetime) -> str:
    """A UTC time as SQLite's text, remembered: a batch's rows repeat a few times (its
    receipt time, the signals' own) and this was 8 % of the writer's work. Only UTC times
    come here, so equal keys are equal fields and so equal text."""
    # isoformat is several times faster than strftime, same text
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_json(value: Any) -> str | None:
    return None if value is None else _encode(value).decode("utf-8")


def _pg_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _identity(value: Any) -> Any:
    return value


def _converter(col: sa.Column[Any], dialect: str) -> Converter:
    """How a value of ``col`` is handed to the driver of ``dialect``."""
    if isinstance(col.type, UTCDateTime):
        return _pg_time if dialect == "postgresql" else _sqlite_time
    if isinstance(col.type, sa.JSON):
        return _pg_json() if dialect == "postgresql" else _sqlite_json
    return _identity


def _pg_json() -> Converter:
    from psycopg.types.json import Jsonb  # loaded only when the database is PostgreSQL

    def pg_json(value: Any) -> Any:
        return None if value is None else Jsonb(value, dumps=_json_dumps)

    return pg_json


def _mark(dialect: str) -> str:
    return "%s" if dialect == "postgresql" else "?"


class _Rows:
    """Row dicts → driver parameters in ``columns`` order, converting only what needs it."""

    def __init__(self, columns: Sequence[sa.Column[Any]], dialect: str) -> None:
        self.columns = [c.key for c in columns]
        self.converters = [_converter(c, dialect) for c in columns]
        self._special = [
            (i, conv) for i, conv in enumerate(self.converters) if conv is not _identity
        ]
        get = itemgetter(*self.columns)
        self._get: Callable[[dict[str, Any]], Any] = (
            get if len(self.columns) > 1 else lambda r: (get(r),)
        )

    def rows(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        get, cols, special = self._get, self.columns, self._special
        for r in rows:
            try:
                values = list(get(r))
            except KeyError:  # a column left out is NULL (or its default)
                values = [r.get(c) for c in cols]
            for i, conv in special:
                values[i] = conv(values[i])
            out.append(tuple(values))
        return out


class BulkInsert(_Rows):
    """``INSERT INTO table (columns) VALUES (...)`` for many row dicts, one driver call."""

    def __init__(self, table: sa.Table, dialect: str) -> None:
        super().__init__(list(table.c), dialect)
        self.table = table
        names = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join([_mark(dialect)] * len(self.columns))
        self.sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'

    def execute(self, conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            conn.exec_driver_sql(self.sql, self.rows(rows))


class BulkUpdate(_Rows):
    """``UPDATE table SET columns WHERE key = ...`` for many row dicts, one driver call.

    Each row names the key and the columns to set; the key is the last parameter.
    """

    def __init__(self, table: sa.Table, columns: Sequence[str], key: str, dialect: str) -> None:
        super().__init__([*(table.c[c] for c in columns), table.c[key]], dialect)
        self.table = table
        mark = _mark(dialect)
        sets = ", ".join(f'"{c}" = {mark}' for c in columns)
        self.sql = f'UPDATE "{table.name}" SET {sets} WHERE "{key}" = {mark}'

    def execute(self, conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            conn.exec_driver_sql(self.sql, self.rows(rows))


@lru_cache(maxsize=1024)
def select_in(table: sa.Table, columns: tuple[str, ...], key: str, n: int, dialect: str) -> str:
    """``SELECT columns FROM table WHERE key IN (n parameters)``, rendered once per count.
    Read its time columns with :func:`stored_time`: the driver gives them as stored."""
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join([_mark(dialect)] * n)
    return f'SELECT {names} FROM "{table.name}" WHERE "{key}" IN ({marks})'


def read_planned(conn: sa.Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The rows of a read rendered by :func:`select_in`, straight from the driver, the
    statement planned with these values every time.

    On PostgreSQL psycopg prepares a statement it has run five times, and the server may then
    keep one generic plan for it, costed with the table's statistics of that moment, until
    an ``ANALYZE`` replaces them. The idempotency look-up runs first in every transaction,
    so on a new database it was prepared while ``signals`` was empty, and the plan it kept
    got slower as the table grew: 3.2 ms per transaction (median) over the first 8,000
    signals, 6 ms by their end, against 0.3 ms planned with the keys (bench/README.md, "The
    idempotency look-up on PostgreSQL"). Sent unnamed (``prepare=False``), it is planned with
    its keys each time and uses the unique index whatever the statistics said. SQLite plans
    it the same way either way."""
    if conn.dialect.name == "postgresql":
        driver: Any = conn.connection.driver_connection  # psycopg's, in this transaction
        with driver.cursor() as cur:
            cur.execute(sql, params, prepare=False)
            return list(cur.fetchall())
    return [tuple(row) for row in conn.exec_driver_sql(sql, params)]


def stored_time(value: datetime | str | None) -> datetime | None:
    """A time column as the driver reads it, as ``UTCDateTime`` gives it: aware, in UTC.
    SQLite keeps the text ``_sqlite_time`` (or SQLAlchemy) wrote, in UTC without offset."""
    return stored_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _json_dumps(value: Any) -> str:
    return _encode(value).decode("utf-8")
