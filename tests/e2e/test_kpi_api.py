"""The response-time KPIs over the API: supervisors only, of alarmdesk's own incidents or of
an import, bad options refused with the option named, each reading logged."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
import sqlalchemy as sa

from alarmdesk.store import tables as t
from tests.conftest import serve_live
from tests.conftest import test_config as config_for


def test_a_supervisor_reads_the_kpis_of_the_centre_s_own_incidents(live_server) -> None:
    today = datetime.now(UTC).date().isoformat()
    signal = {
        "source_kind": "call",
        "source_id": "ct-1",
        "type_code": "FSTRU",
        "occurred_at": datetime.now(UTC).isoformat(),
        "location": {"lat": 51.5, "lon": -0.1},
        "summary": "smoke",
    }
    inc = live_server.post_signal(signal).json()["incident_id"]
    with live_server.client("operator") as op:
        for action, body in [
            ("acknowledge", {}),
            ("dispatch", {"units": ["E1"]}),
            ("resolve", {"disposition": "handled"}),
        ]:
            r = op.post(f"/api/v1/incidents/{inc}/{action}", json=body)
            assert r.is_success, r.text
        assert op.get(f"/api/v1/reports/kpi?from={today}&to={today}&own=true").status_code == 403
    url = f"/api/v1/reports/kpi?from={today}&to={today}&own=true&by=unit_kind"
    with live_server.client("supervisor") as sup:
        report = sup.get(url)
        assert report.status_code == 200, report.text
        body = report.json()
        assert body["own"] is True and body["calls"] == 1
        (group,) = body["groups"]
        assert group["group"] == {"unit_kind": "engine"}
        assert group["intervals"]["call_to_dispatch"]["count"] == 1
        assert group["intervals"]["travel"]["missing"] == 1  # no unit reported en route
        for bad, field in [
            ("&by=desk_colour", "by"),
            ("&source=old-cad", "source"),  # --own and --source exclude each other
            ("&period=fortnight", "period"),
        ]:
            r = sup.get(url + bad)
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["error"]["field"] == field
        for span in (f"from={today}&to=2020-01-01", "from=2026-01-01&to=9999-12-31"):
            r = sup.get(f"/api/v1/reports/kpi?{span}")
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_date", r.text
    with live_server.services.engine.connect() as conn:
        logged = [
            json.loads(r.entry)
            for r in conn.execute(sa.select(t.audit_entries.c.entry))
            if '"report.kpi"' in r.entry
        ]
    assert logged and logged[0]["op"] == "combine" and logged[0]["detail"]["own"] is True


def test_the_api_answers_while_a_report_waits_on_the_analytics_store(live_server) -> None:
    """The report runs in a worker thread: while it waits (here on the analytics store's
    lock, held by the test as an export would hold it), the event loop serves the rest."""
    today = datetime.now(UTC).date().isoformat()
    url = f"/api/v1/reports/kpi?from={today}&to={today}&own=true"
    answers: list[int] = []
    with live_server.client("supervisor", timeout=30) as sup:
        with live_server.services.analytics.lock():
            waiting = threading.Thread(target=lambda: answers.append(sup.get(url).status_code))
            waiting.start()
            time.sleep(0.5)  # the report has started and waits
            for _ in range(5):
                began = time.monotonic()
                health = httpx.get(live_server.url + "/api/v1/health", timeout=5)
                assert health.status_code == 200
                assert time.monotonic() - began < 1.0
            assert waiting.is_alive() and not answers  # still waiting on the store
        waiting.join(timeout=30)
    assert answers == [200]


@pytest.mark.slow
def test_a_running_server_exports_finished_incidents_on_its_own(sqlite_url) -> None:
    cfg = config_for(sqlite_url)
    cfg.analytics.export_minutes = 0.01  # every 0.6 s
    with serve_live(sqlite_url, cfg) as live:
        signal = {
            "source_kind": "call",
            "source_id": "ct-1",
            "type_code": "FSTRU",
            "occurred_at": datetime.now(UTC).isoformat(),
            "location": {"lat": 51.5, "lon": -0.1},
            "summary": "smoke",
        }
        inc = live.post_signal(signal).json()["incident_id"]
        with live.client("operator") as op:
            r = op.post(f"/api/v1/incidents/{inc}/resolve", json={"disposition": "handled"})
            assert r.is_success, r.text
        store = live.services.analytics
        deadline = time.monotonic() + 10
        while store.manifest().calls == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.manifest().calls == 1
