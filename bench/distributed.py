"""alarmdesk ingest in distributed mode with 1, 2 and 3 nodes on this machine (issue 12).

    .venv/bin/python bench/distributed.py            # default run, about 5 minutes
    .venv/bin/python bench/distributed.py --quick    # smoke run, under 2 minutes
    .venv/bin/python bench/distributed.py --nodes 2 --rate 400 --seconds 10
    .venv/bin/python bench/distributed.py --nodes 2 --intake standbys   # the writer node
                                                      # takes no HTTP intake (a diagnostic)

For each N: a fresh PostgreSQL database (a copy of a template this run prepares: schema,
the demo city, two tokens) and a fresh JetStream stream of its own name, N ``alarmdesk
serve`` nodes on 127.0.0.1 (node 1 starts first and takes the writer lease; the others are
standbys, docs/operations.md "Several nodes"). Then two phases:

a. **Full speed.** Several load-generator processes (bench/loadgen.py ``closed``, the signal
   mix of bench/_signals.py: half keyed panels that fold into open incidents) keep
   single-signal POSTs going on keep-alive connections spread over every node in turn, for
   a fixed time after a warm-up. *Acknowledged* is 202 "queued" answers per second (the
   signal is in JetStream). *Committed* is rows in PostgreSQL per second, sampled twice a
   second: during the load window, and from the load's start until the backlog left in the
   log is drained. Every acknowledged signal must end up stored (counted by key prefix).
b. **Paced.** ``--rate`` signals/s (bench/loadgen.py ``pace``, request i to node i mod N) while
   SSE consoles (a supervisor of every desk) listen on every node: the latency from the
   POST's send to the event naming the signal arriving at each console, per node. On a
   standby that is the relayed path: intake node -> JetStream -> the writer node's consumer
   -> commit -> NATS events subject -> the standby's hub (bus/relay.py) -> its consoles. A
   delivery that never arrives is counted (it must be 0) and ranks as infinite in the
   percentiles. The 202 says "queued" with the key only, so a POST is matched to its signal
   id through the key, in the database, after the run.

CPU is sampled by role over the load window: the nodes, nats-server, every postgres
process, the load generators, and the rest of the machine. Nothing is pinned: the nodes,
NATS, PostgreSQL and the load generators share every core, as they would on one machine.

What bounds the scaling here:
- **One writer commits.** In this slice of distributed mode only the node holding the
  ``writer`` lease consumes the log and commits (the pipeline's in-memory state is one
  writer's). More nodes add intake (HTTP parsing, validation, the JetStream publish and its
  acknowledgement), never commit capacity: committed signals/s is at best flat in N.
- **Intake scales with nodes** only while there are idle cores for them; a standby's intake
  is the same work as the writer node's intake, minus the commit.
- **A node is one process**: its event loop and its writer thread share one GIL, so a node
  uses about one core at most. On the writer node, intake at full speed takes that core from
  the commits: the log's backlog is committed mostly after the load stops (``--intake
  standbys`` shows the writer without intake on its own loop).
- **Two cores are shared** by N nodes, nats-server (file storage, one fsync'd stream),
  PostgreSQL and the load generators. Past one node, a new node's intake takes CPU from the
  writer, so acknowledged may rise while committed falls, and the backlog in the log grows.

Prints a table per N, a summary, and one JSON line. Exits 0 unless the benchmark itself
could not run. See bench/README.md, "Distributed mode".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import _signals  # noqa: E402
import ingest  # noqa: E402  (processes, servers, CPU accounting)
from ingest import PY, AlarmdeskServer, Cores, Procs, cpu_of, machine_busy  # noqa: E402
from loadgen import pct  # noqa: E402
from peers import PostgresStore  # noqa: E402  (a template database, fresh copies of it)

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"  # as tests/conftest.py
NATS_URL = "nats://127.0.0.1:4222"


@dataclass(frozen=True)
class Profile:
    warmup: float  # seconds of full-speed load before the window
    seconds: float  # the full-speed window
    pace_seconds: float  # the paced phase
    drain_timeout: float  # at most this long for the log's backlog to be committed


FULL = Profile(warmup=3, seconds=15, pace_seconds=20, drain_timeout=240)
QUICK = Profile(warmup=1, seconds=4, pace_seconds=4, drain_timeout=60)


# -- what the machine does --------------------------------------------------------------------


def pids_named(*names: str) -> list[int]:
    """Processes whose command name is one of ``names`` (nats-server, postgres), read from
    /proc only to add up their CPU time."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError), open(f"/proc/{entry}/comm") as f:
            if f.read().strip() in names:
                out.append(int(entry))
    return out


