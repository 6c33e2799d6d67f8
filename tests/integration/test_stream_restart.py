"""A server started over stored events: the live stream goes on after the newest of them.

The hub counted only what it offered since the process started, so until the first commit
after a restart its newest id was 0: a console opened then (the queue, the map, an incident's
page) asked its stream for everything after event 0, and the replay sent the whole events
table to a page that had just read the present state. The hub now starts after the newest
stored event (``Services.hub_after_stored``), on a writer as on a standby.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from litestar.testing import TestClient

from alarmdesk.bootstrap import build_services
from alarmdesk.store import tables as t
from alarmdesk.web.app import create_app
from tests.conftest import create_test_tokens, prepare_database
from tests.conftest import test_config as config_for


def signal(n: int) -> dict[str, object]:
    return {
        "source_kind": "equipment",
        "source_id": f"restart-{n}",
        "type_code": "ALRF",
        "occurred_at": datetime.now(UTC).isoformat(),
        "summary": f"Fire alarm {n} <b>zone</b>",
        "location": {"zone": "1"},
        "idempotency_key": f"restart-{n}",
    }


def test_after_a_restart_consoles_continue_after_the_stored_events(sqlite_url: str) -> None:
    prepare_database(sqlite_url)
    tokens = create_test_tokens(sqlite_url)
    intake = {"Authorization": f"Bearer {tokens['intake']}"}
    operator = {"Authorization": f"Bearer {tokens['operator']}"}
    before = build_services(config_for(sqlite_url))
    with TestClient(create_app(svc=before)) as client:
        for n in range(5):
            assert client.post("/api/v1/signals", json=signal(n), headers=intake).status_code == 202
    with before.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(t.events.c.id))).scalar_one()
        incident_id = conn.execute(sa.select(sa.func.min(t.incidents.c.id))).scalar_one()
    before.engine.dispose()
    assert newest >= 5

    after = build_services(config_for(sqlite_url))  # the restart: nothing committed since
    with TestClient(create_app(svc=after)) as client:
        assert after.hub.last_id == newest
        page = client.get(f"/incidents/{incident_id}", headers=operator)
        assert page.status_code == 200
        assert f"last_event_id={newest}" in page.text  # its stream replays nothing stored
        # the first commit after the restart follows on: no hole, no stream ended for it
        sub = after.hub.subscribe()
        assert client.post("/api/v1/signals", json=signal(9), headers=intake).status_code == 202
        assert not sub.dropped and after.hub.last_id > newest
    after.engine.dispose()
