"""MQTT intake against the real broker (Mosquitto on 127.0.0.1:1883) and a real database.

Every test uses its own topic prefix and client ids, so runs never see each other.
"""

from __future__ import annotations

import asyncio
import copy
import getpass
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import sqlalchemy as sa

from alarmdesk.bootstrap import audit_chain
from alarmdesk.config import AuditConfig, Config
from alarmdesk.demo import load_demo
from alarmdesk.intake import frigate
from alarmdesk.intake.devices import DeviceRegistry
from alarmdesk.intake.mqtt_topics import REDELIVERY_SECONDS
from alarmdesk.intake.service import IntakeConfig, IntakeService, TopicMapping
from alarmdesk.simulate import load_city
from alarmdesk.store import repository as repo
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.conftest import REPO_ROOT, free_port, port_open, prepare_database, service_missing

BROKER = ("127.0.0.1", 1883)
FORBIDDEN = ("John Smith", "John", "face", "ABC12345")


@pytest.fixture
def broker() -> tuple[str, int]:
    if not port_open(*BROKER):
        service_missing("Mosquitto on 127.0.0.1:1883")
    return BROKER


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:10]}/frigate"


def frigate_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (REPO_ROOT / "tests" / "fixtures" / "frigate" / name).read_text()
    )
    return data


CAMERA: dict[str, Any] = {
    "id": "cam-front",
    "kind": "camera",
    "site": "Depot",
    "lat": 50.5,
    "lon": 5.5,
    "zones": {"yard": "Yard"},
    "settings": {"frigate_camera": "front_door"},
}


@pytest.fixture
async def start_intake(services_factory, broker):
    """Starts alarmdesk with MQTT intake; ``make(url, prefix, ...)`` returns (svc, intake)."""
    made: list[IntakeService] = []

    async def make(
        url: str,
        prefix: str,
        *,
        client_id: str,
        prepare: bool = True,
        clock: Callable[[], datetime] | None = None,
        **settings: Any,
    ):
        loop = asyncio.get_running_loop()
        svc = services_factory(url, loop=loop, prepare=prepare, clock=clock)
        if prepare:
            with svc.engine.begin() as conn:
                repo.upsert_devices(conn, [CAMERA])
        intake = IntakeService()
        cfg = IntakeConfig(
            mqtt_url=f"mqtt://{broker[0]}:{broker[1]}",
            mqtt_client_id=client_id,
            mqtt_session_expiry_seconds=120,
            mqtt_reconnect_seconds=0.2,
            frigate_topic_prefix=prefix,
            frigate_labels={"person": "TRESPASS"},
            **settings,
        )
        intake.start(svc, loop, cfg)
        made.append(intake)
        await asyncio.wait_for(intake.mqtt.ready.wait(), 10)
        return svc, intake

    yield make
    for intake in made:
        await intake.aclose()


async def publish(topic: str, payload: Any, *, retain: bool = False) -> None:
    body = payload if isinstance(payload, bytes | str) else json.dumps(payload)
    async with aiomqtt.Client(*BROKER, identifier=f"pub-{uuid.uuid4().hex[:8]}") as client:
        await client.publish(topic, body, qos=1, retain=retain)


async def until(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


def rows(engine: sa.Engine, table: sa.Table, *where: Any) -> list[sa.RowMapping]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table).where(*where).order_by(table.c.id)).mappings())


async def test_a_frigate_event_is_stored_without_identity_face_or_plate(
    sqlite_url, start_intake, prefix
) -> None:
    svc, intake = await start_intake(sqlite_url, prefix, client_id=f"ad-{uuid.uuid4().hex[:8]}")
    message = frigate_fixture("events_update.json")
    message["type"] = "new"
    await publish(f"{prefix}/events", message)
    await publish(f"{prefix}/events", message)  # a repeat: stored once
    (signal,) = await until(lambda: rows(svc.engine, t.signals))
    assert signal["source_id"] == "cam-front" and signal["type_code"] == "TRESPASS"
    assert signal["payload"]["label"] == "person" and signal["location"]["site"] == "Depot"
    text = json.dumps({k: signal[k] for k in ("summary", "payload", "location")})
    for word in FORBIDDEN:
        assert word not in text, word
    await until(lambda: intake.mqtt.stats["acknowledged"] >= 2)
    assert len(rows(svc.engine, t.signals)) == 1
    assert intake.mqtt.stats["minimised_fields"] >= 8  # 4 per message, never stored


