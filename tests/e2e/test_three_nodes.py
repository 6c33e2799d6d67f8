"""Three `alarmdesk serve` nodes on loopback, one killed under load and started again (issue
12's fault test), on real PostgreSQL and NATS JetStream.

Clients post signals over HTTP to every node, and DC-09 panels send frames to a node of their
own, each moving to the next node (its secondary receiver) when its node goes away; a sensor
publishes on MQTT, which the node that writes subscribes to with the cluster's one persistent
session (the broker keeps what arrives while no node is subscribed). Consoles
watch every node's live stream, resuming with Last-Event-ID whenever a stream ends. The node
that writes is SIGKILLed mid-load; a standby takes over; the killed one is started again and
comes back as a standby. Then:

- every signal answered 202 "queued", every frame answered ACK and every MQTT message the
  broker acknowledged is in PostgreSQL exactly once;
- each console on a node that lived through it received every event committed;
- every incident, left unacknowledged, escalated through its policy's two steps exactly once
  each: the timers moved with the writer, none fired twice, none was lost.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa

from alarmdesk.intake.dc09.codec import FrameBuffer, encode_frame
from alarmdesk.intake.dc09.model import Frame
from alarmdesk.store import tables as t
from alarmdesk.store.database import make_engine
from tests.conftest import create_test_tokens, port_open, service_missing
from tests.e2e.nodes import Cluster, Node, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ACCOUNTS = ["7A01", "7A02", "7A03"]  # a panel per node at first
BROKER = ("127.0.0.1", 1883)


def set_up(topic: str) -> dict[str, Any]:
    """The centre's files: the panels, the sensor on ``topic``, and an escalation policy."""
    return {
        "panels.yaml": {
            "panels": [
                {
                    "account": a,
                    "site": f"Depot {a} <b>night</b>",  # markup is text, here as anywhere
                    "lat": 52.09 + i / 100,
                    "lon": 5.12,
                    "checkin_seconds": 3600,
                    "zones": {1: "Door contact", 2: "Smoke detector"},
                }
                for i, a in enumerate(ACCOUNTS)
            ]
        },
        "sensors.yaml": {
            "sensors": [
                {
                    "id": "water-three",
                    "site": "Plant room",
                    "lat": 52.1,
                    "lon": 5.11,
                    "topic": {"topic": topic, "type": "ALRWTR", "id_path": "seq"},
                }
            ]
        },
        "escalation.yaml": {
            "escalation": [
                {
                    "id": "every-incident",
                    "name": "Acknowledged within five seconds, or it goes further",
                    "steps": [{"after_seconds": 5}, {"after_seconds": 5, "raise_priority": True}],
                }
            ]
        },
    }


class Consoles:
    """A console's live stream per node, resumed with Last-Event-ID whenever it ends (a
    standby ends its streams when the relay missed events): the ids each received."""

    def __init__(self, token: str, stop: threading.Event) -> None:
        self.token, self.stop = token, stop
        self.seen: dict[str, list[int]] = {}
        self.threads: list[threading.Thread] = []

    def watch(self, node: Node) -> None:
        seen = self.seen.setdefault(node.url, [])
        thread = threading.Thread(target=self._follow, args=(node, seen), daemon=True)
        thread.start()
        self.threads.append(thread)

    def _follow(self, node: Node, seen: list[int]) -> None:
        while not self.stop.is_set() and node.proc.poll() is None:
            headers = {
                "Authorization": f"Bearer {self.token}",
                "Accept": "text/event-stream",
                "Last-Event-ID": str(seen[-1] if seen else 0),  # from the first event on
            }
            try:
                with httpx.stream(
                    "GET", node.url + "/api/v1/stream", headers=headers, timeout=30
                ) as r:
                    for line in r.iter_lines():
                        if line.startswith("id: "):
                            seen.append(int(line[4:]))
                        if self.stop.is_set():
                            return
            except httpx.HTTPError:
                time.sleep(0.2)


def frame(account: str, seq: int, zone: int) -> bytes:
    """A Contact ID burglary alarm of ``account`` (plain text, stamped now)."""
    return encode_frame(
        Frame(
            token="ADM-CID",
            seq=f"{seq:04d}",
            account=account,
            data=f"#{account}|1130 01 {zone:03d}",
            timestamp=datetime.now(UTC).replace(microsecond=0),
        )
    )


