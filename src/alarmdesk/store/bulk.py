"""Bulk inserts on the hot path, straight to the driver.

SQLAlchemy Core's ``executemany`` spends most of its time processing each row's parameters
in Python (compiled-statement setup, type processors): the profile of the writer showed it at
a quarter of the time, against 7 % in SQLite itself. For the few tables every signal writes,
this module renders each row to driver values once, per column type, and hands the driver
one ``executemany``. The tables stay defined in ``tables.py``; only the conversion is here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import sqlalchemy as sa

from alarmdesk.store.tables import UTCDateTime

_encode = msgspec.json.Encoder().encode

Converter = Callable[[Any], Any]


def _sqlite_time(value: datetime | None) -> str | None:
    # The storage format of SQLAlchemy's SQLite DATETIME, so reads parse it as before.
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is several times faster than strftime, same text
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_json(value: Any) -> str | None:
    return None if value is None else _encode(value).decode("utf-8")


def _pg_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _identity(value: Any) -> Any:
    return value


class BulkInsert:
    """``INSERT INTO table (columns) VALUES (...)`` for many row dicts, one driver call."""

    def __init__(self, table: sa.Table, dialect: str) -> None:
        self.table = table
        self.columns = list(table.c.keys())
        self.converters: list[Converter] = []
        json_conv: Converter
        time_conv: Converter
        if dialect == "postgresql":
            from psycopg.types.json import Jsonb

            def pg_json(value: Any) -> Any:
                return None if value is None else Jsonb(value, dumps=_json_dumps)

            json_conv, time_conv, mark = pg_json, _pg_time, "%s"
        else:
            json_conv, time_conv, mark = _sqlite_json, _sqlite_time, "?"
        for col in table.c:
            if isinstance(col.type, UTCDateTime):
                self.converters.append(time_conv)
            elif isinstance(col.type, sa.JSON):
                self.converters.append(json_conv)
            else:
                self.converters.append(_identity)
        names = ", ".join(f'"{c}"' for c in self.columns)
        marks = ", ".join([mark] * len(self.columns))
        self.sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'

    def rows(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        cols, convs = self.columns, self.converters
        return [tuple(conv(r.get(c)) for c, conv in zip(cols, convs, strict=True)) for r in rows]

    def execute(self, conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            conn.exec_driver_sql(self.sql, self.rows(rows))


def _json_dumps(value: Any) -> str:
    return _encode(value).decode("utf-8")
