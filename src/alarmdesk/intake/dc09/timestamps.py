"""SIA DC-09 timestamps: ``_HH:MM:SS,MM-DD-YYYY`` in UTC, and the receiver's window around its
own clock (an encrypted frame must carry one, to defeat replays)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from alarmdesk.intake.dc09.errors import MalformedFrame, MissingTimestamp, StaleTimestamp
from alarmdesk.intake.dc09.model import DEFAULT_WINDOW, Frame, TimestampWindow

__all__ = [
    "check_frame_timestamp",
    "check_timestamp",
    "format_timestamp",
    "parse_timestamp",
    "require_aware",
]


_TIMESTAMP = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2}),([0-9]{2})-([0-9]{2})-([0-9]{4})")


def format_timestamp(ts: datetime) -> str:
    """``HH:MM:SS,MM-DD-YYYY`` of an aware datetime, in UTC (without the leading ``_``).

    Raises:
        ValueError: ``ts`` is naive.
    """
    utc = require_aware(ts, "ts").astimezone(UTC)
    return (
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d},"
        f"{utc.month:02d}-{utc.day:02d}-{utc.year:04d}"
    )


def parse_timestamp(text: str) -> datetime:
    """The aware UTC datetime of ``HH:MM:SS,MM-DD-YYYY`` (without the leading ``_``).

    Raises:
        MalformedFrame: not that format, or not a real date and time.
    """
    m = _TIMESTAMP.fullmatch(text)
    if m is None:
        raise MalformedFrame(f"timestamp {text!r} is not HH:MM:SS,MM-DD-YYYY")
    hour, minute, second, month, day, year = (int(g) for g in m.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise MalformedFrame(f"timestamp {text!r} is not a valid time: {exc}") from exc


def check_timestamp(
    ts: datetime, now: datetime, window: TimestampWindow | None = DEFAULT_WINDOW
) -> None:
    """Raise unless ``ts`` lies within ``window`` of the receiver time ``now``.

    Args:
        ts: the message timestamp (aware).
        now: the receiver's clock (aware), injected by the caller.
        window: bounds, inclusive; ``None`` turns the check off.

    Raises:
        StaleTimestamp: ``ts`` is more than ``window.ahead`` after or ``window.behind`` before
            ``now``.
        ValueError: ``ts`` or ``now`` is naive.
    """
    problem = _staleness(ts, now, window)
    if problem is not None:
        raise StaleTimestamp(problem)


def check_frame_timestamp(
    frame: Frame,
    now: datetime,
    window: TimestampWindow | None = DEFAULT_WINDOW,
    *,
    check_plain: bool = False,
) -> None:
    """Apply the DC-09 timestamp rules to a decoded frame.

    Encrypted frames must carry a timestamp, and it must lie in ``window`` (the anti-replay
    rule). Plaintext frames are checked only when ``check_plain`` is set: DC-09 does not
    require it, and many unencrypted panels keep poor time, so NAKing them would turn a clock
    problem into lost alarms.

    Raises:
        MissingTimestamp: an encrypted frame without a timestamp.
        StaleTimestamp: the timestamp is outside ``window``.
        ValueError: the frame is still sealed, or ``now`` is naive.
    """
    if frame.sealed:
        raise ValueError("decrypt the frame before checking its timestamp")
    if frame.timestamp is None:
        if frame.encrypted:
            raise MissingTimestamp("encrypted frame without timestamp", echo=frame.echo)
        return
    if frame.encrypted or check_plain:
        problem = _staleness(frame.timestamp, now, window)
        if problem is not None:
            raise StaleTimestamp(problem, echo=frame.echo)


def _staleness(ts: datetime, now: datetime, window: TimestampWindow | None) -> str | None:
    require_aware(ts, "ts")
    require_aware(now, "now")
    if window is None:
        return None
    offset = ts - now
    if offset > window.ahead or -offset > window.behind:
        return (
            f"timestamp {ts.isoformat()} is {offset.total_seconds():+.0f} s from receiver time "
            f"(allowed +{window.ahead.total_seconds():.0f}/-{window.behind.total_seconds():.0f} s)"
        )
    return None


def require_aware(ts: datetime, name: str) -> datetime:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")
    return ts