def cpu_by_pid(*names: str) -> dict[int, float]:
    return {p: cpu_of(p) or 0.0 for p in pids_named(*names)}


def cpu_between(a: dict[int, float], b: dict[int, float]) -> float:
    """CPU seconds a set of processes used between two readings: of those alive at the
    second (one that started in between counts from 0; one that exited is not counted,
    rather than making the sum fall)."""
    return sum(cpu - a.get(pid, 0.0) for pid, cpu in b.items())


@dataclass(frozen=True)
class Sample:
    at: float  # time.time()
    rows: int  # signals stored since the run's start (by id)
    nodes: tuple[float, ...]  # CPU seconds of each node
    nats: dict[int, float]
    pg: dict[int, float]  # every postgres process: backends come and go
    busy: float  # machine_busy()


class Sampler:
    """Twice a second, in a thread: rows stored (the largest signal id: the writer gives ids
    one after another) and CPU seconds by role."""

    def __init__(self, url: str, node_pids: list[int], every: float = 0.5) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        self.sql = sa.text("SELECT coalesce(max(id), 0) FROM signals")
        self.node_pids = node_pids
        self.every = every
        self.samples: list[Sample] = []
        self.base = self._max_id()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _max_id(self) -> int:
        with self.engine.connect() as c:
            return int(c.execute(self.sql).scalar() or 0)

    def take(self) -> Sample:
        s = Sample(
            time.time(),
            self._max_id() - self.base,
            tuple(cpu_of(p) or 0.0 for p in self.node_pids),
            cpu_by_pid("nats-server"),
            cpu_by_pid("postgres"),
            machine_busy(),
        )
        self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with contextlib.suppress(Exception):
                self.take()

    def start(self) -> None:
        self.take()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.engine.dispose()

    def at(self, t: float) -> Sample:
        """The sample nearest to ``t``."""
        return min(self.samples, key=lambda s: abs(s.at - t))


def usage(a: Sample, b: Sample) -> dict[str, Any]:
    """Cores each role used between two samples."""
    dt = b.at - a.at
    nodes = [(y - x) / dt for x, y in zip(a.nodes, b.nodes, strict=True)]
    return {
        "nodes": nodes,
        "nats": cpu_between(a.nats, b.nats) / dt,
        "pg": cpu_between(a.pg, b.pg) / dt,
        "machine": (b.busy - a.busy) / dt,
    }


# -- the cluster ------------------------------------------------------------------------------


