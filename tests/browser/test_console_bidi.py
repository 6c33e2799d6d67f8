"""Text stored with a bidi override (U+202E, RIGHT-TO-LEFT OVERRIDE) stays in its own place on
the incident page: each piece of user text is isolated (``<bdi>``), so an override in an address
cannot run on into the site, the zone and the coordinates that follow it on the same line.

Intake now refuses such characters; the text is written into the store here, as text stored
before that was."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.browser.conftest import signal

RLO = "\u202e"
ADDRESS = f"{RLO}RTL-addr 12"
SITE = f"{RLO}RTL-site"
ZONE = f"{RLO}z9"
SUMMARY = f"{RLO}RTL-summary then more"

# For each element given: the text nodes holding an override that are not inside a <bdi> of
# it, and the coordinate spans inside one (the override's reach).
LEAKS = """(cells) => cells.map((cell) => {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  const bare = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const bdi = n.parentElement.closest("bdi");
    if (n.data.includes("\\u202e") && !(bdi && cell.contains(bdi))) bare.push(n.data);
  }
  const caught = [...cell.querySelectorAll(".mono")].filter((s) => s.closest("bdi")).length;
  return { bare, caught };
})"""

# For each element given: whether the coordinates are drawn left to right, as written (each
# character right of the one before it on the same line), rather than mirrored by an override
# before them; and how many such pairs were compared (the text may wrap).
ORDERED = """(cells) => cells.map((cell) => {
  const span = [...cell.querySelectorAll(".mono")].find((s) => /\\d,/.test(s.textContent));
  const text = span.firstChild;
  const box = (i) => {
    const r = document.createRange();
    r.setStart(text, i);
    r.setEnd(text, i + 1);
    return r.getBoundingClientRect();
  };
  let pairs = 0;
  let ordered = true;
  for (let i = 0; i + 1 < text.data.length; i++) {
    const a = box(i);
    const b = box(i + 1);
    if (Math.round(a.top) !== Math.round(b.top)) continue;  // wrapped between them
    pairs += 1;
    if (!(a.left < b.left)) ordered = false;
  }
  return { text: text.data, ordered, pairs };
})"""


def _plant(console: Any) -> int:
    """An incident whose stored location and summary carry overrides."""
    from alarmdesk.store import tables as t

    body = signal(address="plain address", summary="plain summary")
    r = console.post_signal(body)
    assert r.status_code in (200, 201, 202), r.text
    incident_id = int(r.json()["incident_id"])
    loc = {**body["location"], "address": ADDRESS, "site": SITE, "zone": ZONE}
    with console.services.engine.begin() as conn:
        conn.execute(
            sa.update(t.incidents)
            .where(t.incidents.c.id == incident_id)
            .values(location=loc, summary=SUMMARY)
        )
        conn.execute(
            sa.update(t.signals)
            .where(t.signals.c.incident_id == incident_id)
            .values(location=loc, summary=SUMMARY)
        )
    return incident_id


def test_an_override_in_stored_text_does_not_reach_the_text_after_it(console, sign_in) -> None:
    incident_id = _plant(console)
    desk = sign_in("westop")
    desk.goto(f"/incidents/{incident_id}")
    page = desk.page
    page.wait_for_selector("#panel")
    location = page.locator("dl.facts dt:text-is('Location') + dd")
    assert ADDRESS in location.inner_text()
    cells = page.locator("table.signals tbody td:nth-child(5)")
    assert cells.count() >= 1
    where = ["#panel dl.facts dt + dd", "table.signals tbody td"]
    for selector in where:
        for found in page.eval_on_selector_all(selector, LEAKS):
            assert found == {"bare": [], "caught": 0}, (selector, found)
    lines = [location.element_handle(), *cells.element_handles()]
    drawn = page.evaluate(ORDERED, lines)
    assert drawn and all(d["ordered"] and d["pairs"] >= 8 for d in drawn), drawn
    assert all(d["text"][0].isdigit() for d in drawn), drawn


def test_the_queue_isolates_each_piece_of_a_stored_location(console, sign_in) -> None:
    """The queue's location cell is built in a script (queue.js): each stored piece is put
    between FSI and PDI, so an override in the address reorders only the address."""
    incident_id = _plant(console)
    desk = sign_in("westop")
    desk.goto("/")
    page = desk.page
    cell = page.wait_for_selector(f"#queue-body tr[data-id='{incident_id}'] .c-loc")
    assert cell is not None
    text = cell.text_content() or ""
    assert f"\u2068{ADDRESS}\u2069" in text and f"\u2068{SITE}\u2069" in text, text
    assert f"zone \u2068{ZONE}\u2069" in text, text
