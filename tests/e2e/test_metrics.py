"""Probes and metrics: /healthz and /readyz say what a load balancer needs, /metrics what
Prometheus scrapes — counts and durations of this process, never incident data."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

SECRET = "<b>caller named Jansen at Kerkstraat 5</b>"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(url + "/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert SECRET not in r.text and "Jansen" not in r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_probes_answer_and_readiness_names_each_part(live_server) -> None:
    alive = httpx.get(live_server.url + "/healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "ok", "writer": True}
    ready = httpx.get(live_server.url + "/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ready" and body["store"] and body["bus"] and body["writer"]
    assert body["backlog"] == 0 and body["backlog_limit"] == 10_000
    assert body["role"] is None  # one machine: no writer lease, no standby
    assert httpx.get(live_server.url + "/readyz?role=writer").status_code == 200
    bad = httpx.get(live_server.url + "/readyz?role=<b>x</b>")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_value"


def test_readiness_fails_while_the_database_does_not_answer(live_server) -> None:
    svc = live_server.services
    kept = svc.engine
    svc.engine = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none")  # nothing there
    try:
        r = httpx.get(live_server.url + "/readyz", timeout=10)
    finally:
        svc.engine.dispose()
        svc.engine = kept
    assert r.status_code == 503, r.text
    assert r.json()["status"] == "not_ready" and r.json()["store"] is False
    assert httpx.get(live_server.url + "/readyz").status_code == 200


def test_metrics_count_what_the_writer_committed(live_server) -> None:
    before = scrape(live_server.url)
    for n in range(3):
        r = live_server.post_signal(
            {
                "source_kind": "call",
                "source_id": "ct-1",
                "type_code": "FSTRU",
                "occurred_at": datetime.now(UTC).isoformat(),
                "location": {"lat": 51.5, "lon": -0.1 + n},
                "summary": SECRET,
                "idempotency_key": f"m-{n}",
            }
        )
        assert r.status_code == 202, r.text
    again = live_server.post_signal(  # the same key, other content: refused by the writer
        {
            "source_kind": "call",
            "source_id": "ct-1",
            "type_code": "FSTRU",
            "occurred_at": datetime.now(UTC).isoformat(),
            "summary": "other",
            "idempotency_key": "m-0",
        }
    )
    assert again.status_code == 409, again.text
    after = scrape(live_server.url)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("alarmdesk_signals_total", source="call", outcome="stored") == 3
    assert grew("alarmdesk_signals_total", source="call", outcome="idempotency_key_reused") == 1
    assert grew("alarmdesk_commit_batch_signals_count") >= 3  # one transaction per request here
    assert grew("alarmdesk_commit_batch_signals_sum") == 3
    assert grew("alarmdesk_commit_seconds_count") >= 3
    assert grew("alarmdesk_pipeline_lag_seconds_count") >= 4
    assert after[("alarmdesk_writer_up", ())] == 1
    assert after[("alarmdesk_pipeline_backlog", ())] == 0
    assert after[("alarmdesk_sse_clients", ())] == 0
    assert ("alarmdesk_audit_checkpoints", ()) in after


def test_metrics_can_be_turned_off(live_server) -> None:
    live_server.services.config.metrics.enabled = False
    try:
        r = httpx.get(live_server.url + "/metrics")
    finally:
        live_server.services.config.metrics.enabled = True
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