class Cluster:
    """N ``alarmdesk serve`` nodes on one fresh database and one fresh stream."""

    def __init__(self, procs: Procs, store: PostgresStore, n: int, nats_url: str, tag: str) -> None:
        self.procs = procs
        self.store = store
        self.nats_url = nats_url
        self.stream = f"BENCH_{tag}_{uuid.uuid4().hex[:8]}"
        self.url = store.database()
        config = procs.tmp / f"cluster-{tag}.toml"
        config.write_text(f'[nats]\nstream = "{self.stream}"\n')
        env = {"ALARMDESK_NATS_URL": nats_url, "ALARMDESK_CONFIG": str(config)}
        self.nodes: list[AlarmdeskServer] = []
        self.roles: list[str] = []
        try:
            # The first takes the writer lease before the others start: they are standbys.
            self.nodes.append(AlarmdeskServer(procs, None, f"{tag}-node-1", self.url, env))
            self.roles.append(wait_role(self.nodes[0], {"writer"}))
            # the standbys start side by side (each imports the app: seconds of CPU)
            starting = [
                threading.Thread(target=self._start, args=(f"{tag}-node-{i + 1}", env))
                for i in range(1, n)
            ]
            for th in starting:
                th.start()
            for th in starting:
                th.join()
            if len(self.nodes) != n:
                raise RuntimeError(f"{n - len(self.nodes)} standby node(s) did not start")
            self.nodes[1:] = sorted(self.nodes[1:], key=lambda s: s.log.name)
            self.roles[1:] = [wait_role(s, {"standby"}) for s in self.nodes[1:]]
        except BaseException:
            self.close()
            raise

    def _start(self, name: str, env: dict[str, str]) -> None:
        try:
            self.nodes.append(AlarmdeskServer(self.procs, None, name, self.url, env))
        except Exception as exc:
            print(f"   {name} failed: {exc}", file=sys.stderr, flush=True)

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.nodes]

    @property
    def pids(self) -> list[int]:
        return [s.pid for s in self.nodes]

    def close(self) -> None:
        """Stops the standbys, then the writer (so no standby takes over on the way out);
        deletes the stream and drops the database."""
        for node in reversed(self.nodes):
            with contextlib.suppress(Exception):
                node.stop()
        with contextlib.suppress(Exception):
            delete_stream(self.nats_url, self.stream)
        with contextlib.suppress(Exception):
            self.store.drop(self.url)


def wait_role(node: AlarmdeskServer, roles: set[str], timeout: float = 60) -> str:
    """Until the node's /readyz answers 200 in one of ``roles``."""
    import http.client

    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if node.proc.poll() is not None:
            raise RuntimeError(f"node exited ({node.proc.returncode}):\n{ingest.tail(node.log)}")
        with contextlib.suppress(OSError, ValueError):
            c = http.client.HTTPConnection("127.0.0.1", node.port, timeout=5)
            c.request("GET", "/readyz")
            r = c.getresponse()
            last = r.read().decode()
            c.close()
            role = json.loads(last).get("role")
            if r.status == 200 and role in roles:
                return str(role)
        time.sleep(0.2)
    raise RuntimeError(f"node on {node.port} not ready as {roles}: {last}\n{ingest.tail(node.log)}")


def delete_stream(nats_url: str, stream: str) -> None:
    from alarmdesk.bus.jetstream import IntakeLog, LogSettings

    async def delete() -> None:
        log = IntakeLog(LogSettings(nats_url, stream))
        await log.connect()
        try:
            await log.delete_stream()
        finally:
            await log.close()

    asyncio.run(delete())


