"""Reading CAD exports with a mapping: each mapping option on a tiny inline CSV, and the
data-quality counts (skips by reason, duplicates, exclusions, interval gaps, coordinates)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import InvalidField, MappingError
from alarmdesk.domain.history import (
    DataQuality,
    Gap,
    Interval,
    Phase,
    check_csv,
    duration,
    parse_mapping,
    read_calls,
    read_calls_file,
)

CALLS = """
[source]
call_id = "id"

[times]
timezone = "UTC"
formats = ["%Y-%m-%d %H:%M:%S"]

[times.columns]
received = "received"
dispatched = "dispatched"
en_route = "en_route"
on_scene = "on_scene"
cleared = "cleared"

[type]
column = "type"
[type.values]
"Fire" = "FSTRU"
"Medical" = "BLS"
"""

HEADER = "id,type,received,dispatched,en_route,on_scene,cleared\n"


def read(mapping_text: str, csv_text: str):
    quality = DataQuality()
    records = list(read_calls(io.StringIO(csv_text), parse_mapping(mapping_text), quality))
    return records, quality


def at(hh_mm_ss: str) -> datetime:
    return datetime.fromisoformat(f"2017-01-02T{hh_mm_ss}+00:00")


def test_one_row_per_call_gives_a_record_with_its_phase_times():
    [r], q = read(CALLS, HEADER + "1,Fire,2017-01-02 10:00:00,2017-01-02 10:01:00,,,\n")
    assert r.call_id == "1"
    assert (r.type_code, r.category, r.priority) == ("FSTRU", HarmCategory.FIRE, 1)
    assert r.received == at("10:00:00")
    assert r.dispatched == at("10:01:00")
    assert r.on_scene is None
    assert r.units == ()
    assert (q.rows_read, q.calls, q.rows_skipped) == (1, 1, 0)


def test_times_are_read_in_the_mapping_zone():
    text = CALLS.replace('timezone = "UTC"', 'timezone = "America/Los_Angeles"')
    [r], _ = read(text, HEADER + "1,Fire,2017-01-02 10:00:00,,,,\n")
    assert r.received == datetime(2017, 1, 2, 18, tzinfo=UTC)


def test_an_unmapped_type_takes_the_stated_default_and_is_counted():
    text = CALLS.replace("[type.values]", 'default = "UNCLASS"\n[type.values]')
    [r], q = read(text, HEADER + "1,Strange noise,2017-01-02 10:00:00,,,,\n")
    assert r.type_code == "UNCLASS"
    assert q.defaulted == {("type", "Strange noise"): 1}
    assert q.rows_skipped == 0


def test_an_unmapped_type_without_a_default_skips_the_row_with_its_reason():
    csv_text = HEADER + "1,Strange noise,2017-01-02 10:00:00,,,,\n2,Fire,2017-01-02 10:00:00,,,,\n"
    records, q = read(CALLS, csv_text)
    assert [r.call_id for r in records] == ["2"]
    assert q.skipped == {"unmapped_type": 1}
    assert q.unmapped == {("type", "Strange noise"): 1}


def test_a_type_column_of_taxonomy_codes_needs_no_table():
    text = CALLS.replace('[type.values]\n"Fire" = "FSTRU"\n"Medical" = "BLS"\n', "")
    records, q = read(
        text, HEADER + "1,fstru,2017-01-02 10:00:00,,,,\n2,NOPE,2017-01-02 10:00:00,,,,\n"
    )
    assert [r.type_code for r in records] == ["FSTRU"]
    assert q.skipped == {"unmapped_type": 1}


def test_a_protest_type_is_skipped_even_with_a_default():
    text = CALLS.replace("[type.values]", 'default = "UNCLASS"\n[type.values]')
    records, q = read(text, HEADER + "1,Protest march,2017-01-02 10:00:00,,,,\n")
    assert records == []
    assert q.skipped == {"protected_purpose": 1}
    assert q.defaulted == {}


def test_priorities_map_through_their_table_and_default():
    text = CALLS + '\n[priority]\ncolumn = "prio"\ndefault = 4\n[priority.values]\n"E" = 1\n'
    header = HEADER.replace("\n", ",prio\n")
    rows = "1,Fire,2017-01-02 10:00:00,,,,,E\n2,Fire,2017-01-02 10:00:00,,,,,Z\n"
    records, q = read(text, header + rows)
    assert [r.priority for r in records] == [1, 4]
    assert q.defaulted == {("priority", "Z"): 1}


def test_priorities_without_a_table_must_be_one_to_five():
    text = CALLS + '\n[priority]\ncolumn = "prio"\n'
    header = HEADER.replace("\n", ",prio\n")
    rows = "1,Fire,2017-01-02 10:00:00,,,,,2\n2,Fire,2017-01-02 10:00:00,,,,,9\n"
    records, q = read(text, header + rows)
    assert [r.priority for r in records] == [2]
    assert q.skipped == {"unmapped_priority": 1}


def test_station_areas_keep_their_names_and_an_empty_cell_is_none():
    text = CALLS + '\n[station]\ncolumn = "station"\n'
    header = HEADER.replace("\n", ",station\n")
    rows = "1,Fire,2017-01-02 10:00:00,,,,,07\n2,Fire,2017-01-02 10:00:00,,,,,\n"
    records, _ = read(text, header + rows)
    assert [r.station_area for r in records] == ["07", None]


def test_rows_are_excluded_by_column_values_and_counted():
    text = CALLS + '\n[[exclude]]\ncolumn = "agency"\nvalues = ["MUTUAL AID", "TRANSFER"]\n'
    header = HEADER.replace("\n", ",agency\n")
    rows = (
        "1,Fire,2017-01-02 10:00:00,,,,,CITY\n"
        "2,Fire,2017-01-02 10:00:00,,,,, MUTUAL AID \n"
        "3,Fire,2017-01-02 10:00:00,,,,,TRANSFER\n"
        "4,Fire,2017-01-02 10:00:00,,,,,TRANSFER\n"
    )
    records, q = read(text, header + rows)
    assert [r.call_id for r in records] == ["1"]
    assert q.skipped == {"excluded": 3}
    assert q.excluded == {("agency", "MUTUAL AID"): 1, ("agency", "TRANSFER"): 2}


def test_a_repeated_call_is_counted_once():
    row = "1,Fire,2017-01-02 10:00:00,,,,\n"
    records, q = read(CALLS, HEADER + row + row + "2,Fire,2017-01-02 10:00:00,,,,\n" + row)
    assert [r.call_id for r in records] == ["1", "2"]
    assert (q.rows_read, q.calls, q.duplicates, q.rows_skipped) == (4, 2, 2, 0)


def test_the_duplicate_rule_names_the_columns_that_identify_a_call():
    text = CALLS + '\n[duplicates]\ncolumns = ["type", "received"]\n'
    rows = (
        "1,Fire,2017-01-02 10:00:00,,,,\n"
        "2,Fire,2017-01-02 10:00:00,,,,\n"  # same type at the same second: the same call
        "3,Fire,2017-01-02 10:00:05,,,,\n"
    )
    records, q = read(text, HEADER + rows)
    assert [r.call_id for r in records] == ["1", "3"]
    assert q.duplicates == 1


def test_rows_without_a_call_id_or_received_time_are_skipped_with_their_reason():
    rows = ",Fire,2017-01-02 10:00:00,,,,\n2,Fire,,2017-01-02 10:01:00,,,\n"
    records, q = read(CALLS, HEADER + rows)
    assert records == []
    assert q.skipped == {"missing_call_id": 1, "missing_received": 1}


def test_an_unreadable_time_is_counted_and_taken_as_missing():
    [r], q = read(CALLS, HEADER + "1,Fire,2017-01-02 10:00:00,soon,,,\n")
    assert r.dispatched is None
    assert q.unreadable_times == {"dispatched": 1}


def test_missing_negative_and_zero_intervals_are_counted_per_interval():
    rows = (
        # dispatched 60 s after the call, en route before dispatch, on scene with en route
        "1,Fire,2017-01-02 10:00:00,2017-01-02 10:01:00,2017-01-02 10:00:30,"
        "2017-01-02 10:00:30,\n"
        "2,Fire,2017-01-02 10:00:00,2017-01-02 10:00:00,,,2017-01-02 11:00:00\n"
    )
    records, q = read(CALLS, HEADER + rows)
    first, second = records
    assert duration(first, Interval.CALL_TO_DISPATCH) == 60
    assert duration(first, Interval.TURNOUT) is Gap.NEGATIVE
    assert duration(first, Interval.TRAVEL) is Gap.ZERO
    assert duration(second, Interval.CALL_TO_DISPATCH) is Gap.ZERO
    assert duration(second, Interval.HANDLING) == 3600
    turnout = q.intervals[Interval.TURNOUT]
    assert (turnout.measured, turnout.missing, turnout.negative, turnout.zero) == (0, 1, 1, 0)
    c2d = q.intervals[Interval.CALL_TO_DISPATCH]
    assert (c2d.measured, c2d.missing, c2d.negative, c2d.zero) == (1, 0, 0, 1)
    assert q.intervals[Interval.ANSWER].missing == 2  # no answered column at all


# ------------------------------------------------------------------ one row per unit

UNITS = (
    CALLS.replace('call_id = "id"', 'call_id = "id"\nlayout = "unit_rows"\ngroup_window = 3')
    + '\n[unit]\nid = "unit"\n\n[unit_kind]\ncolumn = "kind"\n[unit_kind.values]\n'
    + '"ENGINE" = "engine"\n"MEDIC" = "medic"\n'
)
UNIT_HEADER = "id,unit,kind,type,received,dispatched,en_route,on_scene,cleared\n"


def unit_row(call: str, unit: str, kind: str, times: str) -> str:
    cells = [f"2017-01-02 {t}" if t else "" for t in times.split(",")]
    return ",".join([call, unit, kind, "Fire", "2017-01-02 10:00:00", *cells]) + "\n"


def test_unit_rows_group_into_one_call_with_the_first_unit_per_phase():
    rows = (
        unit_row("1", "E1", "ENGINE", "10:01:00,10:02:00,10:09:00,10:30:00")
        + unit_row("2", "E9", "ENGINE", "10:01:00,,,")
        + unit_row("1", "M4", "MEDIC", "10:00:40,10:03:00,10:06:00,10:50:00")
    )
    records, q = read(UNITS, UNIT_HEADER + rows)
    r = next(r for r in records if r.call_id == "1")
    assert [u.unit_id for u in r.units] == ["E1", "M4"]
    assert r.dispatched == at("10:00:40")  # the medic was sent first
    assert r.en_route == at("10:02:00")  # the engine rolled first
    assert r.on_scene == at("10:06:00")  # the medic arrived first
    assert r.cleared == at("10:50:00")  # the call is clear when its last unit is
    assert r.first_unit(Phase.DISPATCHED).unit_id == "M4"
    assert r.first_unit(Phase.EN_ROUTE).kind == "engine"
    assert r.first_unit(Phase.CLEARED).unit_id == "M4"
    assert r.first_unit(Phase.RECEIVED) is None
    assert r.unit_kinds() == ["engine", "medic"]
    assert duration(r, Interval.TRAVEL) == 240  # first en route → first on scene
    assert duration(r, Interval.TRAVEL, {"engine"}) == 420
    assert (q.rows_read, q.calls) == (3, 2)


def test_a_call_whose_rows_lie_further_apart_than_the_window_is_not_split():
    rows = (
        unit_row("1", "E1", "ENGINE", "10:01:00,,,")
        + unit_row("2", "E2", "ENGINE", "10:01:00,,,")
        + unit_row("3", "E3", "ENGINE", "10:01:00,,,")
        + unit_row("4", "E4", "ENGINE", "10:01:00,,,")
        + unit_row("1", "M1", "MEDIC", "10:00:30,,,")  # four rows after its call's first
    )
    records, q = read(UNITS, UNIT_HEADER + rows)
    one = next(r for r in records if r.call_id == "1")
    assert [u.unit_id for u in one.units] == ["E1"]
    assert q.skipped == {"call_rows_apart": 1}
    assert q.calls == 4


def test_a_unit_row_without_a_unit_id_is_skipped():
    rows = unit_row("1", "", "ENGINE", "10:01:00,,,") + unit_row("1", "E1", "ENGINE", ",,,")
    [r], q = read(UNITS, UNIT_HEADER + rows)
    assert [u.unit_id for u in r.units] == ["E1"]
    assert q.skipped == {"missing_unit_id": 1}


def test_the_same_unit_row_twice_is_a_duplicate_by_default():
    row = unit_row("1", "E1", "ENGINE", "10:01:00,,,")
    [r], q = read(UNITS, UNIT_HEADER + row + row + unit_row("1", "M1", "MEDIC", ",,,"))
    assert [u.unit_id for u in r.units] == ["E1", "M1"]
    assert q.duplicates == 1


def test_an_unmapped_unit_kind_skips_that_unit_row_only():
    rows = unit_row("1", "E1", "ENGINE", "10:01:00,,,") + unit_row("1", "X1", "HOVERCRAFT", ",,,")
    [r], q = read(UNITS, UNIT_HEADER + rows)
    assert [u.unit_id for u in r.units] == ["E1"]
    assert q.skipped == {"unmapped_unit_kind": 1}


def test_one_row_per_call_with_a_unit_column_gives_one_unit():
    text = CALLS + '\n[unit]\nid = "unit"\n'
    [r], _ = read(text, HEADER.replace("\n", ",unit\n") + "1,Fire,2017-01-02 10:00:00,,,,,E1\n")
    assert [u.unit_id for u in r.units] == ["E1"]


def test_a_file_that_lacks_a_mapped_column_is_refused_before_any_row():
    with pytest.raises(MappingError) as caught:
        read(CALLS, "id,type,received\n1,Fire,2017-01-02 10:00:00\n")
    assert caught.value.field == "times.columns.dispatched"


def test_another_delimiter_and_a_byte_order_mark():
    text = CALLS.replace('call_id = "id"', 'call_id = "id"\ndelimiter = ";"')
    csv_text = "\ufeff" + HEADER.replace(",", ";") + "1;Fire;2017-01-02 10:00:00;;;;\n"
    m = parse_mapping(text)
    quality = DataQuality()
    data = io.StringIO(csv_text.encode("utf-8").decode(m.encoding))
    assert [r.call_id for r in read_calls(data, m, quality)] == ["1"]


# ------------------------------------------------------------------ coordinates

LATLON = CALLS + (
    '\n[location]\nlat = "lat"\nlon = "lon"\n'
    "[location.bbox]\nsouth = 50\nwest = 3\nnorth = 54\neast = 8\n"
)


def test_coordinates_outside_the_box_or_at_zero_are_counted_and_left_out():
    header = HEADER.replace("\n", ",lat,lon\n")
    rows = "".join(
        f"{i},Fire,2017-01-02 10:00:00,,,,,{lat},{lon}\n"
        for i, (lat, lon) in enumerate(
            [
                ("52.37", "4.89"),
                ("0", "0"),
                ("40.7", "-74.0"),
                ("", ""),
                ("north", "4"),
                ("95", "4"),
            ]
        )
    )
    records, q = read(LATLON, header + rows)
    assert [(r.lat, r.lon) for r in records] == [(52.37, 4.89)] + [(None, None)] * 5
    assert q.coordinates == {
        "valid": 1,
        "zero": 1,
        "outside_bbox": 1,
        "missing": 1,
        "unreadable": 1,
        "out_of_range": 1,
    }


def test_a_point_column_is_read_as_lat_lon():
    text = CALLS + '\n[location]\npoint = "where"\n'
    header = HEADER.replace("\n", ",where\n")
    rows = (
        '1,Fire,2017-01-02 10:00:00,,,,,"(37.745858648581, -122.456664252061)"\n'
        '2,Fire,2017-01-02 10:00:00,,,,,"somewhere"\n'
    )
    records, q = read(text, header + rows)
    assert (records[0].lat, records[0].lon) == (37.745858648581, -122.456664252061)
    assert (records[1].lat, records[1].lon) == (None, None)
    assert q.coordinates == {"valid": 1, "unreadable": 1}


def test_projected_x_y_are_transformed_to_wgs84():
    # EPSG:28992 (Amersfoort / RD New): its origin, the Onze Lieve Vrouwetoren in Amersfoort,
    # is x 155000, y 463000; in WGS 84 about 52.15517 N, 5.38721 E.
    text = CALLS + '\n[location]\nx = "x"\ny = "y"\ncrs = 28992\n'
    header = HEADER.replace("\n", ",x,y\n")
    [r], q = read(text, header + "1,Fire,2017-01-02 10:00:00,,,,,155000,463000\n")
    assert r.lat == pytest.approx(52.15517, abs=1e-4)
    assert r.lon == pytest.approx(5.38721, abs=1e-4)
    assert q.coordinates == {"valid": 1}


def test_the_report_says_it_all_in_words():
    text = CALLS.replace("[type.values]", 'default = "UNCLASS"\n[type.values]')
    rows = "1,Odd,2017-01-02 10:00:00,soon,,,\n1,Odd,2017-01-02 10:00:00,soon,,,\n"
    _, q = read(text, HEADER + rows)
    report = "\n".join(q.lines())
    assert "rows read: 2" in report
    assert "duplicate rows (counted once): 1" in report
    assert "type 'Odd': 1" in report
    assert "dispatched: 1" in report
    assert "call_to_dispatch: 0 / 1 / 0 / 0" in report


def test_a_file_that_is_not_csv_is_bad_input_naming_the_line():
    m = parse_mapping(CALLS)
    huge = "x" * 200_000  # over the csv module's field limit: a broken file, not a call
    text = HEADER + "1,Fire,2017-01-02 10:00:00,,,,\n" + f"2,{huge},2017-01-02 10:00:00,,,,\n"
    with pytest.raises(InvalidField) as caught:
        list(read_calls(io.StringIO(text), m, DataQuality()))
    assert caught.value.code == "malformed_csv"
    assert "line 3" in caught.value.message


def test_a_file_in_another_encoding_is_bad_input(tmp_path):
    path = tmp_path / "calls.csv"
    path.write_bytes((HEADER + "1,Fire,2017-01-02 10:00:00,,,,\n").encode("utf-16"))
    with pytest.raises(InvalidField) as caught:
        list(read_calls_file(path, parse_mapping(CALLS), DataQuality()))
    assert caught.value.code == "malformed_csv"


def test_check_csv_counts_the_rows_and_finds_what_the_reader_would_stop_at():
    m = parse_mapping(CALLS)
    good = HEADER + "1,Fire,2017-01-02 10:00:00,,,,\n" + "2,Fire,2017-01-02 10:05:00,,,,\n"
    assert check_csv(io.StringIO(good), m) == 2
    huge = "x" * 200_000
    with pytest.raises(InvalidField) as caught:
        check_csv(io.StringIO(good + f"3,{huge},2017-01-02 10:00:00,,,,\n"), m)
    assert caught.value.code == "malformed_csv" and "line 4" in caught.value.message
    with pytest.raises(MappingError, match="dispatched"):
        check_csv(io.StringIO("id,type,received\n"), m)


def test_a_call_s_last_time_is_the_latest_it_or_a_unit_records():
    rows = unit_row("1", "E1", "ENGINE", "10:01:00,10:02:00,10:09:00,10:30:00") + unit_row(
        "1", "M4", "MEDIC", "10:00:40,10:03:00,10:06:00,"
    )
    [r], _ = read(UNITS, UNIT_HEADER + rows)
    assert r.last_time() == at("10:30:00")
    [r], _ = read(CALLS, HEADER + "1,Fire,2017-01-02 10:00:00,,,,\n")
    assert r.last_time() == at("10:00:00")  # only received
