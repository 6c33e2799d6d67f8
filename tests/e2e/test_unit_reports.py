"""Units report their status and position: the incident's timeline and the unit's status move
together (dispatched → en route → on scene → returning → available), refused moves are 409,
the position is stored and never audited."""

from __future__ import annotations

import json

import sqlalchemy as sa

from alarmdesk.store import tables as t


def fire(key: str) -> dict[str, object]:
    return {
        "source_kind": "call",
        "source_id": "ct-1",
        "type_code": "FSTRU",
        "occurred_at": "2026-12-03T09:00:00+00:00",
        "location": {"lat": 51.51, "lon": -0.12},
        "summary": "smoke",
        "idempotency_key": key,
    }


def test_a_units_reports_move_its_incident_and_its_status_together(live_server) -> None:
    incident = live_server.post_signal(fire("u1")).json()["incident_id"]
    with live_server.client("operator") as op:
        op.post(f"/api/v1/incidents/{incident}/dispatch", json={"units": ["E3"]}).raise_for_status()
        # an AVL feed (an intake token) reports the position, the crew the status
        with live_server.client("intake") as avl:
            moved = avl.post("/api/v1/units/E3/report", json={"lat": 51.52, "lon": -0.13})
            assert moved.status_code == 200, moved.text
            assert (moved.json()["lat"], moved.json()["status"]) == (51.52, "dispatched")
        en_route = op.post("/api/v1/units/E3/report", json={"status": "en_route"})
        assert en_route.status_code == 200 and en_route.json()["status"] == "en_route"
        assert en_route.json()["status_at"]
        inc = op.get(f"/api/v1/incidents/{incident}").json()
        assert inc["en_route_at"] and inc["status"] == "dispatched"
        assert op.post("/api/v1/units/E3/report", json={"status": "on_scene"}).status_code == 200
        inc = op.get(f"/api/v1/incidents/{incident}").json()
        assert inc["status"] == "on_scene" and inc["on_scene_at"]
        bad = op.post("/api/v1/units/E3/report", json={"status": "en_route"})
        assert bad.status_code == 409 and bad.json()["error"]["code"] == "invalid_transition"
        back = op.post("/api/v1/units/E3/report", json={"status": "returning"})
        assert back.json()["incident_id"] is None
        timeline = op.get(f"/api/v1/incidents/{incident}").json()["timeline"]
        statuses = [e["detail"]["status"] for e in timeline if e["type"] == "incident.unit_status"]
        assert statuses == ["en_route", "returning"]
        # a returning unit may be sent again
        other = live_server.post_signal(fire("u2") | {"location": {"lat": 51.7, "lon": -0.5}})
        again = op.post(
            f"/api/v1/incidents/{other.json()['incident_id']}/dispatch", json={"units": ["E3"]}
        )
        assert again.status_code == 200, again.text
    with live_server.services.engine.connect() as conn:
        entries = [
            json.loads(r.entry)
            for r in conn.execute(sa.select(t.audit_entries.c.entry))
            if '"unit"' in r.entry
        ]
    assert entries and not any("51.52" in json.dumps(e) for e in entries)


def test_bad_reports_are_refused(live_server) -> None:
    with live_server.client("operator") as op:
        assert op.post("/api/v1/units/NOPE/report", json={"status": "en_route"}).status_code == 422
        assert op.post("/api/v1/units/E1/report", json={"status": "dispatched"}).status_code == 422
        assert op.post("/api/v1/units/E1/report", json={"lat": 51.5}).status_code == 422
        assert op.post("/api/v1/units/E1/report", json={"lat": 95, "lon": 0}).status_code == 422
        assert op.post("/api/v1/units/E1/report", json={"status": "en_route"}).status_code == 409
    with live_server.client("auditor") as auditor:
        assert auditor.post("/api/v1/units/E1/report", json={}).status_code == 403


