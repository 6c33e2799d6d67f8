"""Every access leaves a trace: reads, searches, changes, intake, sign-ins and denials append
entries to the Merkle-tree log, which an outsider verifies from an export."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from alarmdesk.safeguards.auditlog_file import verify_export
from alarmdesk.store import accounts
from alarmdesk.store import tables as t
from alarmdesk.store.audit import export_lines
from tests.conftest import TEST_PASSWORD


def entries(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t.audit_entries.c.entry).order_by(t.audit_entries.c.seq))
        return [json.loads(r.entry) for r in rows]


def signal(key: str) -> dict:
    return {
        "source_kind": "call",
        "source_id": "ct",
        "type_code": "FSTRU",
        "occurred_at": datetime.now(UTC).isoformat(),
        "idempotency_key": key,
        "location": {"lat": 50.0, "lon": -5.0},
        "summary": "SECRET CONTENT",
    }


def test_intake_reads_changes_and_denials_are_all_in_the_audit_log(live_server) -> None:
    inc = live_server.post_signal(signal("k1")).json()["incident_id"]
    with live_server.client("operator") as op:
        assert op.get(f"/api/v1/incidents/{inc}").status_code == 200
        assert op.post(f"/api/v1/incidents/{inc}/acknowledge").status_code == 200
        assert op.post(f"/api/v1/incidents/{inc}/acknowledge").status_code == 409
        r = op.get(
            "/api/v1/incidents", params={"status": "closed", "justification": "case 17 review"}
        )
        assert r.status_code == 200
    with live_server.client("intake") as machine:
        assert machine.get("/api/v1/incidents").status_code == 403
    log = entries(live_server.services.engine)
    ops = [(e["op"], e["object_type"], e["object_id"], e["outcome"]) for e in log]
    assert ("collect", "signal", "1-1", "allowed") in ops
    assert ("consult", "incident", str(inc), "allowed") in ops
    assert ("alter", "incident", str(inc), "allowed") in ops
    assert ("alter", "incident", str(inc), "denied") in ops
    assert ("consult", "route", "GET /api/v1/incidents", "denied") in ops
    search = next(e for e in log if e["object_type"] == "incidents")
    assert search["justification"] == "case 17 review"
    assert search["role"] == "operator" and search["credential"]
    denied = next(e for e in log if e["outcome"] == "denied" and e["op"] == "alter")
    assert denied["rule"] == "invalid_transition"
    assert "SECRET CONTENT" not in json.dumps(log), "entries never hold incident content"


def test_a_search_beyond_the_live_queue_needs_a_justification(live_server) -> None:
    with live_server.client("operator") as op:
        r = op.get("/api/v1/incidents", params={"status": "closed"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "justification_required"
        r = op.get("/api/v1/incidents")
        assert r.status_code == 400
        assert (
            op.get("/api/v1/incidents", params={"status": ["new", "dispatched"]}).status_code == 200
        )


def test_sign_ins_and_failed_sign_ins_are_logged(live_server) -> None:
    with live_server.services.engine.begin() as conn:
        accounts.create_user(conn, "olga", TEST_PASSWORD, "operator", ["west"], datetime.now(UTC))
    with httpx.Client(base_url=live_server.url) as c:
        c.post("/api/v1/session", json={"name": "olga", "password": "wrong password"})
        c.post("/api/v1/session", json={"name": "olga", "password": TEST_PASSWORD})
    auth = [e for e in entries(live_server.services.engine) if e["op"] == "authenticate"]
    assert [e["outcome"] for e in auth] == ["denied", "allowed"]
    assert "wrong password" not in json.dumps(auth)


def test_the_exported_log_verifies_with_the_published_key(live_server, tmp_path) -> None:
    for i in range(5):
        live_server.post_signal(signal(f"k{i}"))
    engine = live_server.services.engine
    chain = live_server.services.writer.audit
    assert chain is not None
    with engine.begin() as conn:
        chain.checkpoint(conn, datetime.now(UTC))
    with engine.connect() as conn:
        lines = [json.dumps(x) for x in export_lines(conn)]
    report = verify_export(lines, chain.signer.vkey)
    assert report.ok, report.problems
    assert report.entries == 5 and report.last_verified_size == 5
    tampered = [x.replace('"collect"', '"consult"', 1) for x in lines]
    assert not verify_export(tampered, chain.signer.vkey).ok


def test_only_an_auditor_reads_the_log_with_a_reason_and_the_read_is_logged(live_server) -> None:
    live_server.post_signal(signal("k1"))
    with live_server.client("operator") as op:
        assert (
            op.get("/api/v1/audit/export", params={"justification": "curious"}).status_code == 403
        )
    with live_server.client("auditor") as auditor:
        r = auditor.get("/api/v1/audit/export")
        assert r.status_code == 400 and r.json()["error"]["code"] == "justification_required"
        r = auditor.get("/api/v1/audit/export", params={"justification": "annual audit 2026"})
        assert r.status_code == 200
        vkey = httpx.get(live_server.url + "/api/v1/audit/pubkey").json()["vkey"]
    lines = r.text.splitlines()
    exported = [json.loads(x) for x in lines]
    assert any(x.get("entry", {}).get("op") == "export" for x in exported)
    chain = live_server.services.writer.audit
    assert chain is not None and vkey == chain.signer.vkey
    report = verify_export(lines, vkey)
    assert not report.problems, report.problems  # unanchored tail entries are notes, not faults


def test_special_category_keys_never_reach_the_store_from_any_source(live_server) -> None:
    body = {
        **signal("m1"),
        "payload": {
            "label": "person",
            "face_id": "John Smith",
            "attributes": {"ethnicity": "x", "colour": "red"},
        },
    }
    assert live_server.post_signal(body).status_code == 202
    with live_server.services.engine.connect() as conn:
        stored = conn.execute(sa.select(t.signals.c.payload)).scalar_one()
    assert stored == {"label": "person", "attributes": {"colour": "red"}}
    assert live_server.services.writer.minimised == 2