async def test_a_message_that_was_not_committed_is_redelivered_after_a_restart(
    sqlite_url, services_factory, start_intake, prefix
) -> None:
    client_id = f"ad-{uuid.uuid4().hex[:8]}"
    svc, intake = await start_intake(sqlite_url, prefix, client_id=client_id)
    svc.writer.stop()  # nothing can be committed now
    message = frigate_fixture("events_update.json")
    message["type"] = "new"
    await publish(f"{prefix}/events", message)
    await until(lambda: intake.mqtt.stats["store_failures"] >= 1)
    assert intake.mqtt.stats["acknowledged"] == 0
    await intake.aclose()  # "crash": the broker still holds the unacknowledged message
    svc.stop()

    svc2, intake2 = await start_intake(sqlite_url, prefix, client_id=client_id, prepare=False)
    (signal,) = await until(lambda: rows(svc2.engine, t.signals))
    assert signal["type_code"] == "TRESPASS"
    await until(lambda: intake2.mqtt.stats["acknowledged"] >= 1)


@pytest.mark.slow  # runs mosquitto_sub as a process (the Frigate that dies)
async def test_frigate_offline_raises_an_equipment_incident_and_online_restores_it(
    sqlite_url, start_intake, prefix
) -> None:
    svc, _ = await start_intake(sqlite_url, prefix, client_id=f"ad-{uuid.uuid4().hex[:8]}")
    topic = f"{prefix}/available"
    try:
        await publish(topic, "online", retain=True)
        if shutil.which("mosquitto_sub") is None:
            await publish(topic, "offline", retain=True)
        else:
            await last_will(topic)  # a real last will: the broker publishes it
        (incident,) = await until(lambda: rows(svc.engine, t.incidents))
        assert incident["type_code"] == "EQCOMM" and incident["category"] == "equipment"
        assert incident["source_id"] == f"nvr-{prefix}" and incident["condition"] == "active"
        await publish(topic, "online", retain=True)
        await until(lambda: rows(svc.engine, t.incidents, t.incidents.c.condition == "restored"))
    finally:
        await publish(topic, b"", retain=True)  # clear the retained message


async def last_will(topic: str) -> None:
    """A Frigate stand-in that dies without saying goodbye: the broker sends its will."""
    proc = await asyncio.create_subprocess_exec(
        *("mosquitto_sub", "-h", BROKER[0], "-p", str(BROKER[1]), "-q", "1", "-C", "2"),
        *("-i", f"frigate-{uuid.uuid4().hex[:8]}", "-t", topic),
        *("--will-topic", topic, "--will-payload", "offline", "--will-qos", "1"),
        "--will-retain",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 10)
        assert line.strip() == b"online"  # connected and subscribed
    finally:
        proc.kill()  # no DISCONNECT: the broker publishes the will
        await proc.wait()


