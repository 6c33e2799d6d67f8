"""A centre's call history imported from its CAD export, and the KPI report over it
(docs/analytics.md): the San Francisco week (tests/fixtures/calls) with the shipped mapping,
on SQLite and PostgreSQL.

- importing stores every call once; the same file again adds nothing;
- ``report kpi --format json`` equals domain/kpi over the reader's records of the file, and
  the independent computation of tests/unit/test_sf_calls_kpi.py;
- a bad mapping, a file that is not CSV halfway, a missing column: exit 2, nothing stored;
- imported calls are incident data: retention erases them by the incidents class;
- every import chunk and every report leaves its audit entry, counts only.

The command line runs in-process (typer's CliRunner) on the real clock; tests that need a
fixed time call the service with an injected one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alarmdesk.bootstrap import audit_chain
from alarmdesk.cli import app
from alarmdesk.config import Config
from alarmdesk.domain.history import DataQuality, Interval, load_mapping, read_calls_file
from alarmdesk.domain.kpi import NFPA_1710, Dimension, Period
from alarmdesk.safeguards.audit import Actor
from alarmdesk.safeguards.retention_policy import RetentionConfig
from alarmdesk.service.history import ImportSummary, import_calls
from alarmdesk.service.retention import run_retention
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine, upgrade
from tests.conftest import FIXTURES, REPO_ROOT, Desk
from tests.conftest import test_config as config_for
from tests.kpi_oracle import compliance, kpis
from tests.unit.test_sf_calls_kpi import expected

SF_WEEK = FIXTURES / "calls" / "sf_fire_calls_2016-12-31_2017-01-07.csv"
MAPPING = REPO_ROOT / "docs" / "examples" / "sf-fire-calls.toml"
SF = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # the week is 9.9 years old then
TEN_YEARS = RetentionConfig(incidents_days=3653)  # the ceiling: keeps the week at NOW
IMPORTER = Actor("user:3", "supervisor")
WEEK_CALLS = 3560  # tests/unit/test_sf_calls_kpi.py counts them too


@pytest.fixture
def cfg(db_url: str) -> Config:
    upgrade(db_url)
    return config_for(db_url)


@pytest.fixture
def engine(cfg: Config) -> Any:
    engine = make_engine(cfg.database.url)
    yield engine
    engine.dispose()


def config_file(cfg: Config, tmp_path: Path, retention: str = "") -> Path:
    path = tmp_path / "alarmdesk.toml"
    path.write_text(
        f'[audit]\nkey_file = "{cfg.audit.key_file}"\n'
        f'[analytics]\ndir = "{cfg.analytics.dir}"\n{retention}'
    )
    return path


def cli(cfg: Config, tmp_path: Path, *args: str, retention: str = "") -> Any:
    conf = config_file(cfg, tmp_path, retention)
    return CliRunner().invoke(
        app, [*args, "-c", str(conf), "--database-url", cfg.database.url], catch_exceptions=False
    )


def said(result: Any) -> str:
    """What the command printed, on one line (rich wraps messages at the terminal's width)."""
    return " ".join(result.output.split())


def import_week(
    cfg: Config, engine: sa.Engine, path: Path = SF_WEEK, *, chunk: int = 2000, **kw: Any
) -> ImportSummary:
    args: dict[str, Any] = {
        "source": "sf",
        "actor": IMPORTER,
        "policy": TEN_YEARS,
        "now": NOW,
        "chunk": chunk,
    }
    return import_calls(engine, audit_chain(cfg), path, load_mapping(MAPPING), **(args | kw))


def stored(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        calls = conn.execute(sa.select(sa.func.count()).select_from(t.history_calls)).scalar()
        units = conn.execute(sa.select(sa.func.count()).select_from(t.history_units)).scalar()
    return int(calls or 0), int(units or 0)


def audit(engine: sa.Engine, op: str | None = None) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.audit_entries.c.entry)
            .where(t.audit_entries.c.entry.is_not(None))
            .order_by(t.audit_entries.c.seq)
        ).scalars()
        found = [json.loads(r) for r in rows]
    return [e for e in found if op is None or e["op"] == op]