def test_an_avl_feed_of_positions_leaves_one_audit_entry_per_batch_and_a_status_its_own(
    live_server,
) -> None:
    import asyncio

    from alarmdesk.domain import commands as c
    from alarmdesk.safeguards.audit import Actor

    svc = live_server.services
    avl = Actor("token:avl", "intake")

    async def burst() -> None:  # 40 positions in one event-loop turn: one writer batch or two
        reports = [
            svc.writer.submit_unit_report(
                c.UnitReport("E1" if i % 2 else "E2", "avl", lat=51.5 + i / 1000, lon=-0.1), avl
            )
            for i in range(40)
        ]
        await asyncio.gather(*reports)

    def entries() -> list[dict[str, object]]:
        with svc.engine.connect() as conn:
            rows = conn.execute(sa.select(t.audit_entries.c.entry).order_by(t.audit_entries.c.seq))
            return [
                e for e in (json.loads(r.entry) for r in rows) if e.get("object_type") == "unit"
            ]

    before = len(entries())
    asyncio.run(burst())  # the writer answers on whichever loop asked
    positions = [e for e in entries()[before:] if e.get("rule") == "unit.position"]
    assert 1 <= len(positions) < 40
    assert sum(e["detail"]["count"] for e in positions) == 40  # type: ignore[index]
    assert not any("51.5" in json.dumps(e) for e in positions)
    with live_server.client("operator") as op:
        assert op.post("/api/v1/units/E1/report", json={"status": "out_of_service"}).is_success
    (status,) = [e for e in entries()[before:] if e.get("rule") == "unit.report"]
    assert status["detail"] == {"status": "out_of_service", "position": False}


def test_a_report_that_moves_an_incident_of_another_desk_is_refused(live_server) -> None:
    """A unit's status moves the timeline of the incident it is on: an operator may do that
    only to an incident of their desks, as with any action on it (a west operator moved an
    east incident's unit and stamped its times). A position moves only the unit; an intake
    token (a crew's terminal, an AVL feed) reports for its units whatever their incident."""
    east = fire("d1") | {"location": {"lat": 51.5, "lon": 5.0}}
    incident = live_server.post_signal(east).json()["incident_id"]
    with live_server.client("operator") as op:
        op.post(f"/api/v1/incidents/{incident}/dispatch", json={"units": ["E2"]}).raise_for_status()
        with live_server.client("west_operator") as west:
            refused = west.post("/api/v1/units/E2/report", json={"status": "en_route"})
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "forbidden"
            also = west.post(
                "/api/v1/units/E2/report", json={"status": "en_route", "lat": 51.6, "lon": 5.1}
            )
            assert also.status_code == 403  # nothing moves, the position neither
            inc = op.get(f"/api/v1/incidents/{incident}").json()
            assert inc["en_route_at"] is None
            units = {u["id"]: u for u in op.get("/api/v1/units").json()}
            assert units["E2"]["status"] == "dispatched" and units["E2"]["lat"] != 51.6
            moved = west.post("/api/v1/units/E2/report", json={"lat": 51.6, "lon": 5.1})
            assert moved.status_code == 200  # a position only
        with live_server.client("intake") as crew:
            assert crew.post("/api/v1/units/E2/report", json={"status": "en_route"}).is_success
        assert op.get(f"/api/v1/incidents/{incident}").json()["en_route_at"]


def test_a_unit_that_cleared_and_went_elsewhere_does_not_arrive_at_the_first_incident(
    live_server,
) -> None:
    """E5 is sent to A, its crew reports available, it is sent to B. "Arrived" on A put A
    on scene with nobody there (its on-scene time in the KPIs) and E5 on scene at B, which
    it had not reached. Only a unit still committed to an incident arrives there."""
    a = live_server.post_signal(fire("c1")).json()["incident_id"]
    b = live_server.post_signal(fire("c2") | {"location": {"lat": 51.7, "lon": -0.5}})
    b = b.json()["incident_id"]
    with live_server.client("operator") as op:
        op.post(f"/api/v1/incidents/{a}/dispatch", json={"units": ["E5"]}).raise_for_status()
        op.post("/api/v1/units/E5/report", json={"status": "available"}).raise_for_status()
        op.post(f"/api/v1/incidents/{b}/dispatch", json={"units": ["E5"]}).raise_for_status()
        for body in ({}, {"units": ["E5"]}):
            refused = op.post(f"/api/v1/incidents/{a}/arrive", json=body)
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"]["code"] == "unit_unavailable"
        first = op.get(f"/api/v1/incidents/{a}").json()
        assert first["status"] == "dispatched" and first["on_scene_at"] is None
        units = {u["id"]: u for u in op.get("/api/v1/units").json()}
        assert (units["E5"]["status"], units["E5"]["incident_id"]) == ("dispatched", b)
        # sent back to A later, it arrives there (and is listed once)
        op.post(f"/api/v1/incidents/{b}/dispatch", json={"units": ["E4"]}).raise_for_status()
        op.post("/api/v1/units/E5/report", json={"status": "available"}).raise_for_status()
        op.post(f"/api/v1/incidents/{a}/dispatch", json={"units": ["E5"]}).raise_for_status()
        arrived = op.post(f"/api/v1/incidents/{a}/arrive", json={})
        assert arrived.status_code == 200, arrived.text
        assert arrived.json()["status"] == "on_scene" and arrived.json()["units"] == ["E5"]