async def test_generic_topics_are_mapped_by_configuration(sqlite_url, start_intake, prefix) -> None:
    base = prefix.removesuffix("/frigate")
    mapping = TopicMapping(
        topic=f"{base}/sensors/+/smoke",
        type_code="ALRF",
        source_path="device",
        id_path="id",
        zone_path="zone",
        time_path="at",
        condition_path="state",
    )
    svc, intake = await start_intake(
        sqlite_url, prefix, client_id=f"ad-{uuid.uuid4().hex[:8]}", mqtt_topics=[mapping]
    )
    with svc.engine.begin() as conn:
        repo.upsert_devices(
            conn,
            [
                {
                    "id": "smoke-1",
                    "kind": "sensor",
                    "site": "School",
                    "lat": 51.0,
                    "lon": 4.0,
                    "zones": {"kitchen": "Kitchen"},
                    "settings": {},
                }
            ],
        )
    intake.reload_devices()
    topic = f"{base}/sensors/s1/smoke"
    body = {
        "device": "smoke-1",
        "id": "m1",
        "zone": "kitchen",
        "state": "alarm",
        "at": "2026-11-25T10:00:00+00:00",
        "faceId": "x",
    }
    await publish(topic, body)
    (alarm,) = await until(lambda: rows(svc.engine, t.signals))
    assert alarm["type_code"] == "ALRF" and alarm["source_id"] == "smoke-1"
    assert alarm["location"] == {"lat": 51.0, "lon": 4.0, "zone": "kitchen", "site": "School"}
    assert "faceId" not in alarm["payload"] and alarm["idempotency_key"] == f"mqtt:{topic}:m1"
    await publish(topic, {**body, "id": "m2", "state": "clear"})
    await until(lambda: rows(svc.engine, t.incidents, t.incidents.c.condition == "restored"))


async def test_a_sensor_without_message_ids_alarms_again_after_the_redelivery_window(
    sqlite_url, start_intake, prefix
) -> None:
    """A sensor sends the same bytes for every alarm and its mapping names no id: its key was
    a digest of the bytes alone, so every later alarm was dropped as a resend of the first,
    for ever. The same bytes are a redelivery for two minutes, a new alarm after."""
    base = prefix.removesuffix("/frigate")
    mapping = TopicMapping(topic=f"{base}/plain/+/smoke", type_code="ALRF", source_path="device")
    now = [datetime.now(UTC)]
    svc, intake = await start_intake(
        sqlite_url,
        prefix,
        client_id=f"ad-{uuid.uuid4().hex[:8]}",
        mqtt_topics=[mapping],
        clock=lambda: now[0],
    )
    topic, body = f"{base}/plain/s1/smoke", {"device": "smk-1", "state": "alarm"}
    await publish(topic, body)
    (first,) = await until(lambda: rows(svc.engine, t.signals))
    await publish(topic, body)  # as the broker's redelivery would: one signal
    await until(lambda: intake.mqtt.stats["acknowledged"] >= 2)
    assert len(rows(svc.engine, t.signals)) == 1
    now[0] += timedelta(seconds=REDELIVERY_SECONDS + 1)
    await publish(topic, body)  # the next alarm
    first_again, second = await until(
        lambda: (found := rows(svc.engine, t.signals)) and len(found) == 2 and found
    )
    assert first_again["idempotency_key"] == first["idempotency_key"]
    assert second["idempotency_key"] != first["idempotency_key"]
    assert first["idempotency_key"].startswith(f"mqtt:{topic}:")


# -- input the store must never see ------------------------------------------------------------


def sensor_mapping(base: str) -> TopicMapping:
    return TopicMapping(
        topic=f"{base}/sensors/+/smoke",
        type_code="ALRF",
        source_path="device",
        id_path="id",
        zone_path="zone",
    )


