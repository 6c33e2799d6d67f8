"""A centre's day, end to end over real components (the DC-09 receiver on TCP, the writer, the
store on SQLite and PostgreSQL): a set-up applied from files; an encrypted fire alarm from a
registered panel routed by the rules, escalated when nobody acknowledges, acknowledged, units
recommended by the response plan and dispatched, en route and on scene by their own reports,
resolved once the procedure's required steps are ticked; and a second zone of an intruder panel
confirming the first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from alarmdesk.bootstrap import audit_chain
from alarmdesk.domain import commands as c
from alarmdesk.domain.categories import HarmCategory
from alarmdesk.domain.errors import SopIncomplete
from alarmdesk.domain.taxonomy import IncidentType
from alarmdesk.intake.dc09 import Frame, encode_frame
from alarmdesk.intake.service import IntakeConfig, IntakeService
from alarmdesk.safeguards.audit import Actor
from alarmdesk.service import centre, centre_files, dispatch
from alarmdesk.service.actions import perform
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.conftest import FakeClock, prepare_database
from tests.conftest import test_config as config_for
from tests.integration.test_dc09_receiver import KEY_A, exchange

pytestmark = pytest.mark.slow  # a receiver on a TCP port

KEY = KEY_A.hex().upper()  # the key the receiver tests read replies with
T0 = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)
OPERATOR = Actor("user:7", "operator")

SETUP = f"""\
desks:
  - {{id: fire, name: Fire desk, categories: [fire]}}
  - {{id: alarms, name: Intruder alarms, categories: [property]}}
  - {{id: sup, name: Supervisor, categories: [equipment]}}
stations:
  - {{id: S1, name: Station 1, lat: 51.500, lon: -0.120}}
  - {{id: S2, name: Station 2, lat: 51.560, lon: -0.200}}
units:
  - {{id: E1, kind: engine, station: S1, capabilities: [fire]}}
  - {{id: E2, kind: engine, station: S2, capabilities: [fire]}}
  - {{id: L1, kind: truck, station: S1, capabilities: [fire, rescue]}}
  - {{id: P1, kind: patrol, station: S1, capabilities: [keyholding]}}
panels:
  - account: 7A01
    site: Riverside warehouse
    lat: 51.505
    lon: -0.125
    key_hex: '{KEY}'
    zones: {{1: Smoke detector hall, 2: Front door, 3: Store PIR}}
routing:
  - {{id: fire-rule, match: {{categories: [fire]}}, desks: [fire]}}
  - {{id: intruder-rule, match: {{categories: [property]}}, desks: [alarms]}}
escalation:
  - id: fire-ack
    match: {{desks: [fire]}}
    steps:
      - {{after_seconds: 60, add_desks: [sup]}}
    on_scene_minutes: 15
response_plans:
  - {{id: fire-alarm, types: [ALRF], units: [{{kind: engine, count: 1}}, {{kind: truck}}]}}
