"""HTTP in, Server-Sent Events out, over a real server."""

from __future__ import annotations

import json
import queue
import threading
import time
from datetime import UTC, datetime

import httpx


def body(key: str, *, lat: float = 50.0, lon: float = 5.0, code: str = "FSTRU") -> dict:
    return {
        "source_kind": "call",
        "source_id": "ct-1",
        "type_code": code,
        "occurred_at": datetime.now(UTC).isoformat(),
        "idempotency_key": key,
        "location": {"lat": lat, "lon": lon},
        "summary": "test",
    }


class SSEReader:
    """Reads an SSE stream in a thread; events land in a queue as (id, type, data)."""

    def __init__(
        self,
        server,
        headers: dict[str, str] | None = None,
        params: dict | None = None,
        who: str = "operator",
    ) -> None:
        url = server.url
        headers = {**server.headers(who), **(headers or {})}
        self.events: queue.Queue = queue.Queue()
        self.comments = 0
        self.status = 0
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(url, headers or {}, params), daemon=True
        )
        self._thread.start()
        assert self._connected.wait(5), "stream did not connect"
        assert self.status == 200, f"stream answered {self.status}"

    def _run(self, url: str, headers: dict[str, str], params: dict | None) -> None:
        try:
            self._read(url, headers, params)
        except httpx.HTTPError as exc:  # the server went away (end of test)
            self.error = exc
            self._connected.set()

    def _read(self, url: str, headers: dict[str, str], params: dict | None) -> None:
        with (
            httpx.Client(timeout=httpx.Timeout(10, read=30)) as client,
            client.stream("GET", url + "/api/v1/stream", headers=headers, params=params) as r,
        ):
            self.status = r.status_code
            self._connected.set()
            if r.status_code != 200:
                return
            assert r.headers["content-type"].startswith("text/event-stream")
            event: dict = {}
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith(":"):
                    self.comments += 1
                elif line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("event: "):
                    event["type"] = line[7:]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
                elif line == "" and "id" in event:
                    self.events.put((event["id"], event["type"], event["data"]))
                    event = {}

    def take(self, n: int, timeout: float = 5.0) -> list[tuple[int, str, dict]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            out.append(self.events.get(timeout=max(0.01, deadline - time.monotonic())))
        return out

    def close(self) -> None:
        self._stop.set()


def test_a_posted_signal_reaches_a_connected_stream_as_incident_opened(live_server) -> None:
    reader = SSEReader(live_server)
    t0 = time.monotonic()
    r = live_server.post_signal(body("k1"))
    assert r.status_code == 202
    ((_, etype, data),) = reader.take(1)
    assert time.monotonic() - t0 < 1.0
    assert etype == "incident.opened"
    assert data["incident_id"] == r.json()["incident_id"]
    assert data["incident"]["type_code"] == "FSTRU" and data["incident"]["status"] == "new"
    reader.close()


def test_operator_actions_stream_as_transitions(live_server) -> None:
    reader = SSEReader(live_server)
    inc = live_server.post_signal(body("k1")).json()["incident_id"]
    url = f"/api/v1/incidents/{inc}"
    with live_server.client("operator") as op:
        assert op.post(url + "/acknowledge").status_code == 200
        assert op.post(url + "/dispatch", json={"units": ["E1"]}).status_code == 200
        assert op.post(url + "/notes", json={"text": "crew on way"}).status_code == 200
    events = reader.take(4)
    assert [e[1] for e in events] == [
        "incident.opened",
        "incident.transitioned",
        "incident.transitioned",
        "incident.noted",
    ]
    assert events[2][2]["incident"]["units"] == ["E1"]
    assert events[1][2]["actor"] == "operator"
    ids = [e[0] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 4
    reader.close()


def test_reconnecting_with_last_event_id_loses_nothing_and_repeats_nothing(live_server) -> None:
    def post(key: str) -> httpx.Response:
        lat = 50 + int(key[1:]) * 0.1
        return live_server.post_signal(body(key, lat=lat))

    first = SSEReader(live_server)
    for i in range(5):
        assert post(f"k{i}").status_code == 202
    seen = first.take(5)
    first.close()
    last_id = seen[2][0]  # the client had processed only three when it dropped
    # While it is away, more happens.
    for i in range(5, 10):
        assert post(f"k{i}").status_code == 202
    second = SSEReader(live_server, headers={"Last-Event-ID": str(last_id)})
    for i in range(10, 13):
        assert post(f"k{i}").status_code == 202
    replayed = second.take(10)
    ids = [e[0] for e in replayed]
    assert ids == list(range(last_id + 1, last_id + 11))
    assert second.events.empty()
    second.close()


def test_replay_races_with_live_events_without_gaps_or_duplicates(live_server) -> None:
    stop = threading.Event()
    sent: list[int] = []

    def writer() -> None:
        i = 0
        with live_server.client("intake") as client:
            while not stop.is_set() and i < 400:
                r = client.post(
                    live_server.url + "/api/v1/signals/batch",
                    json={
                        "signals": [
                            body(f"b{i}-{j}", lat=40 + (i % 20), lon=1 + j * 0.01) for j in range(5)
                        ]
                    },
                )
                assert r.status_code == 202
                sent.append(i)
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    time.sleep(0.3)
    reader = SSEReader(live_server, headers={"Last-Event-ID": "0"})  # replay while writing
    time.sleep(0.5)
    stop.set()
    thread.join()
    total = len(sent) * 5
    events = reader.take(total, timeout=15)
    assert [e[0] for e in events] == list(range(1, total + 1))
    reader.close()


def test_a_desk_filtered_stream_only_carries_that_desks_incidents(live_server) -> None:
    west = SSEReader(live_server, params={"desk": "west"})
    live_server.post_signal(body("e1", lon=5.0))  # east
    r = live_server.post_signal(body("w1", lon=-5.0))  # west
    ((_, _, data),) = west.take(1)
    assert data["incident_id"] == r.json()["incident_id"]
    assert west.events.empty()
    west.close()


def test_an_idle_stream_receives_heartbeats(live_server) -> None:
    reader = SSEReader(live_server)
    deadline = time.monotonic() + 5  # the test configuration beats every 0.5 s
    while reader.comments < 2:
        assert time.monotonic() < deadline, f"{reader.comments} heartbeats in 5 s"
        time.sleep(0.05)
    reader.close()