@pytest.fixture(scope="module")
def week() -> tuple[list[Any], DataQuality]:
    """The week as the pure reader gives it: the reference the stored history must match."""
    quality = DataQuality()
    return list(read_calls_file(SF_WEEK, load_mapping(MAPPING), quality)), quality


# -- import ------------------------------------------------------------------------------------


def test_the_week_imports_every_call_once_and_again_adds_nothing(cfg, engine, week) -> None:
    first = import_week(cfg, engine)
    assert (first.imported, first.already_imported) == (WEEK_CALLS, 0)
    assert first.quality.rows_read == 7704 and first.quality.calls == WEEK_CALLS
    assert not first.not_stored
    calls, units = stored(engine)
    assert calls == WEEK_CALLS
    assert units == sum(len(r.units) for r in week[0]) == 7704  # one row per unit
    entries = audit(engine, "collect")
    again = import_week(cfg, engine)
    assert (again.imported, again.already_imported) == (0, WEEK_CALLS)
    assert stored(engine) == (calls, units)
    # one collect entry per chunk (2000 calls), counts only
    assert len(entries) == 2
    after = audit(engine, "collect")
    assert len(after) == 4
    for e in after:
        assert e["object_type"] == "history_calls" and e["object_id"] == "sf"
        assert e["actor"] == "user:3" and e["outcome"] == "allowed"
        assert set(e["detail"]) == {"calls", "imported", "already"}
    assert sum(e["detail"]["imported"] for e in after) == WEEK_CALLS
    assert sum(e["detail"]["already"] for e in after) == WEEK_CALLS
    # never content: no call number, station or unit of the file in the log
    text = json.dumps(after)
    assert week[0][0].call_id not in text and week[0][0].units[0].unit_id not in text


def test_stored_calls_read_back_as_the_reader_gave_them(cfg, engine, week) -> None:
    from alarmdesk.store.history import HistoryFilter, read_calls

    import_week(cfg, engine)
    everything = HistoryFilter(NOW - timedelta(days=4000), NOW)
    with engine.connect() as conn:
        back = {r.call_id: r for r in read_calls(conn, everything, chunk=500)}
    assert back == {r.call_id: r for r in week[0]}


def test_calls_past_the_retention_period_are_not_stored(cfg, engine) -> None:
    summary = import_week(cfg, engine, policy=RetentionConfig(incidents_days=3000))
    assert summary.imported == 0
    assert summary.not_stored == {"past_retention": WEEK_CALLS}
    assert stored(engine) == (0, 0)
    assert "past_retention: 3560" in "\n".join(summary.lines())


def recent_copy(tmp_path: Path) -> Path:
    """The week moved to the last two years, so that the default retention (730 days) keeps
    it when the command line imports it on the real clock."""
    year = datetime.now(UTC).year
    text = SF_WEEK.read_text("utf-8").replace("/2016 ", f"/{year - 1} ")
    path = tmp_path / "recent.csv"
    path.write_text(text.replace("/2017 ", f"/{year} "), "utf-8")
    return path


def test_the_command_imports_with_a_summary_and_twice_adds_nothing(cfg, engine, tmp_path) -> None:
    recent = recent_copy(tmp_path)
    args = ("import", "calls", str(recent), "--mapping", str(MAPPING), "--source", "sf")
    result = cli(cfg, tmp_path, *args)
    assert result.exit_code == 0, result.output
    assert f"calls imported: {WEEK_CALLS}" in result.output
    assert "rows read: 7704" in result.output and "type 'Other': 123" in result.output
    assert "call_to_dispatch: 3490 / 0 / 0 / 70" in result.output  # the data-quality report
    result = cli(cfg, tmp_path, *args)
    assert result.exit_code == 0, result.output
    assert "calls imported: 0" in result.output
    assert f"calls already imported (not added again): {WEEK_CALLS}" in result.output
    assert stored(engine)[0] == WEEK_CALLS
    assert {e["actor"].split(":")[0] for e in audit(engine, "collect")} == {"cli"}