async def test_a_message_with_a_nul_byte_is_dropped_and_acknowledged_instead_of_redelivered_forever(
    db_url, start_intake, prefix
) -> None:
    base = prefix.removesuffix("/frigate")
    svc, intake = await start_intake(
        db_url, prefix, client_id=f"ad-{uuid.uuid4().hex[:8]}", mqtt_topics=[sensor_mapping(base)]
    )
    message = frigate_fixture("events_update.json")
    message["type"] = "new"
    nul_camera = copy.deepcopy(message)
    nul_camera["after"]["camera"] = "front\u0000door"
    nul_camera["after"]["id"] = "nul-camera"
    nul_id = copy.deepcopy(message)
    nul_id["after"]["id"] = "1607123955.475377-\u0000"
    await publish(f"{prefix}/events", nul_camera)
    await publish(f"{prefix}/events", nul_id)
    await publish(f"{base}/sensors/s1/smoke", {"device": "smoke-1", "id": "a", "zone": "k\u0000"})
    await publish(f"{prefix}/events", message)  # a good one after them is not held up

    (stored,) = await until(lambda: rows(svc.engine, t.signals))
    assert stored["idempotency_key"] == "frigate:1607123955.475377-mxklsc:*"
    await until(lambda: intake.mqtt.stats["acknowledged"] >= 4)
    assert intake.mqtt.stats["invalid"] == 3
    assert intake.mqtt.stats["invalid.invalid_value"] == 3
    assert intake.mqtt.stats["store_failures"] == 0 and intake.mqtt.stats["disconnects"] == 0
    assert intake.mqtt.stats["sessions"] == 1
    # Nothing comes back, the broker was told they are handled: a message published after
    # them is received next, and stored, with nothing received in between.
    after = copy.deepcopy(message)
    after["after"]["id"] = "1607123955.475377-after"
    await publish(f"{prefix}/events", after)
    await until(lambda: len(rows(svc.engine, t.signals)) == 2)
    assert intake.mqtt.stats["received"] == 5


async def test_oversized_and_deeply_nested_messages_are_refused_with_the_http_limits(
    db_url, start_intake, prefix
) -> None:
    base = prefix.removesuffix("/frigate")
    svc, intake = await start_intake(
        db_url, prefix, client_id=f"ad-{uuid.uuid4().hex[:8]}", mqtt_topics=[sensor_mapping(base)]
    )
    message = frigate_fixture("events_update.json")
    message["type"] = "new"
    long_id = copy.deepcopy(message)
    long_id["after"]["id"] = "x" * 100_000
    long_camera = copy.deepcopy(message)
    long_camera["after"]["camera"] = "c" * 100_000
    long_camera["after"]["id"] = "long-camera"
    topic = f"{base}/sensors/s1/smoke"
    # 1,000 levels: more than the decoder follows (and json.dumps could write).
    nested = b'{"device": "smoke-1", "id": "nested", "reading": ' + b'{"a": ' * 1000
    nested += b"1" + b"}" * 1001
    await publish(f"{prefix}/events", long_id)  # 100 KB: refused before it is decoded
    await publish(f"{prefix}/events", long_camera)
    await publish(topic, nested)
    await publish(topic, {"device": "smoke-1", "id": "17", "reading": nested_levels(17)})
    await publish(topic, {"device": "smoke-1", "id": "big", "blob": "x" * 9_000})  # > 8 KiB
    await publish(topic, {"device": "smoke-1", "id": "16", "reading": nested_levels(15)})

    (stored,) = await until(lambda: rows(svc.engine, t.signals))
    assert stored["idempotency_key"] == f"mqtt:{topic}:16"
    await until(lambda: intake.mqtt.stats["acknowledged"] >= 6)
    assert intake.mqtt.stats["too_large"] == 2  # over 64 KiB: never decoded
    assert intake.mqtt.stats["invalid.malformed_json"] == 1  # deeper than the decoder goes
    assert intake.mqtt.stats["invalid.invalid_value"] == 1  # more than 16 levels
    assert intake.mqtt.stats["invalid.payload_too_large"] == 1
    assert intake.mqtt.stats["disconnects"] == 0
    # All six are acknowledged, and a message is acknowledged only once it is committed or
    # refused for good: what is stored now is all that will be.
    assert len(rows(svc.engine, t.signals)) == 1


def nested_levels(n: int) -> Any:
    """A value whose payload nesting, counted as the HTTP API counts it, is ``n`` levels."""
    value: Any = 1
    for _ in range(n):
        value = {"a": value}
    return value