"""

# The centre's own procedure for fire alarms: two of its steps are required.
ALRF = IncidentType(
    code="ALRF",
    name="FIRE ALARM",
    category=HarmCategory.FIRE,
    priority=2,
    definition="Fire alarm from a monitored premises",
    sop=("!Call the premises", "Dispatch nearest engine company", "!Call keyholder"),
    origin="local",
)


def cid_frame(
    seq: str, event: str, at: datetime, account: str = "7A01", key: str | None = KEY
) -> bytes:
    """An ADM-CID frame of a panel (by default 7A01's, encrypted with ``KEY``); ``key=None``
    writes it in plain text."""
    frame = Frame(
        token="ADM-CID",
        encrypted=key is not None,
        seq=seq,
        account=account,
        data=f"#{account}|{event}",
        timestamp=at,
    )
    return encode_frame(frame, key=bytes.fromhex(key) if key else None)


def incident(engine: sa.Engine, incident_id: int) -> dict[str, object]:
    with engine.connect() as conn:
        found = repo.get_incident(conn, incident_id)
    assert found is not None
    return found


async def test_a_fire_alarm_from_a_registered_encrypted_panel_to_its_resolution(
    db_url, services_factory, tmp_path: Path
) -> None:
    prepare_database(db_url)
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            repo.upsert_types(conn, [ALRF])
        (tmp_path / "centre.yaml").write_text(SETUP)
        perform(
            engine,
            audit_chain(config_for(db_url)),
            centre.apply(Actor("cli:test", "operator_of_machine"), centre_files.load(tmp_path)),
            T0,
        )
    finally:
        engine.dispose()
    clock = FakeClock(T0)
    loop = asyncio.get_running_loop()
    svc = services_factory(db_url, clock=clock, loop=loop, prepare=False)
    intake = IntakeService()
    intake.start(svc, loop, IntakeConfig(dc09_port=0))
    try:
        (ack,) = await exchange(intake.tcp_address, cid_frame("0001", "1110 01 001", T0))
        assert ack.token == "ACK" and ack.encrypted
        with svc.engine.connect() as conn:
            row = conn.execute(sa.select(t.incidents).order_by(t.incidents.c.id)).mappings().one()
        inc_id = row["id"]
        fire = incident(svc.engine, inc_id)
        assert fire["type_code"] == "ALRF" and fire["routed_by"] == ["fire-rule"]
        assert fire["desks"] == ["fire"] and fire["escalation"]["policy"] == "fire-ack"

        clock.advance(seconds=61)  # nobody acknowledged: the supervisor's desk sees it
        await svc.writer.fire_due()
        assert incident(svc.engine, inc_id)["desks"] == ["fire", "sup"]

        await svc.writer.submit_command(c.Acknowledge(inc_id, "op"), OPERATOR)
        rec = dispatch.recommendation(svc.engine, inc_id)
        picked = [u["unit_id"] for u in rec["units"]]
        assert picked == ["E1", "L1"]  # the nearest engine and the truck, by the plan
        await svc.writer.submit_command(
            c.Dispatch(inc_id, "op", units=tuple(picked), recommended=tuple(picked)), OPERATOR
        )
        clock.advance(minutes=1)
        await svc.writer.submit_unit_report(c.UnitReport("E1", "E1", "en_route"), OPERATOR)
        clock.advance(minutes=4)
        await svc.writer.submit_unit_report(c.UnitReport("E1", "E1", "on_scene"), OPERATOR)
        on_scene = incident(svc.engine, inc_id)
        assert on_scene["status"] == "on_scene" and on_scene["en_route_at"]

        with pytest.raises(SopIncomplete):
            await svc.writer.submit_command(
                c.Resolve(inc_id, "op", disposition="handled"), OPERATOR
            )
        for step in (0, 2):
            await svc.writer.submit_command(c.CompleteStep(inc_id, "op", step=step), OPERATOR)
        await svc.writer.submit_command(c.Resolve(inc_id, "op", disposition="handled"), OPERATOR)
        done = incident(svc.engine, inc_id)
        assert done["status"] == "resolved"
        kinds = [e["type"] for e in done["timeline"]]
        for expected in (
            "incident.opened",
            "incident.escalated",
            "incident.transitioned",
            "incident.unit_status",
            "incident.step_done",
        ):
            assert expected in kinds
        units = {u.id: u for u in svc.writer.pipeline.units.values()}
        assert units["E1"].status.value == "available" and units["E1"].incident_id is None

        # an intruder: zone 2 then zone 3 of the same panel, minutes apart
        for seq, zone in (("0002", "002"), ("0003", "003")):
            clock.advance(minutes=2)
            frame = cid_frame(seq, f"1130 01 {zone}", clock.now)
            (reply,) = await exchange(intake.tcp_address, frame)
            assert reply.token == "ACK"
        with svc.engine.connect() as conn:
            rows = (
                conn.execute(sa.select(t.incidents).where(t.incidents.c.category == "property"))
                .mappings()
                .all()
            )
        assert len(rows) == 1 and rows[0]["confirmed"] is True
        assert rows[0]["desks"] == ["alarms"] and rows[0]["signal_count"] == 2
    finally:
        await intake.aclose()