def panel(
    account: str,
    receivers: list[Node],
    first: int,
    acked: set[tuple[str, str]],
    lock: threading.Lock,
    stop: threading.Event,
) -> None:
    """Sends alarms one at a time, each after the reply to the one before; an ACKed frame is
    remembered by its sequence number. A connection that fails moves to the next receiver,
    and the frame in flight is sent again there (a resend, with the same sequence)."""
    at = first
    sock: socket.socket | None = None
    buffer = FrameBuffer()
    for seq in itertools.count(1):
        if stop.is_set():
            break
        data = frame(account, seq, 1 + seq % 2)
        while not stop.is_set():
            node = receivers[at % len(receivers)]
            try:
                if sock is None:
                    assert node.dc09_port is not None
                    sock = socket.create_connection(("127.0.0.1", node.dc09_port), timeout=5)
                sock.sendall(data)
                replies: list[Any] = []
                while not replies:
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError("the receiver closed the connection")
                    replies = buffer.feed(chunk)
                reply = replies[0]
                if isinstance(reply, bytes) and b'"ACK"' in reply:
                    with lock:
                        acked.add((account, f"{seq:04d}"))
                    break
                time.sleep(0.2)  # a NAK (the log did not confirm): the same frame again
            except OSError:
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
                sock, buffer = None, FrameBuffer()
                at += 1  # the secondary receiver
                time.sleep(0.1)
        time.sleep(0.05)
    if sock is not None:
        sock.close()


def poster(
    c: int,
    nodes: list[Node],
    token: str,
    acked: set[str],
    lock: threading.Lock,
    stop: threading.Event,
) -> None:
    """Single signals round the nodes that are up, a new place every ten signals (so
    incidents keep opening); each answered 202 is remembered by its summary."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(headers=headers, timeout=10) as http:
        for n in itertools.count(1):
            if stop.is_set():
                return
            alive = [node for node in nodes if node.proc.poll() is None]
            node = alive[n % len(alive)]
            marker = f"p{c}-{n}"
            body = {
                "source_kind": "equipment",
                "source_id": f"site-{c}-{n // 10}",
                "type_code": "ALRF",
                "occurred_at": datetime.now(UTC).isoformat(),
                "summary": marker,
                "location": {"zone": "1"},
                "idempotency_key": f"three-{marker}",
            }
            try:
                r = http.post(node.url + "/api/v1/signals", json=body)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if r.status_code == 202:
                with lock:
                    acked.add(marker)
            else:
                assert r.status_code == 503, r.text
            time.sleep(0.02)


def sensor(
    topic: str, acked: set[int], lock: threading.Lock, stop: threading.Event, first: int = 1
) -> None:
    """Publishes readings with QoS 1, one at a time; a reading is remembered once the broker
    acknowledged it (PUBACK): from then on it is the broker's to deliver."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
    client.connect(*BROKER)
    client.loop_start()
    try:
        for seq in itertools.count(first):
            if stop.is_set():
                return
            info = client.publish(topic, json.dumps({"seq": seq, "state": "wet"}), qos=1)
            info.wait_for_publish(5)
            if info.is_published():
                with lock:
                    acked.add(seq)
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()


def stored_keys(engine: sa.Engine, prefix: str) -> list[str]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(t.signals.c.idempotency_key).where(
                    t.signals.c.idempotency_key.startswith(prefix)
                )
            ).scalars()
        )


def writer_among(nodes: list[Node], timeout: float = 40.0) -> Node:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in nodes:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(node.url + "/readyz?role=writer", timeout=2).status_code == 200:
                    return node
        time.sleep(0.2)
    raise AssertionError(f"no node took over as the writer within {timeout} s")


