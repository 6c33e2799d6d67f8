"""Structured logs: one line per event with its context, JSON when nobody reads a terminal.

Every module logs through the standard library (``logging.getLogger(__name__)``) or
structlog (``structlog.stdlib.get_logger(__name__)`` with key-value context); both end in
one handler whose formatter is structlog's, so a line from uvicorn, from the writer and from
a request handler all carry the same fields. Context bound with :func:`bind` (the request id
and the principal in the web layer, signal and incident ids where they are known) is merged
into every line logged in that context (``contextvars``: per task and per thread).

Only entrypoints call :func:`configure` (``alarmdesk serve`` and the other commands); a test
run or an embedding application keeps its own logging.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextlib import AbstractContextManager
from typing import Any, TextIO

import structlog

__all__ = ["bind", "clear", "configure", "console_renderer", "get_logger"]

_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def console_renderer(*, colors: bool) -> structlog.dev.ConsoleRenderer:
    """Lines for a person. A traceback is shown without its frames' locals: they hold what a
    signal or an incident held (names, callback numbers), which a log line never carries,
    and rendering them (the writer's whole state among them) took about a second an
    exception, in the writer's thread."""
    return structlog.dev.ConsoleRenderer(
        colors=colors,
        exception_formatter=structlog.dev.RichTracebackFormatter(
            color_system="truecolor" if colors else None, show_locals=False
        ),
    )


def configure(
    *, json: bool | None = None, level: int | str = logging.INFO, stream: TextIO | None = None
) -> None:
    """Routes every log line through structlog's formatter.

    Args:
        json: JSON lines (True), coloured key=value lines for a person (False), or decide by
            whether the stream is a terminal (None).
        level: the root logger's level.
        stream: where the lines go (standard error).
    """
    stream = stream or sys.stderr
    tty = stream.isatty()
    if json is None:
        json = not tty
    renderer: Any = structlog.processors.JSONRenderer() if json else console_renderer(colors=tty)
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,  # lines from the standard library's loggers (uvicorn …)
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _keep_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's loggers go through the root handler, not handlers of their own.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # httpx logs every request at INFO with its URL: a webhook receiver's URL may carry the
    # receiver's key in its query, and the deliverer logs what went wrong itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _keep_exc_info(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event  # the console renderer formats the traceback itself


def get_logger(name: str) -> Any:
    """A logger that takes key-value context: ``log.info("event", incident_id=4)``."""
    return structlog.stdlib.get_logger(name)


def bind(**context: Any) -> None:
    """Adds context to every line logged from here on in this task or thread."""
    structlog.contextvars.bind_contextvars(**context)


def context(**values: Any) -> AbstractContextManager[None]:
    """Adds context to every line logged inside the ``with`` block (a request, a job)."""
    return structlog.contextvars.bound_contextvars(**values)


def clear() -> None:
    structlog.contextvars.clear_contextvars()
