"""Query parameters that need more than a type: dates and times.

One parser for every date or time a client names in a query (incident searches, reports):
``YYYY-MM-DD`` (a whole UTC day; as an end, that day is included) or an ISO 8601 time with a
UTC offset. What it returns is an aware UTC time within :data:`EARLIEST`..:data:`LATEST`
(``domain.signal.check_time``, the rule of every time a client gives), so no later arithmetic
or store conversion can overflow; anything else is ``invalid_value``
naming the parameter (never a server error).
"""

from __future__ import annotations

from datetime import datetime

from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.signal import EARLIEST, LATEST, check_time
from alarmdesk.safeguards.transparency import Period, parse_bound, parse_period

__all__ = ["EARLIEST", "LATEST", "query_period", "query_time"]


def query_time(text: str, field: str, *, end: bool = False) -> datetime:
    """A date or time query parameter as an aware UTC time in range.

    Args:
        text: ``YYYY-MM-DD`` or an ISO 8601 time with an offset.
        field: the parameter's public name, for the error.
        end: a day names its end (the next midnight): the day is included.

    Raises:
        InvalidField: ``invalid_value`` for a malformed, naive or out-of-range time.
    """
    try:
        when = parse_bound(text, end=end)
    except (ValueError, OverflowError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else f"{text!r} is out of range"
        raise InvalidField(f"{field}: {message}", field=field, code="invalid_value") from None
    return check_time(when, field)


def query_period(period: str | None, start: str | None, end: str | None) -> Period:
    """A report's period, from ``period`` or from ``from`` and ``to`` (see
    ``safeguards/transparency.parse_period``), with both ends in range.

    Raises:
        InvalidField: ``invalid_value`` naming ``period``, ``from`` or ``to``.
    """
    if period is None and start is not None and end is not None:
        first, last = query_time(start, "from"), query_time(end, "to", end=True)
        try:
            return Period(first, last)
        except ValueError as exc:
            raise InvalidField(str(exc), field="to", code="invalid_value") from None
    field = "period" if period is not None else "from" if start is None else "to"
    try:
        span = parse_period(period, start, end)
    except (ValueError, OverflowError) as exc:
        message = str(exc) if isinstance(exc, ValueError) else "the period is out of range"
        raise InvalidField(message, field=field, code="invalid_value") from None
    check_time(span.start, field)
    check_time(span.end, field)
    return span
