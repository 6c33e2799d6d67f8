"""``alarmdesk report saved``: save, list, run and remove a report by name from the command
line; a name that targets people exercising rights exits 3 and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from alarmdesk.store import tables as t
from tests.integration import test_history_import as imports
from tests.integration.test_history_import import cli, import_week, said

cfg = imports.cfg  # the fixtures: a migrated database of each kind, and its engine
engine = imports.engine


def names(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(t.saved_reports.c.name)).scalars())


def test_save_list_run_and_remove(cfg, engine, tmp_path: Path) -> None:
    import_week(cfg, engine)
    args = ("report", "saved", "save", "sf-areas", "--days", "3660", "--source", "sf")
    saved = cli(cfg, tmp_path, *args, "--by", "station_area", "--description", "SF by area")
    assert saved.exit_code == 0, saved.output
    listed = cli(cfg, tmp_path, "report", "saved", "list")
    assert listed.exit_code == 0 and "sf-areas" in said(listed) and "SF by area" in said(listed)
    ran = cli(cfg, tmp_path, "report", "saved", "run", "sf-areas", "--format", "json")
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.output)
    assert report["saved"] == "sf-areas" and report["source"] == "sf"
    assert report["calls"] == imports.WEEK_CALLS and report["by"] == ["station_area"]
    assert cli(cfg, tmp_path, "report", "saved", "remove", "sf-areas").exit_code == 0
    gone = cli(cfg, tmp_path, "report", "saved", "run", "sf-areas")
    assert gone.exit_code == 2 and "not_found" in said(gone)
    assert cli(cfg, tmp_path, "report", "saved", "remove", "sf-areas").exit_code == 2


def test_a_protected_or_bad_saved_report_is_refused(cfg, engine, tmp_path: Path) -> None:
    refused = cli(cfg, tmp_path, "report", "saved", "save", "rally-attendance")
    assert refused.exit_code == 3, refused.output
    assert "protected_purpose" in said(refused)
    bad = cli(cfg, tmp_path, "report", "saved", "save", "weekly", "--by", "colour")
    assert bad.exit_code == 2 and "invalid_value" in said(bad)
    assert names(engine) == []