def broken_copy(tmp_path: Path) -> Path:
    """The recent week with bytes that are not UTF-8 near its end: past the first chunk."""
    lines = recent_copy(tmp_path).read_bytes().split(b"\n")
    lines[7000] = b"\xff\xfe" + lines[7000]
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\n".join(lines))
    return path


def test_a_file_that_is_not_csv_halfway_stores_nothing(cfg, engine, tmp_path) -> None:
    result = cli(
        cfg, tmp_path, "import", "calls", str(broken_copy(tmp_path)), "--mapping", str(MAPPING)
    )
    assert result.exit_code == 2, result.output
    assert "line 7001: not readable as CSV" in said(result) and "malformed_csv" in said(result)
    assert stored(engine) == (0, 0)
    assert audit(engine, "collect") == []


def test_a_file_without_a_mapped_column_stores_nothing(cfg, engine, tmp_path) -> None:
    text = SF_WEEK.read_text("utf-8").replace("Dispatch DtTm", "Sent DtTm", 1)
    path = tmp_path / "renamed.csv"
    path.write_text(text, "utf-8")
    result = cli(cfg, tmp_path, "import", "calls", str(path), "--mapping", str(MAPPING))
    assert result.exit_code == 2, result.output
    assert "times.columns.dispatched" in said(result) and "Dispatch DtTm" in said(result)
    assert stored(engine) == (0, 0)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (("[unit]", "[units]"), "units"),  # an unknown table
        (('formats = ["%m/%d/%Y %I:%M:%S %p"]', "formats = 3"), "times.formats"),
        (('"Alarms" = "ALRF"', '"Alarms" = "NOSUCH"'), "type.values"),
    ],
)
def test_a_bad_mapping_exits_2_naming_the_key(cfg, engine, tmp_path, change, named) -> None:
    text = MAPPING.read_text("utf-8")
    assert change[0] in text
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace(change[0], change[1], 1), "utf-8")
    result = cli(cfg, tmp_path, "import", "calls", str(SF_WEEK), "--mapping", str(bad))
    assert result.exit_code == 2, result.output
    assert named in said(result) and "invalid_mapping" in said(result)
    assert stored(engine) == (0, 0)


def test_a_missing_file_exits_2(cfg, engine, tmp_path) -> None:
    missing = tmp_path / "nothing.csv"
    result = cli(cfg, tmp_path, "import", "calls", str(missing), "--mapping", str(MAPPING))
    assert result.exit_code == 2, result.output
    assert "unreadable_file" in said(result)


def test_a_source_name_that_targets_people_exercising_rights_exits_3(cfg, tmp_path) -> None:
    args = ("import", "calls", str(SF_WEEK), "--mapping", str(MAPPING))
    result = cli(cfg, tmp_path, *args, "--source", "protest watch")
    assert result.exit_code == 3, result.output
    assert "protected_purpose" in said(result)
    result = cli(
        cfg, tmp_path, "report", "kpi", "--from", "2017-01-01", "--to", "2017-01-02",
        "--source", "protest watch",
    )  # fmt: skip
    assert result.exit_code == 3, result.output


# -- the report ---------------------------------------------------------------------------------


