"""The one clock: timezone-aware UTC now. Services and tests pass a ``Clock`` around so that
time can be injected; nothing else calls ``datetime.now``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utcnow"]

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