def count_keys(url: str, prefix: str) -> dict[str, int]:
    """Signal ids by idempotency key, for the keys that start with ``prefix``."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as c:
            rows = c.execute(
                sa.text("SELECT idempotency_key, id FROM signals WHERE idempotency_key LIKE :p"),
                {"p": prefix + "%"},
            ).all()
    finally:
        engine.dispose()
    return {str(k): int(i) for k, i in rows}


# -- a. full speed ----------------------------------------------------------------------------


def intake_ports(cluster: Cluster, intake: str) -> list[int]:
    """Where signals are posted: every node, or (``--intake standbys``, a diagnostic) the
    standbys only, so that the writer node's event loop serves no intake (with one node
    there is no standby: every node)."""
    if intake == "standbys" and len(cluster.ports) > 1:
        return cluster.ports[1:]
    return cluster.ports


def phase_full(
    procs: Procs,
    cluster: Cluster,
    prof: Profile,
    args: argparse.Namespace,
    occurred: str,
    token: str,
) -> dict[str, Any]:
    prefix = f"f{uuid.uuid4().hex[:8]}-"
    targets = intake_ports(cluster, args.intake)
    sampler = Sampler(cluster.url, cluster.pids)
    sampler.start()
    gens: list[subprocess.Popen[bytes]] = []
    try:
        for k in range(args.clients):
            cfg = {
                "ports": targets,
                "path": "/api/v1/signals",
                "conns": args.conns,
                "warmup": prof.warmup,
                "duration": prof.seconds,
                "seed": 1 + k,
                "occurred_at": occurred,
                "key_prefix": f"{prefix}{k}-",
                "token": token,
            }
            gens.append(
                procs.start(
                    [PY, str(BENCH / "loadgen.py"), "closed", json.dumps(cfg)],
                    procs.cores.all,
                    pipe=True,
                )
            )
        results = []
        for g in gens:
            out, err = g.communicate(timeout=prof.warmup + prof.seconds + 120)
            if g.returncode != 0:
                raise RuntimeError(f"loadgen failed ({g.returncode}): {err.decode()[-2000:]}")
            results.append(json.loads(out.decode().strip().splitlines()[-1]))
        load_end = time.time()
        acked_total = sum(r["accepted_total"] for r in results)
        # the backlog: until every acknowledged signal is stored, or no progress for 20 s
        deadline = time.monotonic() + prof.drain_timeout
        last, still_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            rows = sampler.take().rows
            if rows >= acked_total:
                break
            if rows != last:
                last, still_since = rows, time.monotonic()
            elif time.monotonic() - still_since > 20:
                break
            time.sleep(0.25)
        drained = sampler.take()
    finally:
        for g in gens:
            procs.stop(g)
        sampler.stop()
    stored = len(count_keys(cluster.url, prefix))
    w0 = max(r["window_wall"][0] for r in results)
    w1 = min(r["window_wall"][1] for r in results)
    s0, s1 = sampler.at(w0), sampler.at(w1)
    first = sampler.samples[0]
    statuses: dict[str, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    lat = [r["p99_ms"] for r in results]
    return {
        "clients": args.clients,
        "conns": args.conns,
        "intake": "standbys" if len(targets) < len(cluster.ports) else "all",
        "seconds": prof.seconds,
        "acked_per_s": sum(r["signals_per_s"] for r in results),
        "post_p50_ms": max(r["p50_ms"] for r in results),
        "post_p99_ms": max(lat),
        "committed_per_s_load": (s1.rows - s0.rows) / (s1.at - s0.at),
        "committed_per_s_overall": drained.rows / (drained.at - first.at),
        "drain_s": max(0.0, drained.at - load_end),
        "acked_total": acked_total,
        "stored": stored,
        "lost": max(0, acked_total - stored),
        "backlog_at_load_end": max(0, acked_total - sampler.at(load_end).rows),
        "statuses": statuses,
        "cpu": {**usage(s0, s1), "loadgen": sum(r["loadgen_cpu"] for r in results)},
        "rows_over_time": [
            [round(s.at - first.at, 2), s.rows]
            for s in sampler.samples[:: max(1, len(sampler.samples) // 60)]
        ],
    }


# -- b. paced, consoles on every node ---------------------------------------------------------


def phase_paced(
    procs: Procs,
    cluster: Cluster,
    prof: Profile,
    args: argparse.Namespace,
    occurred: str,
    tokens: dict[str, str],
) -> dict[str, Any]:
    tmp, n = procs.tmp, len(cluster.nodes)
    tag = uuid.uuid4().hex[:8]
    ready, stop = tmp / f"sse-{tag}.ready", tmp / f"sse-{tag}.stop"
    sse_out, post_out = tmp / f"sse-{tag}.bin", tmp / f"post-{tag}.bin"
    prefix = f"p{tag}-"
    clients = args.consoles * n
    drain = 20.0
    sse = None
    sampler = Sampler(cluster.url, cluster.pids, every=1.0)
    try:
        sse = procs.start(
            [
                PY,
                str(BENCH / "loadgen.py"),
                "sse",
                json.dumps(
                    {
                        "ports": cluster.ports,
                        "clients": clients,
                        "ready_path": str(ready),
                        "stop_path": str(stop),
                        "out_path": str(sse_out),
                        "drain_seconds": drain,
                        "max_seconds": prof.pace_seconds + 120,
                        "token": tokens["reader"],
                    }
                ),
            ],
            procs.cores.all,
            pipe=True,
        )
        deadline = time.monotonic() + 60
        while not ready.exists():
            if sse.poll() is not None:
                said = sse.stderr.read() if sse.stderr else b""
                raise RuntimeError(f"SSE readers did not start: {said.decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("SSE readers: not subscribed after 60 s")
            time.sleep(0.05)
        subscribed = int(ready.read_text() or 0)
        sampler.start()
        a = sampler.take()
        pace = ingest.run_loadgen(
            procs,
            "pace",
            {
                "ports": intake_ports(cluster, args.intake),
                "rate": args.rate,
                "duration": prof.pace_seconds,
                "conns": 8 * n,
                "seed": 2,
                "occurred_at": occurred,
                "key_prefix": prefix,
                "queued": True,
                "out_path": str(post_out),
                "token": tokens["intake"],
            },
            timeout=prof.pace_seconds + 90,
        )
        b = sampler.take()
        stop.write_text(str(pace["accepted"]))
        out, err = sse.communicate(timeout=drain + 60)
        if sse.returncode != 0:
            raise RuntimeError(f"SSE readers failed: {err.decode()[-2000:]}")
        readers = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        if sse is not None:
            procs.stop(sse)
        sampler.stop()
    nums, sent = ingest.read_sent(post_out)
    ids = count_keys(cluster.url, prefix)
    kw = _signals.KEY_WIDTH
    sent_at: dict[int, float] = {}
    for num, t in zip(nums, sent, strict=True):
        sid = ids.get(f"{prefix}{num:0{kw}d}")
        if sid is not None:
            sent_at[sid] = t
    got, at, who = ingest.read_deliveries(sse_out)
    seen: set[tuple[int, int]] = set()
    lat: list[list[float]] = [[] for _ in range(n)]
    for sid, t, c in zip(got, at, who, strict=True):
        s = sent_at.get(sid)
        if s is None or (sid, c) in seen:
            continue
        seen.add((sid, c))
        lat[c % n].append(t - s)
    per_node = []
    for i in range(n):
        consoles = len(range(i, clients, n))
        expected = pace["accepted"] * consoles
        missing = max(0, expected - len(lat[i]))
        per_node.append(
            {
                "node": i + 1,
                "role": cluster.roles[i],
                "consoles": consoles,
                "expected": expected,
                "delivered": len(lat[i]),
                "missing": missing,
                **percentiles(lat[i], missing),
            }
        )
    every = [x for node in lat for x in node]
    missing = sum(x["missing"] for x in per_node)
    return {
        "rate": args.rate,
        "seconds": prof.pace_seconds,
        "consoles_per_node": args.consoles,
        "subscribed": subscribed,
        "accepted": pace["accepted"],
        "stored": len(sent_at),
        "pace": pace,
        "readers": readers,
        "nodes": per_node,
        "missing": missing,
        **percentiles(every, missing),
        "cpu": usage(a, b),
    }


def percentiles(lat: list[float], missing: int) -> dict[str, float]:
    """p50/p99/max in ms; a delivery that never arrived ranks as infinite."""
    ranked = sorted(lat) + [math.inf] * missing
    return {
        f"{name}_ms": (pct(ranked, q) if ranked else math.inf) * 1000  # type: ignore[operator]
        for name, q in (("p50", 50), ("p99", 99), ("max", 100))
    }


# -- report -----------------------------------------------------------------------------------


def fmt(v: float | None, digits: int = 0) -> str:
    return ingest.fmt(v, digits)


def report_n(r: dict[str, Any]) -> None:
    n = r["n"]
    roles = ", ".join(f"{i + 1} {role}" for i, role in enumerate(r["roles"]))
    lines = [
        "",
        f"== {n} node{'s' if n > 1 else ''} ({roles}); load average before "
        f"{' '.join(f'{x:.2f}' for x in r['loadavg_before'])}",
    ]
    f = r.get("full")
    if f:
        c = f["cpu"]
        lines += [
            f"a. full speed, {f['clients']} load processes x {f['conns']} conns over "
            f"{'the standbys' if f['intake'] == 'standbys' else 'every node'}, "
            f"{f['seconds']:.0f} s",
            f"   acknowledged (202 queued)   {fmt(f['acked_per_s']):>8} sig/s   POST->202 p50 "
            f"{f['post_p50_ms']:.1f} / p99 {f['post_p99_ms']:.1f} ms",
            f"   committed during the load   {fmt(f['committed_per_s_load']):>8} sig/s   "
            f"backlog at the load's end {fmt(f['backlog_at_load_end'])}, drained in "
            f"{f['drain_s']:.1f} s",
            f"   committed start -> drained  {fmt(f['committed_per_s_overall']):>8} sig/s   "
            f"acknowledged {fmt(f['acked_total'])}, stored {fmt(f['stored'])}, "
            f"lost {fmt(f['lost'])}",
            f"   cores used: nodes {' + '.join(f'{x:.2f}' for x in c['nodes'])}, nats "
            f"{c['nats']:.2f}, postgres {c['pg']:.2f}, load gen {c['loadgen']:.2f}, machine "
            f"{c['machine']:.2f} of {r['cpus']}",
        ]
        bad = {k: v for k, v in f["statuses"].items() if not str(k).startswith("2")}
        if bad:
            lines.append(f"   WARNING non-2xx answers {bad}")
    p = r.get("paced")
    if p:
        pace, c = p["pace"], p["cpu"]
        lines += [
            f"b. paced {p['rate']:.0f}/s x {p['seconds']:.0f} s ({fmt(pace['achieved_rate'])} "
            f"sent/s, {fmt(p['accepted'])} queued, {fmt(p['stored'])} stored), "
            f"{p['consoles_per_node']} SSE consoles per node ({p['subscribed']} subscribed), "
            f"POST->202 p50 {pace['post_p50_ms']:.1f} / p99 {pace['post_p99_ms']:.1f} ms",
        ]
        for node in p["nodes"]:
            lines.append(
                f"   node {node['node']} ({node['role']:<7}) POST send -> console  p50 "
                f"{fmt(node['p50_ms']):>5} / p99 {fmt(node['p99_ms']):>5} / max "
                f"{fmt(node['max_ms']):>5} ms   delivered {fmt(node['delivered'])} of "
                f"{fmt(node['expected'])}, never {fmt(node['missing'])}"
            )
        lines.append(
            f"   cores used: nodes {' + '.join(f'{x:.2f}' for x in c['nodes'])}, nats "
            f"{c['nats']:.2f}, postgres {c['pg']:.2f}, machine {c['machine']:.2f}; SSE "
            f"reconnects {p['readers']['reconnects']}, errors {p['readers']['errors']}"
        )
    for e in r.get("errors", []):
        lines.append(f"   ERROR in {e['phase']}: {e['error']}")
    print("\n".join(lines), flush=True)


def summary(res: dict[str, Any]) -> None:
    runs = res["runs"]
    one = next((r["full"]["acked_per_s"] for r in runs if r["n"] == 1 and r.get("full")), None)
    head = (
        f"{'N':>2} {'acked/s':>9} {'x N=1':>6} {'committed/s':>12} {'overall/s':>10} "
        f"{'drain s':>8} {'lost':>5}   {'writer p50/p99 ms':>18} {'standby p50/p99 ms':>19} "
        f"{'never':>6}"
    )
    lines = ["", "summary", head, "-" * len(head)]
    for r in runs:
        f, p = r.get("full") or {}, r.get("paced") or {}
        writer = [x for x in p.get("nodes", []) if x["role"] == "writer"]
        standby = [x for x in p.get("nodes", []) if x["role"] != "writer"]

        def lat(xs: list[dict[str, Any]]) -> str:
            if not xs:
                return "-"
            return f"{fmt(max(x['p50_ms'] for x in xs))} / {fmt(max(x['p99_ms'] for x in xs))}"

        lines.append(
            f"{r['n']:>2} {fmt(f.get('acked_per_s')):>9} "
            f"{fmt(f['acked_per_s'] / one if f and one else None, 2):>6} "
            f"{fmt(f.get('committed_per_s_load')):>12} {fmt(f.get('committed_per_s_overall')):>10} "
            f"{fmt(f.get('drain_s'), 1):>8} {fmt(f.get('lost')):>5}   {lat(writer):>18} "
            f"{lat(standby):>19} {fmt(p.get('missing')):>6}"
        )
    la = res["meta"]["loadavg_end"]
    lines += [
        "",
        f"{res['meta']['cpus']} CPUs, load average at the end {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} "
        "(1/5/15 min). committed/s: rows per second during the load window; overall/s: "
        "from the load's start until the backlog was drained. standby p50/p99: the worst "
        "standby. never: deliveries that never arrived (must be 0).",
    ]
    print("\n".join(lines), flush=True)


def meta(args: argparse.Namespace) -> dict[str, Any]:
    git = subprocess.run(
        ["git", "-C", str(BENCH.parent), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "loadavg_start": os.getloadavg(),
        "git": git,
        "command": " ".join([Path(PY).name, *sys.argv]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short phases: a smoke run (< 2 min)")
    ap.add_argument("--nodes", default="1,2,3", help="the cluster sizes to run, e.g. 1,3")
    ap.add_argument("--rate", type=float, default=200.0, help="signals/s of the paced phase")
    ap.add_argument("--seconds", type=float, default=None, help="seconds of each phase's window")
    ap.add_argument("--clients", type=int, default=2, help="load-generator processes (phase a)")
    ap.add_argument("--conns", type=int, default=32, help="connections per load process (a)")
    ap.add_argument("--consoles", type=int, default=10, help="SSE consoles per node (b)")
    ap.add_argument(
        "--intake",
        choices=("all", "standbys"),
        default="all",
        help="post to every node (default) or, a diagnostic, to the standbys only",
    )
    ap.add_argument("--database-url", default=PG_ADMIN_URL, help="a PostgreSQL admin URL")
    ap.add_argument("--nats-url", default=NATS_URL, help="NATS with JetStream")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (node logs)")
    args = ap.parse_args()
    prof = QUICK if args.quick else FULL
    if args.seconds:
        prof = Profile(prof.warmup, args.seconds, args.seconds, prof.drain_timeout)
    sizes = [int(x) for x in args.nodes.split(",") if x.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="alarmdesk-distbench-"))
    procs = Procs(tmp, Cores(pin=False))
    occurred = datetime.now(UTC).replace(microsecond=0).isoformat()
    res: dict[str, Any] = {"meta": meta(args), "runs": [], "errors": []}
    started = time.monotonic()

    def say(what: str) -> None:
        print(f"[{time.monotonic() - started:5.0f}s] {what}", file=sys.stderr, flush=True)

    store = None
    try:
        say("template database (alarmdesk db upgrade, demo load, tokens)")
        store = PostgresStore(procs, args.database_url)
        tokens = store.tokens
        for n in sizes:
            run: dict[str, Any] = {"n": n, "cpus": os.cpu_count(), "errors": []}
            run["loadavg_before"] = os.getloadavg()
            say(f"{n} node(s): starting")
            try:
                cluster = Cluster(procs, store, n, args.nats_url, f"n{n}")
            except Exception as exc:
                run["errors"].append({"phase": "start", "error": f"{type(exc).__name__}: {exc}"})
                res["runs"].append(run)
                report_n({**run, "roles": []})
                continue
            run["roles"] = cluster.roles
            try:
                for phase in ("full", "paced"):
                    say(f"{n} node(s): {phase}")
                    try:
                        if phase == "full":
                            run[phase] = phase_full(
                                procs, cluster, prof, args, occurred, tokens["intake"]
                            )
                        else:
                            run[phase] = phase_paced(procs, cluster, prof, args, occurred, tokens)
                    except Exception as exc:  # a measurement reports what failed, goes on
                        run["errors"].append(
                            {"phase": phase, "error": f"{type(exc).__name__}: {exc}"}
                        )
                        say(f"   failed: {exc}")
            finally:
                say(f"{n} node(s): stopping, deleting the stream, dropping the database")
                cluster.close()
            res["runs"].append(run)
            report_n(run)
    finally:
        procs.stop_all()
        if store is not None:
            store.close()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res["meta"]["loadavg_end"] = os.getloadavg()
    res["seconds"] = time.monotonic() - started
    summary(res)
    print(json.dumps(ingest._jsonable(res)), flush=True)


if __name__ == "__main__":
    main()
