"""The CAD history mapping file: what it accepts, what it refuses (naming the key), and the
time formats it reads."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alarmdesk.domain.errors import MappingError, ProtectedPurposeError
from alarmdesk.domain.history import Layout, Phase, load_mapping, parse_mapping
from alarmdesk.domain.history.times import TimeFormat

BASE = """
[source]
call_id = "id"

[times]
timezone = "Europe/Amsterdam"
formats = ["%Y-%m-%d %H:%M:%S"]

[times.columns]
received = "received"
dispatched = "dispatched"

[type]
column = "type"
[type.values]
"Fire" = "FSTRU"
"""


def test_a_minimal_mapping_reads_with_its_defaults():
    m = parse_mapping(BASE)
    assert m.layout is Layout.CALL_ROWS
    assert m.call_id == "id"
    assert dict(m.phase_columns) == {Phase.RECEIVED: "received", Phase.DISPATCHED: "dispatched"}
    assert m.type.values == {"Fire": "FSTRU"}
    assert m.priority is None  # the type's own priority
    assert m.duplicate_columns == ("id",)
    assert m.encoding == "utf-8-sig"


def test_the_shipped_san_francisco_mapping_is_valid():
    m = load_mapping(
        Path(__file__).resolve().parents[2] / "docs" / "examples" / "sf-fire-calls.toml"
    )
    assert m.layout is Layout.UNIT_ROWS
    assert m.unit_id == "Unit ID"
    assert m.unit_kind is not None and m.unit_kind.values["ENGINE"] == "engine"
    assert m.location is not None and m.location.point == "Location"
    assert m.duplicate_columns == ("RowID",)


def test_local_times_are_read_in_the_mapping_zone_and_kept_in_utc():
    m = parse_mapping(BASE)
    # Amsterdam is UTC+1 in winter and UTC+2 in summer
    assert m.parse_time("2017-01-02 10:00:00") == datetime(2017, 1, 2, 9, tzinfo=UTC)
    assert m.parse_time("2017-07-02 10:00:00") == datetime(2017, 7, 2, 8, tzinfo=UTC)
    assert m.parse_time("02/01/2017 10:00") is None


@pytest.mark.parametrize(
    "text",
    ["0001-01-01 00:30:00", "1899-12-31 10:00:00", "3000-01-01 10:00:00", "9999-12-31 23:59:59"],
)
def test_a_time_outside_the_days_a_report_may_name_is_unreadable(text):
    """0001-01-01 in a zone east of UTC cannot be made UTC at all: the import stopped with a
    traceback after storing part of the file, and could never be completed. A clear time in
    2999 was stored, a 974-year handling time, kept by retention until then."""
    m = parse_mapping(BASE)
    assert m.parse_time(text) is None
    assert m.parse_time("1900-01-02 10:00:00") is not None


def test_formats_are_tried_in_order_and_iso_keeps_its_offset():
    m = parse_mapping(BASE.replace('["%Y-%m-%d %H:%M:%S"]', '["%d/%m/%Y %H:%M", "iso"]'))
    assert m.parse_time("02/01/2017 10:00") == datetime(2017, 1, 2, 9, tzinfo=UTC)
    assert m.parse_time("2017-01-02T10:00:00-05:00") == datetime(2017, 1, 2, 15, tzinfo=UTC)
    assert m.parse_time("2017-01-02T10:00:00") == datetime(2017, 1, 2, 9, tzinfo=UTC)


REFUSED = [
    ("not toml at all [", None),
    (BASE + "\n[colour]\nred = 1\n", "colour"),
    (BASE.replace('call_id = "id"', 'call_ud = "id"'), "source.call_ud"),
    (BASE.replace('call_id = "id"', ""), "source.call_id"),
    (BASE.replace('call_id = "id"', 'call_id = ""'), "source.call_id"),
    (BASE.replace('call_id = "id"', 'call_id = "id"\nlayout = "rows"'), "source.layout"),
    (BASE.replace('call_id = "id"', 'call_id = "id"\nlayout = "unit_rows"'), "unit.id"),
    (BASE.replace('call_id = "id"', 'call_id = "id"\ndelimiter = ";;"'), "source.delimiter"),
    (BASE.replace('call_id = "id"', 'call_id = "id"\nencoding = "klingon"'), "source.encoding"),
    (BASE.replace('call_id = "id"', 'call_id = "id"\ngroup_window = 0'), "source.group_window"),
    (BASE.replace("Europe/Amsterdam", "Europe/Atlantis"), "times.timezone"),
    (BASE.replace('["%Y-%m-%d %H:%M:%S"]', "[]"), "times.formats"),
    (BASE.replace('["%Y-%m-%d %H:%M:%S"]', '["YYYY-MM-DD"]'), "times.formats[0]"),
    (BASE.replace('["%Y-%m-%d %H:%M:%S"]', '["iso", "%Y-%Q"]'), "times.formats[1]"),
    (BASE.replace('received = "received"', ""), "times.columns.received"),
    (BASE.replace('dispatched = "dispatched"', 'dispatch = "d"'), "times.columns.dispatch"),
    (BASE.replace('"Fire" = "FSTRU"', '"Fire" = "NOSUCH"'), 'type.values."Fire"'),
    (BASE + 'default = "NOSUCH"\n', 'type.values."default"'),
    (BASE.replace('"Fire" = "FSTRU"', '"Fire" = 3'), 'type.values."Fire"'),
    (BASE + '\n[priority]\ncolumn = "p"\n[priority.values]\n"A" = 7\n', 'priority.values."A"'),
    (BASE + '\n[priority]\ncolumn = "p"\ndefault = 0\n', "priority.default"),
    (BASE + '\n[priority]\ncolumn = "p"\n[priority.values]\n"A" = "one"\n', 'priority.values."A"'),
    (BASE + '\n[unit_kind]\ncolumn = "k"\n[unit_kind.values]\n"E" = ""\n', 'unit_kind.values."E"'),
    (BASE + '\n[location]\nlat = "lat"\n', "location.lon"),
    (BASE + '\n[location]\nlat = "a"\nlon = "b"\npoint = "c"\n', "location"),
    (BASE + "\n[location]\n", "location"),
    (BASE + '\n[location]\nx = "x"\ny = "y"\n', "location.crs"),
    (BASE + '\n[location]\nx = "x"\ny = "y"\ncrs = "WGS84-ish"\n', "location.crs"),
    (BASE + '\n[location]\nx = "x"\ny = "y"\ncrs = 999999\n', "location.crs"),
    (BASE + '\n[location]\nlat = "a"\nlon = "b"\ncrs = 28992\n', "location.crs"),
    (
        BASE + '\n[location]\npoint = "p"\n[location.bbox]\nsouth = 53\nwest = 4\nnorth = 52\n'
        "east = 5\n",
        "location.bbox",
    ),
    (BASE + '\n[location]\npoint = "p"\n[location.bbox]\nsouth = 52\n', "location.bbox.west"),
    (BASE + '\n[[exclude]]\ncolumn = "agency"\nvalues = []\n', "exclude[0].values"),
    (BASE + '\n[[exclude]]\nvalues = ["X"]\n', "exclude[0].column"),
    (BASE + "\n[duplicates]\ncolumns = []\n", "duplicates.columns"),
]


@pytest.mark.parametrize(("text", "key"), REFUSED)
def test_a_bad_mapping_is_refused_naming_the_key(text, key):
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, source="m.toml")
    assert caught.value.code == "invalid_mapping"
    assert caught.value.message.startswith("m.toml: ")
    if key is not None:
        assert caught.value.field == key
        assert key in caught.value.message


def test_the_priority_default_key_is_named_as_written():
    # the default of the type table is a key of its own, not a value
    with pytest.raises(MappingError) as caught:
        parse_mapping(BASE.replace("[type.values]", 'default = "NOSUCH"\n[type.values]'))
    assert caught.value.field == "type.default"


def test_a_source_type_that_targets_a_protest_cannot_be_mapped():
    text = BASE + '"Protest march" = "DISORD"\n'
    with pytest.raises(ProtectedPurposeError) as caught:
        parse_mapping(text)
    assert caught.value.code == "protected_purpose"
    assert caught.value.field == 'type.values."Protest march"'


def test_a_unit_kind_name_is_screened():
    text = BASE + '\n[unit_kind]\ncolumn = "k"\n[unit_kind.values]\n"D" = "demonstration team"\n'
    with pytest.raises(ProtectedPurposeError):
        parse_mapping(text)


def test_a_missing_mapping_file_is_refused_with_its_name(tmp_path):
    with pytest.raises(MappingError, match=r"nope\.toml"):
        load_mapping(tmp_path / "nope.toml")


def test_a_header_without_a_named_column_is_refused_naming_key_and_column():
    m = parse_mapping(BASE)
    with pytest.raises(MappingError) as caught:
        m.check_header(["id", "received", "type"])
    assert caught.value.field == "times.columns.dispatched"
    assert "'dispatched'" in caught.value.message


# ------------------------------------------------------------------ time formats

FORMATS = [
    "%m/%d/%Y %I:%M:%S %p",
    "%Y-%m-%d %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y%m%d%H%M%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%d/%m/%Y  %H:%M",
]


def _strptime(text: str, fmt: str) -> datetime | None:
    try:
        return datetime.strptime(text, fmt)
    except ValueError:
        return None


def test_numeric_formats_take_the_fast_path():
    assert all(TimeFormat(f).regex is not None for f in FORMATS)
    assert TimeFormat("%d %b %Y").regex is None  # month names: strptime itself
    assert TimeFormat("%I:%M").regex is None  # %I without %p: strptime's own rule


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)),
    fmt=st.sampled_from(FORMATS),
)
def test_the_fast_path_reads_what_strptime_writes(moment, fmt):
    text = moment.strftime(fmt)
    assert TimeFormat(fmt).parse(text) == datetime.strptime(text, fmt)


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(alphabet="0123456789/:-. TAPMapm", max_size=24),
    fmt=st.sampled_from(FORMATS),
)
def test_the_fast_path_agrees_with_strptime_on_any_text(text, fmt):
    assert TimeFormat(fmt).parse(text) == _strptime(text, fmt)


@pytest.mark.parametrize(
    "text",
    ["12/31/2016 11:57:56 PM", "1/2/2017 12:00:00 AM", "01/02/2017 12:00:01 pm", "13/01/2017"],
)
def test_twelve_hour_times_read_as_strptime_reads_them(text):
    fmt = "%m/%d/%Y %I:%M:%S %p"
    assert TimeFormat(fmt).parse(text) == _strptime(text, fmt)
