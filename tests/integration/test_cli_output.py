"""The command line's output files and standard output: where a command writes, what it
refuses, and that a path or a disk it cannot use ends in one line, never a traceback."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alarmdesk.safeguards.checkpoint import generate_key
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.integration.test_cli import run

pytestmark = pytest.mark.slow  # most tests run the command line as a process


def cli(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """The command line without --database-url (for commands that take none)."""
    return subprocess.run(
        [sys.executable, "-m", "alarmdesk.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,  # type: ignore[call-overload]
    )


def audit_entries(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(t.audit_entries)
            ).scalar_one()
    finally:
        engine.dispose()


def one_line_error(r: subprocess.CompletedProcess[str], code: int) -> str:
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


# --- audit export ---------------------------------------------------------------------


def test_audit_export_writes_the_file_a_symlink_names(url, tmp_path) -> None:
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target.name)
    r = run("audit", "export", "link.jsonl", "--justification", "probe-link", env_url=url)
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and os.readlink(link) == target.name
    first = json.loads(target.read_text().splitlines()[0])
    assert first["kind"] in ("entry", "erased")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


@pytest.mark.parametrize("kind", ["fifo", "folder", "missing folder"])
def test_audit_export_refuses_a_target_it_cannot_write_before_logging(url, tmp_path, kind) -> None:
    if kind == "fifo":
        target = tmp_path / "pipe.jsonl"
        os.mkfifo(target)
    elif kind == "folder":
        target = tmp_path / "a-folder"
        target.mkdir()
    else:
        target = tmp_path / "nonexist" / "dir" / "x.jsonl"
    before = audit_entries(url)
    r = run("audit", "export", str(target), "--justification", "probe one", env_url=url)
    assert str(target.name if kind != "missing folder" else target.parent) in one_line_error(r, 2)
    assert audit_entries(url) == before  # nothing logged, no checkpoint signed
    if kind == "fifo":
        assert target.is_fifo()
    elif kind == "folder":
        assert target.is_dir() and list(target.iterdir()) == []


def test_a_full_disk_while_exporting_is_one_line_and_exit_1(url, tmp_path, monkeypatch) -> None:
    from alarmdesk.cli import app

    target = tmp_path / "log.jsonl"
    target.write_text("kept\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    result = CliRunner().invoke(
        app,
        ["audit", "export", str(target), "--justification", "disk full", "--database-url", url],
    )
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "No space left on device" in result.output and str(target) in result.output
    assert target.read_text() == "kept\n"  # untouched, and no temporary file left beside it
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_short_justification_states_the_minimum(url) -> None:
    r = run("audit", "export", "x.jsonl", "--justification", "p", env_url=url)
    line = one_line_error(r, 2)
    assert "at least 5 characters" in line


def test_a_justification_with_control_characters_is_refused_before_it_is_logged(url) -> None:
    """It goes into the audit log as written: an ESC sequence or invisible characters only
    were taken (the API's rule now, one function)."""
    entries = audit_entries(url)
    for text in ("\x1b[31mreview\x1b[0m", "\u200b\u200b\u200b\u200b\u200b\u200b"):
        r = run("audit", "export", "x.jsonl", "--justification", text, env_url=url)
        one_line_error(r, 2)
    assert audit_entries(url) == entries


# --- audit verify ---------------------------------------------------------------------


def test_audit_verify_reports_a_line_literally(tmp_path) -> None:
    _, vkey = generate_key("probe")
    export = tmp_path / "log.jsonl"
    export.write_text('{"kind":"[/x]"}\n{"kind":"[bold]x[/bold]"}\n')
    r = cli("audit", "verify", str(export), "--pubkey", vkey)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "line 1: MALFORMED_LINE: unknown kind '[/x]'" in r.stderr
    assert "line 2: MALFORMED_LINE: unknown kind '[bold]x[/bold]'" in r.stderr


# --- other output files ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing folder", "folder"])
def test_transparency_report_refuses_an_output_it_cannot_write(url, tmp_path, kind) -> None:
    target = tmp_path / "nonexist" / "x.json" if kind == "missing folder" else tmp_path
    before = audit_entries(url)
    r = run("report", "transparency", "--period", "2026", "--out", str(target), env_url=url)
    one_line_error(r, 2)
    assert audit_entries(url) == before


def test_export_eido_refuses_a_folder_as_output(url, tmp_path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    r = run(
        "export", "eido", "1", "--recipient", "Fire Brigade West", "-o", str(folder), env_url=url
    )
    assert str(folder) in one_line_error(r, 2)


def test_config_export_into_a_file_is_bad_input(url, tmp_path) -> None:
    (tmp_path / "afile").write_text("x")
    r = run("config", "export", "afile", env_url=url)
    assert "afile" in one_line_error(r, 2)


# --- standard output ------------------------------------------------------------------


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_full_standard_output_is_one_line_and_exit_1() -> None:
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [sys.executable, "-m", "alarmdesk.cli", "config", "schema"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert "No space left on device" in one_line_error(r, 1)


def test_a_reader_that_stops_reading_ends_the_command_quietly() -> None:
    """`alarmdesk config schema | head -2`: no traceback, and no error either (as any Unix
    tool ends when its reader has gone)."""
    read, write = os.pipe()
    os.close(read)
    try:
        r = subprocess.run(
            [sys.executable, "-m", "alarmdesk.cli", "config", "schema"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert r.returncode == 1 and r.stderr == "", r.stderr


# --- configuration and the audit key file ---------------------------------------------


def test_a_config_file_that_is_not_utf8_is_bad_input(url, tmp_path) -> None:
    (tmp_path / "c.toml").write_bytes(b"\xff\xfe[database]\n")
    r = run("users", "list", "-c", "c.toml", env_url=url)
    assert "c.toml" in one_line_error(r, 2)


@pytest.mark.parametrize("kind", ["garbage", "empty", "folder"])
def test_a_broken_audit_key_file_is_named(url, tmp_path, kind) -> None:
    key = tmp_path / "audit.key"
    if kind == "folder":
        key.mkdir()
    else:
        key.write_text("garbage\n" if kind == "garbage" else "")
    (tmp_path / "cfg.toml").write_text(f'[audit]\nkey_file = "{key}"\n')
    assert str(key) in one_line_error(cli("audit", "pubkey", "-c", "cfg.toml"), 2)
    r = run(
        "audit", "export", "x.jsonl", "--justification", "probe key", "-c", "cfg.toml", env_url=url
    )
    assert str(key) in one_line_error(r, 2)
    assert not (tmp_path / "x.jsonl").exists()


def test_control_sequences_stored_before_the_input_rules_are_shown_escaped(url) -> None:
    """A silence's reason stored before new text was checked may hold an ESC sequence or a
    bidi override: printed raw, it recoloured the terminal or retitled its window."""
    added = run(
        "silences", "add", "--reason", "works", "--device", "panel-9",
        "--ends-at", (datetime.now(UTC) + timedelta(days=3)).isoformat(), env_url=url,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            spec = conn.execute(sa.select(t.silences.c.spec)).scalar_one()
            spec = {**spec, "reason": "\x1b]0;owned\x07\x1b[31mred\u202eevil"}
            conn.execute(t.silences.update().values(spec=spec))
    finally:
        engine.dispose()
    listed = cli("silences", "list", "--database-url", url, env={**os.environ, "COLUMNS": "300"})
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\u202e" not in listed.stdout
    assert "\\x1b]0;owned\\x07\\x1b[31mred\\u202eevil" in listed.stdout
