"""The console's queue reads on SQLite and PostgreSQL: the order (priority, waiting first,
oldest first), keyset pages that cover every match once, counts from the database."""

from __future__ import annotations

import asyncio

import pytest

from alarmdesk.domain import commands as c
from alarmdesk.domain.errors import InvalidField
from alarmdesk.domain.signal import SourceKind
from alarmdesk.service.console_queries import queue_counts, queue_page
from alarmdesk.service.queries import IncidentFilter
from alarmdesk.store import repository as repo
from tests.integration.test_writer import signal

OPEN = IncidentFilter(statuses=("new", "acknowledged", "dispatched", "on_scene"))


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def test_pages_follow_the_queue_order_and_cover_every_open_incident(
    db_url, services_factory, loop, clock
) -> None:
    svc = services_factory(db_url, loop=loop, clock=clock)
    made = []
    for n in range(13):
        code = "FSTRU" if n % 2 == 0 else "BURGLARY"  # P1 and P2
        # Two signals in one commit share their received time: the id breaks the tie.
        batch = [
            signal(f"q{n}a", code=code, lon=-9 + n * 0.5),
            signal(f"q{n}b", code=code, lon=5 + n * 0.3),
        ]
        made += loop.run_until_complete(svc.writer.submit_signals(batch))
        clock.advance(seconds=30)
    ids = [r.incident_id for r in made]
    for taken in ids[3::5]:  # some are taken: they follow the waiting ones of their priority
        loop.run_until_complete(svc.writer.submit_command(c.Acknowledge(taken, "op")))
    loop.run_until_complete(svc.writer.submit_command(c.Cancel(ids[1], "op", reason="duplicate")))

    seen: list[dict] = []
    cursor = None
    while True:
        page = queue_page(svc.engine, OPEN, limit=4, after=cursor)
        assert len(page.items) <= 4
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    keys = [(i["priority"], i["status"] != "new", i["opened_at"], i["id"]) for i in seen]
    assert keys == sorted(keys)
    assert len({i["id"] for i in seen}) == len(seen) == len(ids) - 1  # not the cancelled one
    assert seen[0]["id"] == ids[0], "the oldest waiting P1 first"
    counts = queue_counts(svc.engine, OPEN)
    assert counts.total == len(seen)
    assert counts.waiting == sum(i["status"] == "new" for i in seen)
    assert counts.p1 == sum(i["priority"] == 1 for i in seen)
    assert counts.p1_waiting == sum(i["priority"] == 1 and i["status"] == "new" for i in seen)
    assert queue_counts(svc.engine, IncidentFilter(statuses=("new",), priorities=(1,))).total == (
        counts.p1_waiting
    )


@pytest.mark.parametrize("cursor", ["x", "bm90LWEtY3Vyc29y", "WzEsIDAsICIyMDI2LTExLTI1IiwgM10"])
def test_a_cursor_the_server_never_gave_is_refused(db_url, services_factory, loop, cursor) -> None:
    svc = services_factory(db_url, loop=loop)
    with pytest.raises(InvalidField) as caught:
        queue_page(svc.engine, OPEN, limit=5, after=cursor)
    assert caught.value.code == "invalid_cursor"


def test_a_desk_filter_takes_each_incident_once_whatever_desks_heard_it(
    db_url, services_factory, loop
) -> None:
    """An operator's queue of several desks: an equipment alarm in the west is heard by
    both the west desk and the alarm desk and shows once; the queue's counts, its pages and
    the incident list agree on who heard what."""
    svc = services_factory(db_url, loop=loop)
    run = loop.run_until_complete
    made: dict[str, int] = {}
    for key, lon, kind in [
        ("w1", -5.0, SourceKind.CALL),
        ("w2", -4.0, SourceKind.CALL),
        ("e1", 5.0, SourceKind.CALL),
        ("wa1", -6.0, SourceKind.EQUIPMENT),  # west and alarms
        ("wa2", -3.0, SourceKind.EQUIPMENT),
        ("ea1", 6.0, SourceKind.EQUIPMENT),  # east and alarms
    ]:
        (r,) = run(svc.writer.submit_signals([signal(key, lon=lon, kind=kind, source=key)]))
        assert r.incident_id is not None
        made[key] = r.incident_id
    run(svc.writer.submit_command(c.Cancel(made["w2"], "op", reason="duplicate")))

    def queue(*desks: str) -> list[int]:
        flt = IncidentFilter(statuses=OPEN.statuses, desks=desks)
        ids, cursor = [], None
        while True:
            page = queue_page(svc.engine, flt, limit=2, after=cursor)
            ids += [i["id"] for i in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert queue_counts(svc.engine, flt).total == len(ids)
        return sorted(ids)

    def listed(*desks: str) -> list[int]:
        with svc.engine.connect() as conn:
            items, _ = repo.list_incidents(
                conn, IncidentFilter(desks=desks), limit=50, before_id=None
            )
        return sorted(i["id"] for i in items)

    def ids(*keys: str) -> list[int]:
        return sorted(made[k] for k in keys)

    assert queue("alarms") == ids("wa1", "wa2", "ea1")
    assert queue("west") == ids("w1", "wa1", "wa2")
    assert queue("west", "alarms") == ids("w1", "wa1", "wa2", "ea1")
    assert queue("west", "east", "alarms") == ids("w1", "e1", "wa1", "wa2", "ea1")
    assert listed("west", "alarms") == ids("w1", "w2", "wa1", "wa2", "ea1")  # cancelled too
    assert queue("nobody") == []