async def test_a_frigate_payload_over_8_kib_is_refused_like_the_http_api(
    sqlite_url, start_intake, prefix
) -> None:
    svc, intake = await start_intake(sqlite_url, prefix, client_id=f"ad-{uuid.uuid4().hex[:8]}")
    message = frigate_fixture("events_update.json")
    message["type"] = "new"
    message["after"]["id"] = "i" * 9_000  # under the 64 KiB cap; over the 8 KiB payload limit
    await publish(f"{prefix}/events", message)
    await until(lambda: intake.mqtt.stats["acknowledged"] >= 1)
    assert intake.mqtt.stats["invalid.payload_too_large"] == 1
    assert rows(svc.engine, t.signals) == []


# -- the demo city's cameras -------------------------------------------------------------------


def test_a_demo_city_camera_alarms_out_of_the_box_for_a_person_in_its_yard_and_smoke_anywhere(
    sqlite_url, tmp_path
) -> None:
    prepare_database(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        load_demo(engine, audit_chain(Config(audit=AuditConfig(key_file=str(tmp_path / "k")))))
        registry = DeviceRegistry.load(engine)
    finally:
        engine.dispose()
    camera = load_city()["cameras"][0]["id"]
    settings = frigate.settings_from(IntakeConfig())
    assert settings is not None

    def seen(label: str, zone: str) -> list[str]:
        message = frigate_fixture("events_update.json")
        message["type"] = "new"
        message["after"].update(camera=camera, label=label, entered_zones=[zone])
        body = json.dumps(message).encode()
        return [s.type_code for s in frigate.convert("events", body, registry, settings).signals]

    assert seen("person", "yard") == ["TRESPASS"]
    assert seen("person", "entrance") == []  # the public comes and goes there
    assert seen("car", "yard") == ["TRESPASS"]
    assert seen("smoke", "entrance") == ["FSMOKE"]
    assert seen("fire", "entrance") == ["FUNK"]
    assert seen("face", "yard") == [] and seen("license_plate", "yard") == []


# -- a private broker: the shipped settings, a burst while alarmdesk is away, a restart ---------

SHIPPED_CONF = REPO_ROOT / "docs" / "mosquitto.conf"
BURST = 3_000


class PrivateBroker:
    """A Mosquitto of this test's own, on a free port, with its data in ``tmp_path``."""

    def __init__(self, directory: Path, settings: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.conf = directory / "mosquitto.conf"
        self.conf.write_text(
            settings
            + f"\nlistener {self.port} 127.0.0.1\npersistence_location {directory}/\n"
            + f"user {getpass.getuser()}\n"  # as root, mosquitto would become "mosquitto"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.directory / "mosquitto.log").open("ab") as log:
            self.proc = subprocess.Popen(
                ["mosquitto", "-c", str(self.conf)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 10
        while not port_open("127.0.0.1", self.port):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto did not start: {self.conf}")
            time.sleep(0.05)

    def stop(self) -> None:
        """A clean stop (SIGTERM): Mosquitto writes its persistence file."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def shipped_settings() -> str:
    """docs/mosquitto.conf without its listener and persistence location."""
    lines = SHIPPED_CONF.read_text().splitlines()
    kept = [ln for ln in lines if not ln.startswith(("listener ", "persistence_location "))]
    return "\n".join(kept)


@pytest.fixture
def private_broker(tmp_path):
    if shutil.which("mosquitto") is None:
        service_missing("the mosquitto program")
    made: list[PrivateBroker] = []

    def make(settings: str) -> PrivateBroker:
        broker = PrivateBroker(tmp_path, settings)
        broker.start()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        broker.stop()


async def burst_while_away(
    services_factory, sqlite_url: str, broker: PrivateBroker, *, restart_broker: bool
) -> tuple[Any, IntakeService, float, str]:
    """Starts intake once (the session is made), stops it, publishes ``BURST`` sensor
    messages, maybe restarts the broker, starts intake again; returns the second
    (services, intake), when it started, and the topics' base."""
    loop = asyncio.get_running_loop()
    base = f"t{uuid.uuid4().hex[:8]}"
    cfg = IntakeConfig(
        mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
        mqtt_client_id=f"ad-{uuid.uuid4().hex[:8]}",
        mqtt_reconnect_seconds=0.2,
        frigate_topic_prefix=None,
        mqtt_topics=[sensor_mapping(base)],
    )
    svc = services_factory(sqlite_url, loop=loop)
    intake = IntakeService()
    intake.start(svc, loop, cfg)
    assert intake.mqtt is not None
    await asyncio.wait_for(intake.mqtt.ready.wait(), 10)
    assert intake.mqtt.session_present is False  # a new client id: a new session
    assert set(intake.mqtt.granted_qos.values()) == {1}
    await intake.aclose()
    svc.stop()

    async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"pub-{base}") as client:
        for start in range(0, BURST, 200):
            await asyncio.gather(
                *(
                    client.publish(
                        f"{base}/sensors/s{i % 20}/smoke",
                        json.dumps({"device": f"smoke-{i % 20}", "id": f"m{i}"}),
                        qos=1,
                    )
                    for i in range(start, min(start + 200, BURST))
                )
            )
    if restart_broker:
        broker.stop()
        broker.start()

    svc2 = services_factory(sqlite_url, loop=loop, prepare=False)
    intake2 = IntakeService()
    intake2.start(svc2, loop, cfg)
    assert intake2.mqtt is not None
    return svc2, intake2, time.monotonic(), base


async def publish_fence(port: int, base: str) -> None:
    """One more sensor message (id ``fence``), published after all others: once it is
    stored, the broker has delivered everything it was going to deliver before it, resends
    of the session included."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=f"fence-{base}") as client:
        body = json.dumps({"device": "smoke-0", "id": "fence"})
        await client.publish(f"{base}/sensors/s0/smoke", body, qos=1)


def stored_ids(engine: sa.Engine) -> list[str]:
    """The message ids (the last part of the key) of every stored signal."""
    with engine.connect() as conn:
        keys = conn.execute(sa.select(t.signals.c.idempotency_key)).scalars()
        return [k.rsplit(":", 1)[1] for k in keys]


def count_signals(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(t.signals)).scalar_one())


@pytest.mark.slow
async def test_a_burst_sent_while_alarmdesk_is_down_is_stored_whole_and_once_with_shipped_settings(
    services_factory, sqlite_url, private_broker
) -> None:
    broker = private_broker(shipped_settings())
    svc, intake, started, base = await burst_while_away(
        services_factory, sqlite_url, broker, restart_broker=True
    )
    try:
        await until(lambda: count_signals(svc.engine) >= BURST, within=120)
        drained = time.monotonic() - started
        assert intake.mqtt is not None and intake.mqtt.session_present is True
        await until(lambda: intake.mqtt.stats["acknowledged"] >= BURST, within=30)
        await publish_fence(broker.port, base)  # anything sent twice comes before it
        await until(lambda: "fence" in stored_ids(svc.engine), within=30)
        ids = stored_ids(svc.engine)
        assert sorted(ids) == sorted([*(f"m{i}" for i in range(BURST)), "fence"])
        print(f"{BURST} queued messages stored {drained:.2f} s after the restart")
    finally:
        await intake.aclose()


@pytest.mark.slow
async def test_with_mosquittos_default_queue_limit_a_burst_beyond_1000_messages_is_lost(
    services_factory, sqlite_url, private_broker
) -> None:
    """Why docs/mosquitto.conf matters: the same burst against a broker with only
    persistence on loses what is beyond its default 1,000-message queue."""
    broker = private_broker("persistence true\nallow_anonymous true\n")
    svc, intake, _, base = await burst_while_away(
        services_factory, sqlite_url, broker, restart_broker=False
    )
    try:
        assert intake.mqtt is not None
        await asyncio.wait_for(intake.mqtt.ready.wait(), 10)
        # Once the queue drains (a full one would drop the fence too), the fence goes after
        # whatever the broker kept: when it is stored, nothing more is coming.
        await until(lambda: count_signals(svc.engine) >= 100, within=30)
        await publish_fence(broker.port, base)
        await until(lambda: "fence" in stored_ids(svc.engine), within=60)
        last = count_signals(svc.engine) - 1
        assert 1000 <= last < BURST
        print(f"default broker settings: {BURST - last} of {BURST} messages lost")
    finally:
        await intake.aclose()


@pytest.mark.slow
async def test_a_broker_that_forgets_our_session_on_restart_is_reported_with_a_warning(
    services_factory, sqlite_url, private_broker, caplog
) -> None:
    broker = private_broker("persistence false\nallow_anonymous true\n")
    loop = asyncio.get_running_loop()
    svc = services_factory(sqlite_url, loop=loop)
    intake = IntakeService()
    intake.start(
        svc,
        loop,
        IntakeConfig(
            mqtt_url=f"mqtt://127.0.0.1:{broker.port}",
            mqtt_client_id=f"ad-{uuid.uuid4().hex[:8]}",
            mqtt_reconnect_seconds=0.2,
        ),
    )
    try:
        assert intake.mqtt is not None
        await asyncio.wait_for(intake.mqtt.ready.wait(), 10)
        broker.stop()  # without persistence, the broker forgets every session
        broker.start()
        await until(lambda: intake.mqtt.stats["sessions"] >= 2, within=20)
        assert intake.mqtt.session_present is False
        assert "kept no session" in caplog.text
        assert intake.mqtt.stats["sessions_resumed"] == 0
    finally:
        await intake.aclose()


def start_server(tmp_path: Path, sqlite_url: str, config: Path, n: int) -> subprocess.Popen[bytes]:
    """``alarmdesk serve`` as a real process (what SIGKILL hits in production)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALARMDESK_")}
    with (tmp_path / f"server-{n}.log").open("wb") as out:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "alarmdesk.cli", "serve", "--config", str(config)),
                *("--database-url", sqlite_url, "--port", str(free_port())),
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            env=env,
        )


@pytest.mark.slow
async def test_a_burst_survives_alarmdesk_being_killed_mid_burst_with_the_shipped_settings(
    tmp_path, sqlite_url, private_broker
) -> None:
    """The reported loss: 3,000 sensor messages, the server SIGKILLed 1.5 s into them."""
    broker = private_broker(shipped_settings())
    prepare_database(sqlite_url)
    base = f"t{uuid.uuid4().hex[:8]}"
    config = tmp_path / "alarmdesk.toml"
    config.write_text(
        f'[intake]\nmqtt_url = "mqtt://127.0.0.1:{broker.port}"\n'
        f'mqtt_client_id = "ad-{base}"\nfrigate_topic_prefix = "{base}/frigate"\n'
        f'[[intake.mqtt_topics]]\ntopic = "{base}/sensors/+/smoke"\ntype_code = "ALRF"\n'
        'source_path = "device"\nid_path = "id"\n'
    )
    engine = make_engine(sqlite_url)
    servers = [start_server(tmp_path, sqlite_url, config, 1)]
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier=f"pub-{base}") as client:

            async def send(i: int) -> None:
                body = json.dumps({"device": f"smoke-{i % 20}", "id": f"m{i}"})
                await client.publish(f"{base}/sensors/s{i % 20}/smoke", body, qos=1)

            # The first server is up and subscribed once a message it was sent is stored;
            # before it subscribed, no session held it: send it again (the same key).
            deadline = time.monotonic() + 30
            while count_signals(engine) < 1:
                assert time.monotonic() < deadline, "the server never took a message"
                await send(-1)
                await asyncio.sleep(0.3)

            async def burst() -> None:
                for start in range(0, BURST, 100):
                    await asyncio.gather(*(send(i) for i in range(start, start + 100)))
                    await asyncio.sleep(0.05)  # a site's sensors, not a flood

            publishing = asyncio.create_task(burst())
            await asyncio.sleep(1.5)
            servers[0].kill()  # SIGKILL: no DISCONNECT, nothing flushed
            servers[0].wait(10)
            killed_at = count_signals(engine)
            await publishing
        assert killed_at < BURST + 1  # the kill came mid-burst

        servers.append(start_server(tmp_path, sqlite_url, config, 2))
        await until(lambda: count_signals(engine) >= BURST + 1, within=120)
        await publish_fence(broker.port, base)  # anything sent twice comes before it
        await until(lambda: "fence" in stored_ids(engine), within=30)
        ids = stored_ids(engine)
        assert sorted(ids) == sorted([*(f"m{i}" for i in range(-1, BURST)), "fence"])
        print(f"killed with {killed_at} of {BURST + 1} stored; all stored once after restart")
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()
                server.wait(10)
        engine.dispose()


async def test_a_sensor_registered_in_the_set_up_is_subscribed_within_seconds_and_followed(
    sqlite_url, start_intake, prefix, tmp_path
) -> None:
    from alarmdesk.bootstrap import audit_chain as chain_of
    from alarmdesk.safeguards.audit import Actor
    from alarmdesk.service import centre, centre_files
    from alarmdesk.service.actions import perform
    from tests.conftest import test_config

    svc, intake = await start_intake(sqlite_url, prefix, client_id=f"ad-{uuid.uuid4().hex[:8]}")
    topic = f"{prefix}/site/basement/water"
    folder = tmp_path / "centre"
    folder.mkdir()
    (folder / "sensors.yaml").write_text(
        "sensors:\n"
        "  - id: flood-basement\n"
        "    site: Depot\n"
        "    lat: 50.5\n"
        "    lon: 5.5\n"
        "    topic:\n"
        f"      topic: {topic}\n"
        "      type: ALRWTR\n"
        "      id_path: seq\n"
        "      condition_path: state\n"
        "      restored_values: [dry]\n"
    )
    admin = Actor("cli:test", "operator_of_machine")

    def apply() -> None:
        perform(
            svc.engine,
            chain_of(test_config(sqlite_url)),
            centre.apply(admin, centre_files.load(folder)),
            svc.clock(),
        )

    await asyncio.to_thread(apply)  # another process would do the same: the command line
    await until(lambda: topic in intake.mqtt.granted_qos, within=10)
    await publish(topic, {"seq": 1, "state": "wet", "sender": "whoever-it-claims"})
    await publish(topic, {"seq": 2, "state": "dry"})
    stored = await until(
        lambda: len(rows(svc.engine, t.signals)) >= 2 and rows(svc.engine, t.signals)
    )
    assert [s["source_id"] for s in stored] == ["flood-basement", "flood-basement"]
    assert [s["condition"] for s in stored] == ["active", "restored"]
    assert stored[0]["type_code"] == "ALRWTR" and stored[0]["location"]["site"] == "Depot"

    # The sensor moves to another topic (removing it is refused while its incident is open).
    text = (folder / "sensors.yaml").read_text()
    (folder / "sensors.yaml").write_text(text.replace("/water", "/water2"))
    await asyncio.to_thread(apply)
    await until(lambda: topic not in intake.mqtt.granted_qos, within=10)
    assert topic + "2" in intake.mqtt.granted_qos


async def test_intake_refuses_to_start_keeping_plates_for_a_fire_type(
    sqlite_url, start_intake, prefix
) -> None:
    from alarmdesk.domain.errors import ConfigError

    with pytest.raises(ConfigError, match="ALRF is a fire type"):
        await start_intake(
            sqlite_url,
            prefix,
            client_id=f"ad-{uuid.uuid4().hex[:8]}",
            plates_enabled_types=["ALRF"],
        )