def report(cfg: Config, tmp_path: Path, by: Sequence[str], *extra: str) -> dict[str, Any]:
    result = cli(
        cfg,
        tmp_path,
        "report",
        "kpi",
        "--from",
        "2016-12-31",
        "--to",
        "2017-01-07",
        "--timezone",
        "America/Los_Angeles",
        "--format",
        "json",
        *(("--by", ",".join(by)) if by else ()),
        *extra,
    )
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.mark.parametrize(
    "by",
    [
        (),
        ("station_area",),
        ("priority", "unit_kind"),
        ("period", "type", "hour"),
    ],
)
def test_the_json_report_equals_the_pure_computation_over_the_file(
    cfg, engine, tmp_path, week, by
) -> None:
    import_week(cfg, engine)
    data = report(cfg, tmp_path, by, "--period", "day")
    assert data["calls"] == WEEK_CALLS and data["by"] == list(by)
    dims = [Dimension(d) for d in by]
    pure = kpis(week[0], dims, period=Period.DAY, tz=SF)
    got = {tuple(g["group"][d] for d in by): g["intervals"] for g in data["groups"]}
    assert list(got) == list(pure)
    for key, by_interval in pure.items():
        for interval, s in by_interval.items():
            figures = got[key][interval.value]
            assert figures == {
                "count": s.count,
                "mean": s.mean,
                "p50": s.p50,
                "p90": s.p90,
                "p99": s.p99,
                "missing": s.missing,
                "negative": s.negative,
                "zero": s.zero,
            }, (key, interval)


def test_the_report_equals_the_independent_computation_and_reports_nfpa_compliance(
    cfg, engine, tmp_path, week
) -> None:
    import_week(cfg, engine)
    for dimension, by in (("station", "station_area"), ("priority", "priority")):
        data = report(cfg, tmp_path, [by])
        got = {g["group"][by]: g["intervals"] for g in data["groups"]}
        for (key,), by_interval in expected(dimension).items():
            for interval, (count, mean, p50, p90, p99) in by_interval.items():
                f = got[key][interval.value]
                assert (f["count"], f["p50"], f["p90"], f["p99"]) == (count, p50, p90, p99)
                assert f["mean"] == pytest.approx(mean, abs=1e-9)
    pure = compliance(
        week[0], NFPA_1710, (Dimension.STATION_AREA, Dimension.PERIOD), period=Period.YEAR, tz=SF
    )
    got_c = data["compliance"]
    assert len(got_c) == len(pure)
    for c, g in zip(pure, got_c, strict=True):
        assert (g["objective"], g["station_area"], g["year"]) == (
            c.objective.name,
            c.group[0],
            c.group[1],
        )
        assert (g["count"], g["within"], g["achieved"], g["met"], g["left_out"]) == (
            c.count,
            c.within,
            c.achieved,
            c.met,
            c.left_out,
        )
    processing = [g for g in got_c if g["objective"] == "alarm processing"]
    assert {g["year"] for g in processing} == {"2016", "2017"}
    assert any(g["met"] is False for g in processing)  # SF misses 64 s for 90 %
    assert all(g["met"] is None for g in got_c if g["objective"] == "alarm answering")


def test_the_report_is_an_audited_combine_with_its_filters(cfg, engine, tmp_path) -> None:
    import_week(cfg, engine)
    data = report(cfg, tmp_path, ["station_area"], "--source", "sf")
    assert data["calls"] == WEEK_CALLS and data["source"] == "sf"
    assert report(cfg, tmp_path, [], "--source", "elsewhere")["calls"] == 0
    (first, second) = audit(engine, "combine")
    assert first["object_type"] == "history_calls"
    assert first["object_id"] == "2016-12-31/2017-01-07"
    assert first["detail"] == {
        "by": ["station_area"],
        "source": "sf",
        "own": False,
        "timezone": "America/Los_Angeles",
        "format": "json",
    }
    assert second["detail"]["source"] == "elsewhere"


