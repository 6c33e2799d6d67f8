"""Saved KPI reports over the API: a supervisor saves a report's options by name and runs it
again over its last days; names, descriptions and sources are purpose-screened (the refusal
is logged, nothing stored); bad input is a 4xx naming the field; runs are audited reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa

from alarmdesk.store import tables as t


def entries(live_server) -> list[dict]:
    with live_server.services.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.audit_entries.c.entry)
            .where(t.audit_entries.c.entry.is_not(None))
            .order_by(t.audit_entries.c.seq)
        ).scalars()
        return [json.loads(r) for r in rows]


def logged(live_server, rule: str) -> list[dict]:
    """The audit entries of a rule; "*": every entry about a saved report."""
    if rule == "*":
        return [e for e in entries(live_server) if e["object_type"] == "saved_report"]
    return [e for e in entries(live_server) if e["rule"] == rule]


def stored(live_server) -> list[str]:
    with live_server.services.engine.connect() as conn:
        return list(conn.execute(sa.select(t.saved_reports.c.name)).scalars())


def test_a_supervisor_saves_runs_lists_and_removes_a_report(live_server) -> None:
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
            ("dispatch", {"units": ["E1"]}),
            ("resolve", {"disposition": "handled"}),
        ]:
            assert op.post(f"/api/v1/incidents/{inc}/{action}", json=body).is_success
        assert op.get("/api/v1/reports/saved").status_code == 403
        assert op.put("/api/v1/reports/saved/mine", json={}).status_code == 403
    spec = {"description": "Engines, last week", "days": 7, "by": ["unit_kind", "h3"]}
    with live_server.client("supervisor") as sup:
        r = sup.put("/api/v1/reports/saved/engines-weekly", json=spec)
        assert r.status_code == 200, r.text
        saved = r.json()
        assert saved["name"] == "engines-weekly" and saved["spec"]["days"] == 7
        assert saved["spec"]["own"] is True and saved["saved_by"]
        (listed,) = sup.get("/api/v1/reports/saved").json()
        assert listed["spec"]["by"] == ["unit_kind", "h3"]
        report = sup.get("/api/v1/reports/saved/engines-weekly/kpi")
        assert report.status_code == 200, report.text
        body = report.json()
        assert body["saved"] == "engines-weekly" and body["calls"] == 1
        assert body["to"] == datetime.now(UTC).date().isoformat()
        (group,) = body["groups"]
        assert group["group"]["unit_kind"] == "engine" and group["group"]["h3"]
        # saving again under the name replaces it
        again = sup.put("/api/v1/reports/saved/engines-weekly", json={**spec, "days": 14})
        assert again.json()["spec"]["days"] == 14
        assert sup.delete("/api/v1/reports/saved/engines-weekly").status_code == 204
        assert sup.get("/api/v1/reports/saved/engines-weekly/kpi").status_code == 404
        assert sup.delete("/api/v1/reports/saved/engines-weekly").status_code == 404
    (run,) = [e for e in logged(live_server, "report.kpi") if e["detail"].get("saved")]
    assert run["op"] == "combine" and run["detail"]["saved"] == "engines-weekly"
    assert [e["rule"] for e in logged(live_server, "*")] == [
        "report.save",
        "report.save",
        "report.remove",
        "not_found",
    ]


def test_a_report_that_targets_rights_is_refused_and_the_refusal_logged(live_server) -> None:
    with live_server.client("supervisor") as sup:
        for name, body, field in [
            ("protest-activity", {}, "name"),
            ("weekly", {"description": "who joined the demonstration"}, "description"),
            ("weekly", {"own": False, "source": "union-meetings"}, "source"),
        ]:
            r = sup.put(f"/api/v1/reports/saved/{name}", json=body)
            assert r.status_code == 422, (name, body, r.text)
            assert r.json()["error"]["code"] == "protected_purpose", r.text
            assert r.json()["error"]["field"] == field, r.text
    assert stored(live_server) == []
    refusals = logged(live_server, "*")
    assert [e["outcome"] for e in refusals] == ["denied"] * 3
    assert refusals[0]["object_id"] == ""  # the refused name itself is not recorded


def test_bad_saved_reports_are_422_naming_the_field(live_server) -> None:
    with live_server.client("supervisor") as sup:
        for name, body, field in [
            ("Weekly Report", {}, "name"),
            ("x" * 65, {}, "name"),
            ("weekly", {"days": 0}, "days"),
            ("weekly", {"days": 100000}, "days"),
            ("weekly", {"by": ["desk_colour"]}, "by"),
            ("weekly", {"timezone": "Mars/Olympus"}, "timezone"),
            ("weekly", {"resolution": 15}, "resolution"),
            ("weekly", {"description": "nul\x00byte"}, "description"),
            ("weekly", {"description": "<script>x</script>" * 40}, "description"),
            ("weekly", {"own": True, "source": "old-cad"}, "source"),
            ("weekly", {"target_seconds": -1}, "target_seconds"),
        ]:
            r = sup.put(f"/api/v1/reports/saved/{name}", json=body)
            assert r.status_code == 422, (name, body, r.text)
            assert r.json()["error"]["field"] == field, (name, body, r.text)
        r = sup.put("/api/v1/reports/saved/weekly", json={"colour": "red"})
        assert r.status_code in (400, 422), r.text
        assert sup.get("/api/v1/reports/saved/nul%00byte/kpi").status_code == 404
    assert stored(live_server) == []
