"""The live queue never hides an open incident: ordered on the server (priority, waiting
before taken, oldest first), paged beyond a first page, counted in the database; updated row
by row from the stream. A server of its own with 2,000 open incidents."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.browser.conftest import VIEWPORT, wait_until
from tests.conftest import TEST_PASSWORD

pytestmark = pytest.mark.slow

OPEN_INCIDENTS = 2000


def boot_of(html: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="boot">(.*?)</script>', html, re.S)
    assert m, html[:500]
    return json.loads(m.group(1))


def crowd(n: int, *, tag: str, p1_every: int = 3) -> list[dict[str, Any]]:
    """n call signals far apart (each opens an incident): every p1_every-th a P1 fire."""
    signals = []
    for i in range(n):
        lon = -9.9 + 0.2 * (i % 49)
        lat = 40.1 + 0.2 * (i // 49) % 99
        signals.append(
            {
                "source_kind": "call",
                "source_id": "queue-test",
                "type_code": "FSTRU" if i % p1_every == 0 else "BURGLARY",
                "occurred_at": datetime.now(UTC).isoformat(),
                "idempotency_key": f"q-{tag}-{i}-{os.getpid()}",
                "location": {"lat": lat, "lon": lon, "address": f"{i} Queue Street"},
            }
        )
    return signals


@pytest.fixture
def crowded(live_server) -> tuple[Any, list[int]]:
    """2,000 open incidents of the west desk, the oldest first in ``ids``; one operator."""
    from alarmdesk.store import accounts

    with live_server.services.engine.begin() as conn:
        accounts.create_user(conn, "qop", TEST_PASSWORD, "operator", ["west"], datetime.now(UTC))
    ids: list[int] = []
    signals = crowd(OPEN_INCIDENTS, tag="crowd")
    with live_server.client("intake", timeout=60) as c:
        for start in range(0, len(signals), 1000):
            r = c.post("/api/v1/signals/batch", json={"signals": signals[start : start + 1000]})
            assert r.status_code in (200, 201, 202), r.text[:500]
            body = r.json()
            receipts = body["receipts"] if isinstance(body, dict) else body
            ids += [x["incident_id"] for x in receipts]
    assert len(set(ids)) == OPEN_INCIDENTS, "each signal opened an incident of its own"
    return live_server, ids


def db_counts(server) -> dict[str, int]:
    from alarmdesk.service.console_queries import queue_counts
    from alarmdesk.service.queries import IncidentFilter

    c = queue_counts(
        server.services.engine,
        IncidentFilter(statuses=("new", "acknowledged", "dispatched", "on_scene"), desks=("west",)),
    )
    return {"total": c.total, "waiting": c.waiting, "p1": c.p1, "p1_waiting": c.p1_waiting}


def test_the_queue_shows_the_oldest_waiting_p1_first_and_counts_in_the_database(crowded) -> None:
    from tests.browser.test_console_pages import signed_in

    server, ids = crowded
    oldest_p1 = ids[0]
    with signed_in(server.url, "qop") as c:
        boot = boot_of(c.get("/").text)
        items = boot["items"]
        assert items[0]["id"] == oldest_p1, "the oldest waiting P1 is the first row"
        keys = [(i["priority"], i["status"] != "new", i["opened_at"], i["id"]) for i in items]
        assert keys == sorted(keys)
        assert boot["counts"] == db_counts(server)
        assert boot["counts"]["total"] >= OPEN_INCIDENTS
        assert boot["next"], "more than one page: a cursor to the next"
        # Every open incident is reachable, each once, page after page.
        seen = [i["id"] for i in items]
        cursor = boot["next"]
        while cursor:
            r = c.get(
                "/queue/items", params={"after": cursor}, headers={"Accept": "application/json"}
            )
            assert r.status_code == 200, r.text[:300]
            page = r.json()
            seen += [i["id"] for i in page["items"]]
            cursor = page["next"]
        assert len(seen) == len(set(seen)) == boot["counts"]["total"]
        assert set(ids) <= set(seen)
        r = c.get("/queue/counts", headers={"Accept": "application/json"})
        assert r.json() == db_counts(server)
        # A cursor the server never gave is a 4xx with a code, never a 500.
        r = c.get(
            "/queue/items",
            params={"after": "bm90LWEtY3Vyc29y"},
            headers={"Accept": "application/json"},
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor"


def test_in_the_browser_the_oldest_p1_is_visible_and_the_banner_counts_them_all(
    browser, crowded
) -> None:
    server, ids = crowded
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(10000)
    try:
        page = context.new_page()
        page.goto(server.url + "/login")
        page.fill("input[name=name]", "qop")
        page.fill("input[name=password]", TEST_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("#live[data-state='live']")
        first = page.locator("#queue-body tr").first
        assert first.get_attribute("data-id") == str(ids[0])
        assert first.is_visible()
        counts = db_counts(server)
        banner = page.locator("#p1-banner")
        assert banner.is_visible()
        assert banner.get_attribute("data-count") == str(counts["p1_waiting"])
        assert str(counts["p1_waiting"]) in banner.inner_text()
        assert str(counts["total"]) in page.inner_text("#queue-counts")
        # The rest is reachable: "Show more" pages in the next incidents.
        before = page.locator("#queue-body tr").count()
        assert before < counts["total"]
        page.click("#queue-more")
        wait_until(page, f"document.querySelectorAll('#queue-body tr').length > {before}")
        # Incremental updates: an event for another incident leaves this row the same node.
        page.evaluate(
            f"window.__row = document.querySelector(\"#queue-body tr[data-id='{ids[0]}']\");"
            "window.__cells = [...document.querySelectorAll('#queue-body td.c-type')];"
        )
        far = {**crowd(1, tag="late")[0], "location": {"lat": 59.95, "lon": -0.05}}
        late = server.post_signal(far).json()["incident_id"]
        with server.client("operator") as op:
            assert op.post(f"/api/v1/incidents/{ids[3]}/acknowledge", json={}).is_success
        page.wait_for_selector(f"#queue-body tr[data-id='{ids[3]}'][data-status='acknowledged']")
        same = page.evaluate(
            f"window.__row === document.querySelector(\"#queue-body tr[data-id='{ids[0]}']\")"
        )
        assert same, "an unrelated event must not rebuild the row"
        kept = page.evaluate(
            "window.__cells.filter((td) => td.isConnected && td.closest('tr').dataset.id !=="
            f" '{ids[3]}').length"
        )
        assert kept == page.evaluate("window.__cells.length") - 1, "other rows are not redrawn"
        p1_waiting = db_counts(server)["p1_waiting"]
        page.wait_for_selector(f"#p1-banner[data-count='{p1_waiting}']")
        assert late
    finally:
        context.close()