def test_the_table_and_csv_formats(cfg, engine, tmp_path) -> None:
    import_week(cfg, engine)
    common = ("report", "kpi", "--from", "2016-12-31", "--to", "2017-01-07")
    table = cli(cfg, tmp_path, *common, "--by", "priority")
    assert table.exit_code == 0, table.output
    assert "NFPA 1710 (2020)" in table.output and "not met" in table.output
    assert "nearest rank" in table.output
    text = cli(cfg, tmp_path, *common, "--by", "priority", "--format", "csv").stdout
    lines = text.splitlines()
    assert lines[0] == ("priority,interval,count,mean_s,p50_s,p90_s,p99_s,missing,negative,zero")
    assert len(lines) == 1 + 2 * len(Interval)  # priorities 1 and 3, every interval
    assert lines[1].startswith("1,answer,0,,,,,")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2017-13-01", "--to", "2017-01-02"), "--from '2017-13-01'"),
        (("--from", "2017-01-03", "--to", "2017-01-02"), "is before --from"),
        (("--from", "2017-01-01", "--to", "2017-01-02", "--by", "station"), "--by 'station'"),
        (("--from", "2017-01-01", "--to", "2017-01-02", "--by", "hour,hour"), "twice"),
        (("--from", "2017-01-01", "--to", "2017-01-02", "--timezone", "Mars/Base"), "IANA"),
        (("--from", "2017-01-01", "--to", "2017-01-02", "--period", "decade"), "--period"),
        (("--from", "2017-01-01", "--to", "2017-01-02", "--format", "pdf"), "--format"),
        (("--from", "2017-01-01", "--to", "2017-01-02", "--objectives", "nope.toml"), "nope"),
        (("--to", "2017-01-02"), "--from"),
    ],
)
def test_bad_report_options_exit_2(cfg, engine, tmp_path, args, message) -> None:
    result = cli(cfg, tmp_path, "report", "kpi", *args)
    assert result.exit_code == 2, result.output
    assert message in said(result)
    assert audit(engine, "combine") == []


def test_a_centre_s_own_objectives_and_the_html_page(cfg, engine, tmp_path) -> None:
    import_week(cfg, engine)
    own = tmp_path / "county-objectives.toml"
    own.write_text(
        '[[objective]]\nname = "county travel"\ninterval = "travel"\n'
        "limit_seconds = 480\nfraction = 0.9\n"
    )
    data = report(cfg, tmp_path, [], "--objectives", str(own))
    assert data["objectives"] == "county-objectives.toml"
    assert {c["objective"] for c in data["compliance"]} == {"county travel"}
    common = ("report", "kpi", "--from", "2016-12-31", "--to", "2017-01-07")
    page = cli(cfg, tmp_path, *common, "--by", "priority", "--format", "html").stdout
    assert page.startswith("<!doctype html>") and "Compliance: NFPA 1710 (2020)" in page
    assert "<td>not met</td>" in page and "<td>call_to_dispatch</td>" in page
    table = json.loads(cli(cfg, tmp_path, *common, "--by", "priority", "--format", "json").stdout)
    compliance_rows, workload_rows = len(table["compliance"]), len(table["workload"])
    assert page.count("<tr>") == 1 + 2 * len(Interval) + 1 + workload_rows + 1 + compliance_rows


def test_workload_per_station_area_and_the_areas_over_target(cfg, engine, tmp_path) -> None:
    import_week(cfg, engine)
    data = report(cfg, tmp_path, [], "--target", "600")
    load = data["workload"]
    assert sum(w["calls"] for w in load) == data["calls"] == WEEK_CALLS
    assert all(w["units"] >= 1 and 0 < w["utilisation"] < 1 for w in load if w["responses"])
    assert data["target_seconds"] == 600 and data["target_interval"] == "call_to_on_scene"
    worst = data["over_target"]
    p90s = [o["p90"] for o in worst]
    assert worst and all(p > 600 for p in p90s) and p90s == sorted(p90s, reverse=True)
    by_area = {
        g["group"]["station_area"]: g["intervals"]["call_to_on_scene"]["p90"]
        for g in report(cfg, tmp_path, ["station_area"])["groups"]
    }
    assert {o["station_area"] for o in worst} == {
        a for a, p in by_area.items() if p is not None and p > 600
    }


# -- retention ----------------------------------------------------------------------------------


