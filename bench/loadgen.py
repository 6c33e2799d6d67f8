"""Load generators for bench/ingest.py, each run in its own process.

    python bench/loadgen.py closed '<json config>'   closed loop: N keep-alive connections,
                                                      each sends its next request as soon as
                                                      the previous answer is in
    python bench/loadgen.py pace   '<json config>'   single-signal POSTs at a fixed rate
    python bench/loadgen.py sse    '<json config>'   M Server-Sent-Events readers

Each mode talks to ``cfg["port"]``, or to every port of ``cfg["ports"]`` (several nodes of
one cluster, bench/distributed.py): closed-loop connections and SSE readers are spread over
them in turn, paced requests go to them in turn.

Raw asyncio protocols on uvloop speaking HTTP/1.1 keep-alive with pre-encoded requests: a
request is one bytes concatenation and one ``transport.write``; an answer is found by its
Content-Length (or the chunked terminator), without a general HTTP parser. The result is
one JSON line on stdout. Only 127.0.0.1 is ever contacted.
"""

# The generators run alone in their process: small blocking file I/O and polling loops
# there cost nothing that is measured.
# ruff: noqa: ASYNC110, ASYNC230, ASYNC240

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import resource
import sys
import time
from array import array
from collections import deque
from datetime import datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _signals

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``alarmdesk serve --workers``: the HTTP workers)."""
    found, pending = [], [pid]
    while pending:
        p = pending.pop()
        found.append(p)
        with contextlib.suppress(OSError, ValueError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    pending.extend(int(c) for c in f.read().split())
    return found


def user_sys(stat_path: str) -> tuple[float, float] | None:
    """CPU seconds in user and kernel mode from a ``/proc/.../stat`` file (a process's or one
    of its threads'); None once it is gone."""
    try:
        with open(stat_path, "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def cpu_of(pid: int | None) -> float | None:
    """CPU seconds (user + system, every thread) of another process and its children, from
    /proc."""
    if not pid:
        return None
    total = None
    for p in tree(pid):
        times = user_sys(f"/proc/{p}/stat")
        if times is not None:
            total = (total or 0.0) + sum(times)
    return total


def runq_wait(pid: int | str | None) -> float | None:
    """Seconds the process's threads have spent runnable but waiting for a CPU (schedstat):
    how much a neighbour on the machine kept it from running."""
    if not pid:
        return None
    total, seen = 0, False
    for p in tree(os.getpid()) if pid == "self" else tree(int(pid)):
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        seen = True
        for task in tasks:
            try:
                with open(f"/proc/{p}/task/{task}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9 if seen else None


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every core, kernel included)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = v
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def pct(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


AUTH = ""  # "Authorization: Bearer ...\r\n" when the server wants a token (cfg["token"])


def ports_of(cfg: dict[str, Any]) -> list[int]:
    """The servers' ports: ``cfg["ports"]`` (a cluster's nodes), else ``[cfg["port"]]``."""
    return [int(x) for x in cfg["ports"]] if cfg.get("ports") else [int(cfg["port"])]


def post_head(path: str, port: int, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{AUTH}"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


class Answer:
    """Incremental reader of one HTTP/1.1 response at a time (keep-alive, no pipelining)."""

    __slots__ = ("buf", "end", "status")

    def __init__(self) -> None:
        self.buf = b""
        self.end = -1  # total length once the head is in; -2: chunked
        self.status = 0

    def feed(self, data: bytes) -> bytes | None:
        """Returns the whole response once complete (head + body), else None."""
        buf = self.buf + data if self.buf else data
        if self.end == -1:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                self.buf = buf
                return None
            head = buf[:i].lower()
            self.status = int(head[9:12])
            j = head.find(b"\r\ncontent-length:")
            if j >= 0:
                k = head.find(b"\r\n", j + 2)
                self.end = i + 4 + int(head[j + 17 : k if k >= 0 else len(head)])
            else:
                self.end = -2
        if self.end == -2:
            if not buf.endswith(b"0\r\n\r\n"):
                self.buf = buf
                return None
            whole, rest = buf, b""
        else:
            if len(buf) < self.end:
                self.buf = buf
                return None
            whole, rest = buf[: self.end], buf[self.end :]
        if rest:  # the server never sends unasked; keep it for safety
            raise RuntimeError("unexpected bytes after a response")
        self.buf = b""
        self.end = -1
        return whole


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# -- closed loop ---------------------------------------------------------------------------------


class ClosedLoop:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.ports = ports_of(cfg)
        self.path = cfg["path"]
        self.batch = int(cfg.get("batch", 0))
        vs = _signals.variants(
            int(cfg.get("variants", 20_000)),
            int(cfg["seed"]),
            datetime.fromisoformat(cfg["occurred_at"]),
        )
        if cfg.get("format") == "alertmanager":  # a JSON array of alerts, one or a batch
            self.tpl = _signals.alert_templates(vs, cfg["key_prefix"], wrap=not self.batch)
            self.batch_open, self.batch_close = b"[", b"]"
        else:
            self.tpl = _signals.templates(vs, cfg["key_prefix"])
            self.batch_open, self.batch_close = b'{"signals":[', b"]}"
        self.heads = {
            port: [post_head(self.path, port, t.size) for t in self.tpl] for port in self.ports
        }
        self.n = 0
        self.lat = array("d")
        self.done_at = array("d")
        self.ok = array("b")
        self.statuses: dict[int, int] = {}
        self.stop_at = 0.0
        self.open = 0
        self.finished: asyncio.Future[None] | None = None
        self.bad_sample: str | None = None

    def request(self, port: int) -> bytes:
        n = self.n
        if self.batch:
            self.n += self.batch
            v = len(self.tpl)
            body = (
                self.batch_open
                + b",".join(self.tpl[(n + i) % v].body(n + i) for i in range(self.batch))
                + self.batch_close
            )
            return post_head(self.path, port, len(body)) + body
        self.n += 1
        t = self.tpl[n % len(self.tpl)]
        return self.heads[port][n % len(self.tpl)] + t.body(n)

    def closed(self) -> None:
        self.open -= 1
        if self.open == 0 and self.finished is not None and not self.finished.done():
            self.finished.set_result(None)


class ClosedConn(asyncio.Protocol):
    def __init__(self, gen: ClosedLoop, port: int) -> None:
        self.gen = gen
        self.port = port
        self.answer = Answer()
        self.t0 = 0.0
        self.tr: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = transport  # type: ignore[assignment]
        self.gen.open += 1
        self.send()

    def send(self) -> None:
        req = self.gen.request(self.port)
        self.t0 = time.perf_counter()
        assert self.tr is not None
        self.tr.write(req)

    def data_received(self, data: bytes) -> None:
        whole = self.answer.feed(data)
        if whole is None:
            return
        now = time.perf_counter()
        g = self.gen
        g.lat.append(now - self.t0)
        g.done_at.append(now)
        st = self.answer.status
        g.ok.append(200 <= st < 300)
        g.statuses[st] = g.statuses.get(st, 0) + 1
        if st >= 300 and g.bad_sample is None:
            g.bad_sample = whole[:600].decode("utf-8", "replace")
        if now < g.stop_at:
            self.send()
        else:
            assert self.tr is not None
            self.tr.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.closed()


async def run_closed(cfg: dict[str, Any]) -> dict[str, Any]:
    gen = ClosedLoop(cfg)
    loop = asyncio.get_running_loop()
    warmup, duration = float(cfg["warmup"]), float(cfg["duration"])
    server_pid = cfg.get("server_pid")
    gen.finished = loop.create_future()
    start = time.perf_counter()
    gen.stop_at = start + warmup + duration
    marks: dict[str, tuple[float, float, float | None, float]] = {}
    walls: dict[str, float] = {}  # the window in time.time(), for another process's samples

    def mark(name: str) -> None:
        walls[name] = time.time()
        marks[name] = (
            time.perf_counter(),
            cpu_self(),
            cpu_of(server_pid),
            machine_busy(),
            runq_wait(server_pid),
            runq_wait("self"),
        )

    loop.call_later(warmup, mark, "start")
    loop.call_later(warmup + duration, mark, "end")
    conns = int(cfg["conns"])
    for c in range(conns):
        port = gen.ports[c % len(gen.ports)]
        await loop.create_connection(functools.partial(ClosedConn, gen, port), HOST, port)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(gen.finished, warmup + duration + 60)
    if "end" not in marks:
        mark("end")
    t_start, cpu0, srv0, busy0, wait0, gwait0 = marks["start"]
    t_end, cpu1, srv1, busy1, wait1, gwait1 = marks["end"]
    window = t_end - t_start
    lat_in = sorted(
        lat
        for lat, d, ok in zip(gen.lat, gen.done_at, gen.ok, strict=True)
        if ok and t_start <= d <= t_end
    )
    failed_in = sum(
        1 for d, ok in zip(gen.done_at, gen.ok, strict=True) if not ok and t_start <= d <= t_end
    )
    ok_in = len(lat_in)
    per = gen.batch or 1
    return {
        "mode": "closed",
        "conns": conns,
        "batch": gen.batch,
        "window_s": window,
        "window_wall": [walls["start"], walls["end"]],
        "requests": ok_in,
        "failed": failed_in,
        "requests_per_s": ok_in / window,
        "signals_per_s": ok_in * per / window,
        "p50_ms": (pct(lat_in, 50) or 0) * 1000,
        "p99_ms": (pct(lat_in, 99) or 0) * 1000,
        "max_ms": (lat_in[-1] if lat_in else 0) * 1000,
        "statuses": gen.statuses,
        "bad_sample": gen.bad_sample,
        "loadgen_cpu": (cpu1 - cpu0) / window,
        "server_cpu": (srv1 - srv0) / window if srv0 is not None and srv1 is not None else None,
        "server_wait": (wait1 - wait0) / window
        if wait0 is not None and wait1 is not None
        else None,
        "loadgen_wait": (gwait1 - gwait0) / window
        if gwait0 is not None and gwait1 is not None
        else None,
        "machine_busy": (busy1 - busy0) / window,
        "total_requests": len(gen.lat),
        # every 2xx over the whole run (warm-up included), in signals: what the server said
        # it accepted, to hold against what it stored
        "accepted_total": sum(gen.ok) * per,
    }


# -- paced single signals (end-to-end phase) -------------------------------------------------


class PacedConn(asyncio.Protocol):
    def __init__(self, pacer: Pacer, node: int) -> None:
        self.p = pacer
        self.node = node  # the index of its port in the pacer's ports
        self.answer = Answer()
        self.tr: asyncio.Transport | None = None
        self.t0 = 0.0
        self.n = 0  # the number of the request in flight (its idempotency key's counter)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = transport  # type: ignore[assignment]
        self.p.free[self.node].append(self)

    def data_received(self, data: bytes) -> None:
        whole = self.answer.feed(data)
        if whole is None:
            return
        now = time.time()
        p = self.p
        st = self.answer.status
        p.statuses[st] = p.statuses.get(st, 0) + 1
        p.post_lat.append(now - self.t0)
        if st == 202:
            if p.queued:  # "queued": no id yet; the caller finds it by the key, later
                p.sent_ids.append(self.n)
            else:
                body = whole[whole.index(b"\r\n\r\n") + 4 :]
                p.sent_ids.append(int(p.sid_re.search(body).group(1)))  # type: ignore[union-attr]
            p.sent_at.append(self.t0)
        p.free[self.node].append(self)
        p.pending -= 1
        if p.wake is not None and not p.wake.done():
            p.wake.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        p = self.p
        p.lost += 1
        if self in p.free[self.node]:
            p.free[self.node].remove(self)
        if p.wake is not None and not p.wake.done():
            p.wake.set_result(None)


class Pacer:
    """Request ``i`` goes to ``ports[i % len(ports)]``. What it records per 202 is the
    signal id of the receipt, or with ``cfg["queued"]`` (distributed mode, where the 202 says
    "queued" and names only the key) the request's number: its key is ``key_prefix`` and the
    number (bench/_signals.py)."""

    sid_re = re.compile(rb'"signal_id":(\d+)')

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.ports = ports_of(cfg)
        self.queued = bool(cfg.get("queued"))
        vs = _signals.variants(
            int(cfg.get("variants", 20_000)),
            int(cfg["seed"]),
            datetime.fromisoformat(cfg["occurred_at"]),
        )
        self.tpl = _signals.templates(vs, cfg["key_prefix"])
        self.heads = [
            [post_head("/api/v1/signals", port, t.size) for t in self.tpl] for port in self.ports
        ]
        # first in, first out: every connection is used in turn, none idles long enough
        # for the server's keep-alive timeout to close it under the pacer's feet
        self.free: list[deque[PacedConn]] = [deque() for _ in self.ports]
        self.statuses: dict[int, int] = {}
        self.post_lat = array("d")
        self.sent_ids = array("q")
        self.sent_at = array("d")
        self.lag = array("d")
        self.pending = 0
        self.lost = 0
        self.blocked = 0
        self.wake: asyncio.Future[None] | None = None


async def run_pace(cfg: dict[str, Any]) -> dict[str, Any]:
    p = Pacer(cfg)
    loop = asyncio.get_running_loop()
    rate, duration = float(cfg["rate"]), float(cfg["duration"])
    for c in range(int(cfg["conns"])):
        node = c % len(p.ports)
        await loop.create_connection(functools.partial(PacedConn, p, node), HOST, p.ports[node])
    total = int(rate * duration)
    cpu0, wall0 = cpu_self(), time.time()
    t0 = time.time() + 0.05
    give_up = t0 + duration + 30  # a server that stops answering does not hang the run
    i = 0
    while i < total and time.time() < give_up and p.lost < int(cfg["conns"]):
        now = time.time()
        due = t0 + i / rate
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while i < total and t0 + i / rate <= now:
            node = i % len(p.ports)
            if not p.free[node]:
                p.blocked += 1
                if p.lost >= int(cfg["conns"]) or time.time() > give_up:
                    break
                p.wake = loop.create_future()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(p.wake, 1.0)
                now = time.time()
                continue
            conn = p.free[node].popleft()
            assert conn.tr is not None
            if conn.tr.is_closing():  # closed by the server; connection_lost is on its way
                continue
            v = i % len(p.tpl)
            conn.t0 = time.time()
            conn.n = i
            p.lag.append(conn.t0 - (t0 + i / rate))
            conn.tr.write(p.heads[node][v] + p.tpl[v].body(i))
            p.pending += 1
            i += 1
    send_end = time.time()
    deadline = time.time() + 30
    while p.pending and time.time() < deadline and p.lost < int(cfg["conns"]):
        p.wake = loop.create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(p.wake, 1.0)
    wall = time.time() - wall0
    cpu = cpu_self() - cpu0
    with open(cfg["out_path"], "wb") as f:
        p.sent_ids.tofile(f)
        p.sent_at.tofile(f)
    lat = sorted(p.post_lat)
    lag = sorted(p.lag)
    return {
        "mode": "pace",
        "target_rate": rate,
        "sent": i,
        "accepted": len(p.sent_ids),
        "achieved_rate": i / (send_end - t0),
        "statuses": p.statuses,
        "pending_left": p.pending,
        "post_p50_ms": (pct(lat, 50) or 0) * 1000,
        "post_p99_ms": (pct(lat, 99) or 0) * 1000,
        "lag_p99_ms": (pct(lag, 99) or 0) * 1000,
        "lag_max_ms": (lag[-1] if lag else 0) * 1000,
        "blocked": p.blocked,
        "lost_connections": p.lost,
        "cpu": cpu / wall,
    }


# -- SSE readers (end-to-end phase) ----------------------------------------------------------------


class SseConn(asyncio.Protocol):
    """One /api/v1/stream client; reconnects with Last-Event-ID if the server ends it."""

    sid_re = re.compile(rb'"signal_id":(\d+)')

    def __init__(self, r: SseReaders, idx: int, last_id: int | None) -> None:
        self.r = r
        self.idx = idx
        self.port = r.port_of(idx)
        self.last_id = last_id
        self.tail = b""
        self.head_done = False
        self.subscribed = False
        self.tr: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.tr = transport  # type: ignore[assignment]
        extra = f"Last-Event-ID: {self.last_id}\r\n" if self.last_id is not None else ""
        transport.write(  # type: ignore[attr-defined]
            f"GET /api/v1/stream HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Accept: text/event-stream\r\n{self.r.auth}{extra}\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        ts = time.time()
        buf = self.tail + data if self.tail else data
        if not self.head_done:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                self.tail = buf
                return
            if buf[9:12] != b"200":
                self.r.errors += 1
                self.r.bad_sample = buf[:600].decode("utf-8", "replace")
            self.head_done = True
            buf = buf[i + 4 :]
        ended = buf.endswith(b"\r\n0\r\n\r\n")
        k = buf.rfind(b"\n\n")
        if k < 0:
            self.tail = buf
            if ended:
                self.reconnect()
            return
        complete, self.tail = buf[: k + 2], buf[k + 2 :]
        if not self.subscribed and b"retry:" in complete:
            self.subscribed = True
            if self.idx not in self.r.seen:
                self.r.seen.add(self.idx)
                self.r.subscribed += 1
        r = self.r
        n0 = len(r.ids)
        r.ids.extend(int(m) for m in self.sid_re.findall(complete))
        got = len(r.ids) - n0
        if got:
            r.times.extend([ts] * got)
            r.clients.extend([self.idx] * got)
            r.count[self.idx] += got
            j = complete.rfind(b"\nid: ")
            if j >= 0:
                self.last_id = int(complete[j + 5 : complete.index(b"\n", j + 5)])
        if ended:
            self.reconnect()

    def reconnect(self) -> None:
        """The server ended the stream (this client was dropped for falling behind)."""
        self.r.reconnects += 1
        self.tail = b""
        assert self.tr is not None
        self.tr.close()
        asyncio.get_running_loop().create_task(self.r.connect(self.idx, self.last_id or 0))

    def connection_lost(self, exc: Exception | None) -> None:
        pass


class SseReaders:
    """Reader ``idx`` listens on ``ports[idx % len(ports)]``."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.ports = ports_of(cfg)
        self.n = int(cfg["clients"])
        token = cfg.get("token")
        self.auth = f"Authorization: Bearer {token}\r\n" if token else ""
        self.seen: set[int] = set()
        self.ids = array("q")
        self.times = array("d")
        self.clients = array("i")
        self.count = [0] * self.n
        self.subscribed = 0
        self.reconnects = 0
        self.errors = 0
        self.bad_sample: str | None = None
        self.conns: list[asyncio.Transport] = []

    def port_of(self, idx: int) -> int:
        return self.ports[idx % len(self.ports)]

    async def connect(self, idx: int, last_id: int | None) -> None:
        loop = asyncio.get_running_loop()
        tr, _ = await loop.create_connection(
            lambda: SseConn(self, idx, last_id), HOST, self.port_of(idx)
        )
        self.conns.append(tr)


async def run_sse(cfg: dict[str, Any]) -> dict[str, Any]:
    r = SseReaders(cfg)
    for i in range(r.n):
        await r.connect(i, None)
    deadline = time.time() + 30
    while r.subscribed < r.n and time.time() < deadline:
        await asyncio.sleep(0.02)
    with open(cfg["ready_path"], "w") as f:
        f.write(str(r.subscribed))
    cpu0, wall0 = cpu_self(), time.time()
    stop_path = cfg["stop_path"]
    while not os.path.exists(stop_path):
        await asyncio.sleep(0.05)
        if time.time() - wall0 > float(cfg.get("max_seconds", 600)):
            break
    expected = 0
    try:
        with open(stop_path) as f:
            expected = int(f.read().strip() or 0)
    except (OSError, ValueError):
        pass
    drain_end = time.time() + float(cfg.get("drain_seconds", 10))
    while time.time() < drain_end and min(r.count) < expected:
        await asyncio.sleep(0.05)
    wall = time.time() - wall0
    cpu = cpu_self() - cpu0
    for tr in r.conns:
        tr.close()
    with open(cfg["out_path"], "wb") as f:
        r.ids.tofile(f)
        r.times.tofile(f)
        r.clients.tofile(f)
    return {
        "mode": "sse",
        "clients": r.n,
        "subscribed": r.subscribed,
        "deliveries": len(r.ids),
        "expected_per_client": expected,
        "min_per_client": min(r.count),
        "max_per_client": max(r.count),
        "reconnects": r.reconnects,
        "errors": r.errors,
        "bad_sample": r.bad_sample,
        "cpu": cpu / wall,
    }


def main() -> None:
    global AUTH
    mode, cfg = sys.argv[1], json.loads(sys.argv[2])
    if cfg.get("token"):
        AUTH = f"Authorization: Bearer {cfg['token']}\r\n"
    install_uvloop()
    runner = {"closed": run_closed, "pace": run_pace, "sse": run_sse}[mode]
    result = asyncio.run(runner(cfg))
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
