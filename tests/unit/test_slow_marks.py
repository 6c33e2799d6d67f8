"""Every test that starts a process or a server is marked ``slow``, so that
``pytest -m "not slow"`` runs the rest (docs/testing.md). tests/conftest.py marks the tests
that use a server fixture and refuses, while a test not marked slow runs, to start a process
or bind a server socket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# Tests known to start a server or a process, each by another route to the mark.
SERVER_TESTS = [
    # live_server: alarmdesk under uvicorn in a thread
    "tests/e2e/test_bad_input.py::test_a_bad_request_does_not_fail_the_good_ones_committed_with_it",
    "tests/e2e/test_stream.py::test_an_idle_stream_receives_heartbeats",
    # console and browser: a shared server and Chromium
    "tests/browser/test_console.py::test_sign_in_and_out",
    "tests/browser/test_console_pages.py::test_the_incident_stream_carries_only_that_incident",
    # servers: `alarmdesk serve` processes killed at random moments
    "tests/e2e/test_durability.py::test_a_server_killed_at_random_moments_keeps_every_acknowledged_signal_exactly_once",
    # private_broker, and `alarmdesk serve` as a process
    "tests/integration/test_mqtt.py::test_a_burst_survives_alarmdesk_being_killed_mid_burst_with_the_shipped_settings",
    # explicit marks: the command line as a process, mosquitto_sub, a DC-09 receiver on a port
    "tests/integration/test_cli.py::test_an_unknown_category_exits_with_2",
    "tests/integration/test_mqtt.py::test_frigate_offline_raises_an_equipment_incident_and_online_restores_it",
    "tests/integration/test_dc09_receiver.py::test_dc09_over_udp",
]
FAST_TESTS = [
    "tests/unit/test_pipeline.py::test_repeated_panel_alarm_updates_the_open_incident",
    "tests/browser/test_console_pages.py::test_every_console_route_names_a_permission_or_is_public",
    "tests/integration/test_mqtt.py::test_generic_topics_are_mapped_by_configuration",
]


def test_a_test_not_marked_slow_cannot_start_a_process() -> None:
    with pytest.raises(RuntimeError, match="not marked slow"):
        subprocess.run(["true"], check=False)


def test_a_test_not_marked_slow_cannot_open_a_server_socket() -> None:
    with socket.socket() as s, pytest.raises(RuntimeError, match="not marked slow"):
        s.bind(("127.0.0.1", 0))


def test_a_client_may_bind_its_source_address_as_mqtt_clients_do() -> None:
    with socket.socket() as s:
        s.bind(("", 0))


@pytest.mark.slow  # collects the suite in a pytest process of its own
def test_not_slow_deselects_every_test_that_starts_a_server_or_a_process() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not slow"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    ids = [line for line in listed.stdout.splitlines() if "::" in line]
    fast = {i.split("[")[0] for i in ids}
    assert set(FAST_TESTS) <= fast
    assert not set(SERVER_TESTS) & fast
    assert len(ids) > 900, "the rest still runs"