def test_three_nodes_lose_the_writer_under_load_and_nothing_is_lost(cluster: Cluster) -> None:
    if not port_open(*BROKER):
        service_missing("Mosquitto on 127.0.0.1:1883")
    topic = f"three/{uuid.uuid4().hex[:8]}/water"
    folder = cluster.tmp_path / "centre"
    folder.mkdir()
    for name, content in set_up(topic).items():
        (folder / name).write_text(json.dumps(content))  # YAML reads JSON
    # one MQTT session for the cluster, whichever node writes; gone a minute after the test
    with cluster.config.open("a") as config:
        config.write(
            f'[intake]\nmqtt_client_id = "{cluster.stream}"\nmqtt_session_expiry_seconds = 60\n'
        )
    cluster.extra_env["ALARMDESK_MQTT_URL"] = f"mqtt://{BROKER[0]}:{BROKER[1]}"
    subprocess.run(
        [
            *(sys.executable, "-m", "alarmdesk.cli", "config", "apply", str(folder)),
            *("--database-url", cluster.database_url),
        ],
        cwd=cluster.tmp_path,
        env=cluster.env(),
        check=True,
        capture_output=True,
    )
    tokens = create_test_tokens(cluster.database_url)
    nodes = [cluster.start(dc09=True)]
    for _ in range(2):
        nodes.append(cluster.start(dc09=True, wait=False))
    for node in nodes[1:]:
        wait_until_ready(node, role="standby")
    engine = make_engine(cluster.database_url)
    # the writer node subscribed (its session exists from then on): a first reading is stored
    probe = threading.Event()
    probing = threading.Thread(target=sensor, args=(topic, set(), threading.Lock(), probe, 0))
    probing.start()
    deadline = time.monotonic() + 20
    while not stored_keys(engine, f"mqtt:{topic}:0"):
        assert time.monotonic() < deadline, f"MQTT never subscribed\n{cluster.logs()}"
        time.sleep(0.2)
    probe.set()
    probing.join(10)

    stop = threading.Event()
    lock = threading.Lock()
    posted: set[str] = set()
    framed: set[tuple[str, str]] = set()
    readings: set[int] = set()
    watching = threading.Event()  # set: the consoles stop
    consoles = Consoles(tokens["operator"], watching)
    for node in nodes:
        consoles.watch(node)
    load = [
        threading.Thread(target=poster, args=(c, nodes, tokens["intake"], posted, lock, stop))
        for c in range(3)
    ] + [
        threading.Thread(target=panel, args=(a, list(nodes), i, framed, lock, stop))
        for i, a in enumerate(ACCOUNTS)
    ]
    load.append(threading.Thread(target=sensor, args=(topic, readings, lock, stop, 1_000_000)))
    try:
        for thread in load:
            thread.start()
        time.sleep(8)
        writer = nodes[0]
        os.kill(writer.proc.pid, signal.SIGKILL)  # mid-load: batches in hand, acks unsent
        writer.proc.wait(10)
        writer_among(nodes[1:])  # a standby, once the dead node's lease has lapsed
        time.sleep(3)
        again = cluster.start(dc09=True, wait=False)  # the killed node, back
        wait_until_ready(again, role="standby")
        nodes.append(again)  # the posters take it up
        time.sleep(4)
    finally:
        stop.set()
        for thread in load:
            thread.join(30)
    assert len(posted) > 100 and len(framed) > 30 and len(readings) > 30, cluster.logs()

    try:
        # every acknowledged signal, once: the posters' by summary, the panels' by sequence
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(t.signals.c.summary, t.signals.c.source_id, t.signals.c.payload)
                ).all()
            summaries = [r.summary for r in rows if r.source_id.startswith("site-")]
            frames = [
                (r.source_id.removeprefix("panel-"), r.payload["seq"])
                for r in rows
                if r.source_id.startswith("panel-7A")
            ]
            keys = stored_keys(engine, f"mqtt:{topic}:")
            read = [int(k.rsplit(":", 1)[1]) for k in keys if not k.endswith(":0")]
            done = posted <= set(summaries) and framed <= set(frames) and readings <= set(read)
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not posted - set(summaries), f"queued, never stored\n{cluster.logs()}"
        assert not framed - set(frames), f"ACKed, never stored\n{cluster.logs()}"
        lost = readings - set(read)
        assert not lost, f"acknowledged by the broker, never stored\n{cluster.logs()}"
        assert len(summaries) == len(set(summaries)), "a posted signal stored twice"
        assert len(frames) == len(set(frames)), "a frame stored twice"

        # every incident escalates through both steps, once each, the last due 10 s after it
        # opened: wait until every incident's second step is past, and a little more
        with engine.connect() as conn:
            last_opened = conn.execute(sa.select(sa.func.max(t.incidents.c.opened_at))).scalar()
        assert last_opened is not None
        wait = (last_opened - datetime.now(UTC)).total_seconds() + 10 + 4
        time.sleep(max(wait, 0))
        with engine.connect() as conn:
            incidents = set(conn.execute(sa.select(t.incidents.c.id)).scalars())
            steps = conn.execute(
                sa.select(t.events.c.incident_id, t.events.c.detail).where(
                    t.events.c.type == "incident.escalated"
                )
            ).all()
        fired: dict[int, list[int]] = {i: [] for i in incidents}
        for incident_id, detail in steps:
            fired[incident_id].append(int(detail["step"]))
        wrong = {i: s for i, s in fired.items() if sorted(s) != [1, 2]}
        assert not wrong, f"escalations not fired exactly once each: {wrong}\n{cluster.logs()}"

        # the consoles on the nodes that lived through it saw every event committed
        with engine.connect() as conn:
            committed = set(conn.execute(sa.select(t.events.c.id)).scalars())
        for node in nodes[1:3]:
            deadline = time.monotonic() + 20
            while not committed <= set(consoles.seen[node.url]):
                if time.monotonic() > deadline:
                    missing = sorted(committed - set(consoles.seen[node.url]))
                    raise AssertionError(
                        f"{len(missing)} events never reached {node.url}: {missing[:20]}"
                    )
                time.sleep(0.2)
            seen = consoles.seen[node.url]
            assert len(seen) == len(set(seen)), "a console received an event twice"
        print(  # for the record (pytest -s)
            f"{len(posted)} HTTP signals, {len(framed)} DC-09 frames, {len(readings)} MQTT "
            f"readings; {len(incidents)} incidents, {len(steps)} escalation steps; "
            f"{len(committed)} events at each surviving console"
        )
    finally:
        watching.set()
        engine.dispose()
