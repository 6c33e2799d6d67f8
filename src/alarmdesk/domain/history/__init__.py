"""A centre's call history from its old CAD: records, the mapping that reads an export, the
reader and its data-quality report. Pure: no database, no I/O but reading the files given.
KPIs over these records are in ``domain/kpi.py``; docs/analytics.md describes both.
"""

from alarmdesk.domain.history.mapping import (
    BoundingBox,
    Exclusion,
    Layout,
    LocationSpec,
    Mapping,
    ValueMap,
    load_mapping,
    parse_mapping,
)
from alarmdesk.domain.history.reader import (
    DataQuality,
    IntervalQuality,
    check_csv,
    read_calls,
    read_calls_file,
)
from alarmdesk.domain.history.records import (
    CALL_PHASES,
    INTERVAL_PHASES,
    UNIT_PHASES,
    CallRecord,
    Gap,
    Interval,
    Phase,
    UnitResponse,
    duration,
    phase_time,
)

__all__ = [
    "CALL_PHASES",
    "INTERVAL_PHASES",
    "UNIT_PHASES",
    "BoundingBox",
    "CallRecord",
    "DataQuality",
    "Exclusion",
    "Gap",
    "Interval",
    "IntervalQuality",
    "Layout",
    "LocationSpec",
    "Mapping",
    "Phase",
    "UnitResponse",
    "ValueMap",
    "check_csv",
    "duration",
    "load_mapping",
    "parse_mapping",
    "phase_time",
    "read_calls",
    "read_calls_file",
]
