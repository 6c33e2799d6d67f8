"""The video verdict is stored on SQLite and PostgreSQL (migration 0012): read back by the API,
and by the writer's restore of unfinished incidents."""

from __future__ import annotations

from datetime import UTC, datetime

from alarmdesk.store import repository as repo
from tests.integration.test_web_actions import Web, web  # noqa: F401 (the fixture)


def test_a_verdict_is_stored_and_restored_with_the_incident(web: Web) -> None:  # noqa: F811
    r = web.client.post(
        "/api/v1/signals",
        json={
            "source_kind": "equipment",
            "source_id": "panel-1234AB",
            "type_code": "BURG",
            "occurred_at": datetime.now(UTC).isoformat(),
            "location": {"lat": 50.0, "lon": 5.0, "zone": "3"},
        },
        headers=web.as_("intake"),
    )
    assert r.status_code == 202, r.text
    inc = r.json()["incident_id"]
    r = web.client.post(
        f"/api/v1/incidents/{inc}/verify",
        json={"verdict": "verified", "note": "seen at the back door"},
        headers=web.as_("operator"),
    )
    assert r.status_code == 200, r.text
    with web.svc.engine.connect() as conn:
        stored = repo.get_incident(conn, inc)
        restored = {i.id: i for i in repo.load_unfinished_incidents(conn)}[inc]
    assert stored is not None and stored["confirmed"] is True
    assert stored["verification"]["verdict"] == "verified"
    assert stored["verification"]["by"] == "operator"
    assert restored.verification == stored["verification"] and restored.confirmed
    assert [e["type"] for e in stored["timeline"]][-1] == "incident.verified"