def test_retention_erases_imported_calls_by_the_incidents_class(cfg, engine, week) -> None:
    import_week(cfg, engine)
    medical = sum(1 for r in week[0] if r.category.value == "medical")
    assert 0 < medical < WEEK_CALLS
    chain = audit_chain(cfg)
    # medical kept 3000 days, the rest the ceiling: at NOW only the medical calls expired
    policy = RetentionConfig(incidents_days=3653, incidents_by_category={"medical": 3000})
    run = run_retention(engine, policy, chain, NOW)
    assert run.counts["incidents"] == run.history_calls == medical
    assert stored(engine)[0] == WEEK_CALLS - medical
    with engine.connect() as conn:
        left = set(conn.execute(sa.select(t.history_calls.c.category)).scalars())
        orphans = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.history_units)
            .where(t.history_units.c.history_call_id.not_in(sa.select(t.history_calls.c.id)))
        ).scalar()
    assert "medical" not in left and orphans == 0
    # one entry a chunk of 500, each with the chunk's count and categories
    erased = audit(engine, "erase")
    assert len(erased) == -(-medical // 500)
    assert {e["object_type"] for e in erased} == {"incidents"}
    assert [e["detail"]["history_calls"] for e in erased] == [e["detail"]["count"] for e in erased]
    assert sum(e["detail"]["history_calls"] for e in erased) == medical
    assert all(e["detail"]["history_by_category"].keys() == {"medical"} for e in erased)
    # a year on, past the ceiling, the rest goes too
    later = datetime.combine(date(2027, 12, 1), datetime.min.time(), UTC)
    run = run_retention(engine, policy, chain, later)
    assert run.history_calls == WEEK_CALLS - medical
    assert stored(engine) == (0, 0)


def test_a_database_without_the_history_tables_exits_1(sqlite_url, tmp_path) -> None:
    cfg = config_for(sqlite_url)  # never upgraded
    make_engine(sqlite_url).connect().close()  # the file exists (a missing one: "no database")
    result = cli(cfg, tmp_path, "report", "kpi", "--from", "2017-01-01", "--to", "2017-01-02")
    assert result.exit_code == 1, result.output
    assert "schema" in said(result)


def own_kpis(desk: Desk, by: str) -> Any:
    """The KPI report of the desk's own incidents of 2026-12-03, grouped ``by``."""
    from alarmdesk.service.kpi_report import kpi_query, kpi_report

    query = kpi_query("2026-12-03", "2026-12-03", by=by, own=True)
    return kpi_report(
        desk.svc.engine,
        audit_chain(desk.svc.config),
        query,
        actor=desk.OPERATOR,
        now=desk.clock(),
        fmt="json",
        analytics=desk.svc.analytics,
    )


def test_the_kpis_of_alarmdesk_s_own_incidents_follow_their_timeline(db_url, desk_factory) -> None:
    from alarmdesk.domain import commands as c
    from alarmdesk.service.kpi_report import kpi_query
    from tests.conftest import FakeClock, prepare_database

    prepare_database(db_url)
    clock = FakeClock(datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    desk = desk_factory(db_url, clock)
    handled = []
    for n, (unit, lon) in enumerate((("E1", -0.1), ("E2", 0.3))):
        inc = desk.call(f"own-{n}", lon=lon)
        clock.advance(seconds=20 + n)  # answered after 20 s, then 21 s
        desk.command(c.Acknowledge(inc, "op"))
        clock.advance(seconds=40)
        desk.command(c.Dispatch(inc, "op", units=(unit,)))
        clock.advance(seconds=30)
        desk.unit(unit, "en_route")
        clock.advance(seconds=200)
        desk.unit(unit, "on_scene")
        clock.advance(seconds=600)
        desk.command(c.Resolve(inc, "op", disposition="handled"))
        handled.append(inc)
    cancelled = desk.call("own-cancelled", lon=0.8)  # never timed: not handled to the end
    desk.command(c.Cancel(cancelled, "op", reason="false_alarm"))

    report = own_kpis(desk, "unit_kind")
    assert report.own and report.calls == 2
    (group,) = report.groups
    assert group.group == {"unit_kind": "engine"}
    figures = {name: (f.count, f.mean) for name, f in group.intervals.items()}
    assert figures == {
        "answer": (2, 20.5),
        "call_to_dispatch": (2, 60.5),
        "turnout": (2, 30.0),
        "travel": (2, 200.0),
        "call_to_on_scene": (2, 290.5),
        "on_scene": (2, 600.0),
        "handling": (2, 890.5),
    }
    with pytest.raises(Exception, match="one or the other"):
        kpi_query("2026-12-03", "2026-12-03", own=True, source="old-cad")


def test_each_unit_of_an_own_incident_is_timed_by_its_own_reports(db_url, desk_factory) -> None:
    """An engine and a medic sent together: grouped by unit kind, each kind is timed by its
    own unit's reports (the medic's later arrival, its earlier clear); grouped by desk and by
    H3 cell, the call counts in each desk it was routed to and in the cell of its location."""

    from alarmdesk.domain import commands as c
    from alarmdesk.domain.hexgrid import cell_of
    from alarmdesk.domain.units import Unit
    from alarmdesk.store import repository as repo
    from alarmdesk.store import tables as t
    from tests.conftest import FakeClock, prepare_database

    prepare_database(db_url)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        repo.upsert_stations(conn, [{"id": "S1", "name": "One"}, {"id": "S2", "name": "Two"}])
        repo.upsert_units(
            conn,
            [
                Unit(id="E1", kind="engine", station="S1", capabilities=("fire",)),
                Unit(id="M1", kind="medic", station="S2", capabilities=("medical",)),
            ],
        )
    clock = FakeClock(datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
    desk = desk_factory(db_url, clock)

    def at(seconds: int) -> None:
        clock.now = datetime(2026, 12, 3, 8, 0, tzinfo=UTC) + timedelta(seconds=seconds)

    inc = desk.call("two-kinds", lon=5.0, summary="smoke and a casualty")
    at(20)
    desk.command(c.Acknowledge(inc, "op"))
    at(60)
    desk.command(c.Dispatch(inc, "op", units=("E1", "M1")))
    for second, unit, status in (
        (90, "E1", "en_route"),
        (110, "M1", "en_route"),
        (260, "E1", "on_scene"),
        (360, "M1", "on_scene"),
        (660, "M1", "available"),  # the medic leaves first
    ):
        at(second)
        desk.unit(unit, status)
    at(900)  # the engine never reports clear: it is let go when the incident is resolved
    desk.command(c.Resolve(inc, "op", disposition="handled"))

    kinds, by_desk, by_cell = (own_kpis(desk, by) for by in ("unit_kind", "desk", "h3"))
    with engine.connect() as conn:
        routed = sorted(
            conn.execute(
                sa.select(t.incident_desks.c.desk_id).where(t.incident_desks.c.incident_id == inc)
            ).scalars()
        )
    engine.dispose()

    def means(group: Any) -> dict[str, float | None]:
        return {name: f.mean for name, f in group.intervals.items()}

    groups = {g.group["unit_kind"]: means(g) for g in kinds.groups}
    assert groups == {
        "engine": {
            "answer": 20.0,
            "call_to_dispatch": 60.0,
            "turnout": 30.0,
            "travel": 170.0,
            "call_to_on_scene": 260.0,
            "on_scene": 640.0,
            "handling": 900.0,
        },
        "medic": {
            "answer": 20.0,
            "call_to_dispatch": 60.0,
            "turnout": 50.0,
            "travel": 250.0,
            "call_to_on_scene": 360.0,
            "on_scene": 300.0,
            "handling": 660.0,
        },
    }
    # workload: each unit busy from its dispatch to its own clear, in its dispatcher's area
    (area,) = kinds.workload
    assert area.station_area == "S1"  # the first unit dispatched is the engine of S1
    # measured against S1's roster (E1 alone), not the two units that came
    assert (area.responses, area.units, area.capacity, area.untimed) == (2, 1, "roster", 0)
    assert area.busy_hours == pytest.approx((840 + 600) / 3600)
    assert routed and [g.group["desk"] for g in by_desk.groups] == routed
    assert all(g.intervals["call_to_on_scene"].mean == 260.0 for g in by_desk.groups)
    (cell,) = by_cell.groups
    assert cell.group == {"h3": cell_of(51.5, 5.0, 8)}
