"""The same bad input gets the same answer on SQLite and on PostgreSQL: a NUL where the text
rule was not applied was stored by SQLite and a 500 from PostgreSQL (which refuses NUL in
text and JSON), so a set-up exported from SQLite could not be applied to PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import LiveServer, serve_live

pytestmark = pytest.mark.slow  # a server over each store

SQUARE = [[[5.0, 52.0], [5.2, 52.0], [5.2, 52.2], [5.0, 52.0]]]


@pytest.fixture
def server(db_url: str) -> Iterator[LiveServer]:
    with serve_live(db_url) as live:
        yield live


@pytest.mark.parametrize(
    "area",
    [
        {"type": "Polygon", "coordinates": SQUARE, "x": "\u0000"},
        {"type": "Polygon", "coordinates": SQUARE, "k\u0000": 1},
        {"type": "Polygon", "coordinates": SQUARE, "bbox": ["\u0000"]},
        {"type": "Polygon", "coordinates": SQUARE, "note": "a\u202eb"},
    ],
)
def test_a_control_character_in_an_area_is_refused_on_both_stores(server, area) -> None:
    ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    silence = {"match": {"devices": ["devq*"], "area": area}, "reason": "works", "ends_at": ends}
    with server.client("supervisor") as sup:
        r = sup.post("/api/v1/silences", json=silence)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "invalid_value"
    desk = {"name": "Zed", "jurisdiction": area}
    with server.client("admin") as admin:
        r = admin.put("/api/v1/setup/desks/dz", json=desk)
        assert r.status_code == 422, r.text
        assert "dz" not in [d["id"] for d in admin.get("/api/v1/desks").json()]


def test_a_nul_in_a_path_is_a_client_error_on_both_stores(server) -> None:
    with server.client("supervisor") as sup:
        approve = sup.post("/api/v1/incident-types/FSTRU%00/approve", json={})
        assert approve.status_code == 422, approve.text
        assert approve.json()["error"]["field"] == "code"
    with server.client("supervisor") as anyone:  # public: no credentials needed
        assert anyone.get("/api/v1/cap/alerts/x%00.xml").status_code == 404
