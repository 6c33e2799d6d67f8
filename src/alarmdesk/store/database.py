"""Engines and migrations. The URL picks the dialect: ``sqlite:///path`` or
``postgresql://...`` (psycopg 3)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from alarmdesk.domain.errors import ConfigError, SchemaNotReady

# The drivers alarmdesk installs and runs on: the standard library's sqlite3, and psycopg 3.
_SUPPORTED = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")


def normalise_url(url: str) -> str:
    """Accepts the URLs people write; gives SQLAlchemy the driver we use."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def check_url(url: str) -> sa.URL:
    """The parsed URL of a database alarmdesk supports.

    Raises:
        ConfigError: not a URL, or one of a database (or driver) alarmdesk does not support
            (MySQL, asyncpg...): named by its scheme, never with its password.
    """
    supported = "alarmdesk supports sqlite:///PATH and postgresql://USER@HOST/NAME"
    try:
        parsed = sa.engine.make_url(normalise_url(url))
    except (sa.exc.ArgumentError, ValueError):
        raise ConfigError(f"the database URL is not a URL: {supported}") from None
    if parsed.drivername not in _SUPPORTED:
        raise ConfigError(f"unsupported database {parsed.drivername!r}: {supported}")
    return parsed


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL (None: another database, or one in memory)."""
    parsed = check_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


def _dumps(value: Any) -> str:
    return _json_encode(value).decode("utf-8")


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    # msgspec for JSON columns: the stdlib's json.dumps was a tenth of the writer's time.
    kwargs.setdefault("json_serializer", _dumps)
    kwargs.setdefault("json_deserializer", _json_decode)
    check_url(url)
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # The durability contract: an ACK means the WAL frame is on disk.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


def _alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("alarmdesk.store") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Runs the Alembic migrations up to ``revision`` on the database at ``url``."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = _alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config("sqlite://")).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    """The schema's revision, read from Alembic's table (None: never upgraded). Read
    directly: Alembic's MigrationContext logs two lines at INFO each time, which every
    command of the command line printed before its own output."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def require_head(engine: sa.Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise SchemaNotReady(
            f"the database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `alarmdesk db upgrade`"
        )
