"""alarmdesk side by side with Prometheus Alertmanager: the same load, the same cores.

    .venv/bin/python bench/peers.py                     # SQLite, pinned, 3 rounds (~5 min)
    .venv/bin/python bench/peers.py --quick             # smoke run (~1 min)
    .venv/bin/python bench/peers.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/peers.py --scale             # no pinning: servers on 1, then 2 cores

Alertmanager (Debian package ``prometheus-alertmanager``) runs on 127.0.0.1 with clustering
off, one null receiver and its storage in the temp dir; alarmdesk is a real ``alarmdesk
serve`` on a fresh SQLite file (or a fresh PostgreSQL database made from a template database
this run creates and drops). Both are driven by bench/loadgen.py ``closed`` with the same
connection count: single alerts (``POST /api/v2/alerts`` with an array of one, against
``POST /api/v1/signals``) and batches of 100 and 1,000 (one array, against
``/api/v1/signals/batch``). Rounds interleave the two sides; every run starts a fresh server.

Counted after every run: the 2xx answers (in signals) each side gave, what Alertmanager says
it received (its ``alertmanager_alerts_received_total``), and the rows alarmdesk's signals
table gained -- every 202 must be a stored row. Without the binary the run is skipped with
a message (exit 0); it is never downloaded. See bench/README.md, "Alertmanager side by side".
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import ingest  # noqa: E402  (the processes, cores, servers and load generator it drives)
import loadgen  # noqa: E402  (the process tree of a server with HTTP workers)
from ingest import AlarmdeskServer, Cores, Procs, cli, free_port, wait_http  # noqa: E402

AM_BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's
AM_CONFIG = """\
route:
  receiver: "null"
receivers:
  - name: "null"
"""
TARGETS = {"single": 0.6, "batch100": 1.0}  # alarmdesk / Alertmanager, issue 11


@dataclass(frozen=True)
class Load:
    name: str
    batch: int  # 0: one alert per request
    conns: int


@dataclass(frozen=True)
class Profile:
    warmup: float
    seconds: float
    rounds: int


FULL = Profile(warmup=2, seconds=8, rounds=3)
QUICK = Profile(warmup=1, seconds=3, rounds=1)


def find_alertmanager(given: str | None) -> str | None:
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in AM_BINARIES:
        path = shutil.which(name)
        if path:
            return path
    return None


class AlertmanagerServer:
    """Alertmanager on 127.0.0.1, clustering off, a null receiver, storage in the temp dir."""

    def __init__(self, procs: Procs, binary: str, name: str) -> None:
        self.procs = procs
        self.port = free_port()
        data = procs.tmp / name
        data.mkdir()
        config = data / "alertmanager.yml"
        config.write_text(AM_CONFIG)
        self.log = procs.tmp / f"{name}.log"
        self.proc = procs.start(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={data}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            procs.cores.server,
            log=self.log.name,
        )
        wait_http(self.port, "/-/ready", self.proc, self.log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def received(self) -> int | None:
        """Alerts Alertmanager counted as received (every status), from its /metrics."""
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
        except OSError:
            return None
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("alertmanager_alerts_received_total")
        )

    def stop(self) -> None:
        self.procs.stop(self.proc)


def rss_mib(pid: int) -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


# -- the database alarmdesk runs on -------------------------------------------------------------


class SqliteStore:
    """A prepared SQLite file; every server gets its own copy."""

    kind = "SQLite"
    args: tuple[str, ...] = ()  # more options of `alarmdesk serve` (--workers N)
    env: dict[str, str] | None = None  # its ALARMDESK_CONFIG (--serve-config)

    def __init__(self, procs: Procs) -> None:
        self.procs = procs
        self.template = procs.tmp / "template.db"
        url = f"sqlite:///{self.template}"
        cli(procs, "db", "upgrade", "--database-url", url)
        cli(procs, "demo", "load", "--database-url", url)
        self.tokens = ingest.make_tokens(self.template)
        self.base = self._count(url)
        self.n = 0

    def server(self) -> AlarmdeskServer:
        self.n += 1
        return AlarmdeskServer(
            self.procs, self.template, f"alarmdesk-{self.n}", args=self.args, env=self.env
        )

    def stored(self, srv: AlarmdeskServer) -> int:
        return self._count(srv.url) - self.base

    @staticmethod
    def _count(url: str) -> int:
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return int(con.execute("SELECT count(*) FROM signals").fetchone()[0])
        finally:
            con.close()

    def close(self) -> None:
        pass


class PostgresStore:
    """A template database prepared once (upgrade, demo load, tokens); every server gets a
    fresh database copied from it (CREATE DATABASE ... TEMPLATE). All are dropped at the end."""

    kind = "PostgreSQL"
    args: tuple[str, ...] = ()  # more options of `alarmdesk serve` (--workers N)
    env: dict[str, str] | None = None  # its ALARMDESK_CONFIG (--serve-config)

    def __init__(self, procs: Procs, admin_url: str) -> None:
        import sqlalchemy as sa

        self.procs = procs
        self.admin_url = admin_url
        self.admin = sa.create_engine(
            admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
            isolation_level="AUTOCOMMIT",
        )
        self.prefix = f"alarmdesk_peers_{uuid.uuid4().hex[:8]}"
        self.made: list[str] = []
        with self.admin.connect() as c:
            self.settings = {
                k: c.exec_driver_sql(f"SHOW {k}").scalar()
                for k in ("synchronous_commit", "fsync", "server_version")
            }
        if self.settings["synchronous_commit"] != "on" or self.settings["fsync"] != "on":
            raise RuntimeError(f"PostgreSQL is not durable here: {self.settings}")
        self.template = self._create(f"{self.prefix}_tpl")
        url = self.url(self.template)
        cli(procs, "db", "upgrade", "--database-url", url)
        cli(procs, "demo", "load", "--database-url", url)
        self.tokens = ingest.make_tokens(url)
        self.base = self._count(url)
        self.n = 0

    def url(self, db: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + db

    def _create(self, name: str, template: str | None = None) -> str:
        with self.admin.connect() as c:
            c.exec_driver_sql(
                f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
            )
        self.made.append(name)
        return name

    def database(self) -> str:
        """The URL of a fresh copy of the template (dropped in ``close``, or ``drop``)."""
        self.n += 1
        return self.url(self._create(f"{self.prefix}_{self.n}", template=self.template))

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self.admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.made:
            self.made.remove(name)

    def server(self) -> AlarmdeskServer:
        url = self.database()
        return AlarmdeskServer(
            self.procs, None, f"alarmdesk-{self.n}", url=url, args=self.args, env=self.env
        )

    def stored(self, srv: AlarmdeskServer) -> int:
        return self._count(srv.url) - self.base

    def _count(self, url: str) -> int:
        import sqlalchemy as sa

        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            with engine.connect() as c:
                return int(c.exec_driver_sql("SELECT count(*) FROM signals").scalar() or 0)
        finally:
            engine.dispose()

    def close(self) -> None:
        with self.admin.connect() as c:
            for name in reversed(self.made):
                with contextlib.suppress(Exception):
                    c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


# -- one run ------------------------------------------------------------------------------------


def drive(
    procs: Procs, port: int, pid: int, path: str, fmt: str, load: Load, prof: Profile, occ: str
) -> dict[str, Any]:
    cfg = ingest.closed_cfg(
        port, path, load.conns, prof.warmup, prof.seconds, occ, pid, batch=load.batch
    )
    cfg["format"] = fmt
    return ingest.run_loadgen(procs, "closed", cfg, timeout=prof.warmup + prof.seconds + 120)


def run_alertmanager(
    procs: Procs, binary: str, load: Load, prof: Profile, occ: str, n: int
) -> dict[str, Any]:
    srv = AlertmanagerServer(procs, binary, f"am-{n}")
    try:
        r = drive(procs, srv.port, srv.pid, "/api/v2/alerts", "alertmanager", load, prof, occ)
        r["received"] = srv.received()
        r["rss_mib"] = rss_mib(srv.pid)
    finally:
        srv.stop()
    r["held"] = r["received"]
    return r


THREAD_CPU = (
    *("loop user", "loop sys", "others user", "others sys"),
    *("workers user", "workers sys"),
)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a process by thread: its main thread (alarmdesk's event loop: HTTP,
    streams) and all the others (the writer, mostly), user and system (kernel) time apart;
    its children's (``--workers``: the HTTP workers) in all."""
    out = dict.fromkeys(THREAD_CPU, 0.0)
    for proc in loadgen.tree(pid):
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{proc}/task"):
                times = loadgen.user_sys(f"/proc/{proc}/task/{tid}/stat")
                if times is None:  # a thread that ended meanwhile
                    continue
                who = "workers" if proc != pid else "loop" if int(tid) == pid else "others"
                out[f"{who} user"] += times[0]
                out[f"{who} sys"] += times[1]
    return out


def run_alarmdesk(
    procs: Procs, store: SqliteStore | PostgresStore, load: Load, prof: Profile, occ: str
) -> dict[str, Any]:
    srv = store.server()
    path = "/api/v1/signals/batch" if load.batch else "/api/v1/signals"
    try:
        before = thread_cpu(srv.pid)
        r = drive(procs, srv.port, srv.pid, path, "alarmdesk", load, prof, occ)
        after = thread_cpu(srv.pid)
        r["rss_mib"] = rss_mib(srv.pid)
    finally:
        srv.stop()
    n = r["accepted_total"]  # over the whole drive, warm-up included, as the CPU here
    r["us_per_signal"] = {k: (after[k] - before[k]) / n * 1e6 if n else None for k in THREAD_CPU}
    r["held"] = store.stored(srv)
    return r


# -- summary ------------------------------------------------------------------------------------


def med(values: list[float | None]) -> float | None:
    vs = [v for v in values if v is not None]
    return statistics.median(vs) if vs else None


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "sig_per_s": med([r["signals_per_s"] for r in runs]),
        "rounds": [r["signals_per_s"] for r in runs],
        "p50_ms": med([r["p50_ms"] for r in runs]),
        "p99_ms": med([r["p99_ms"] for r in runs]),
        "server_cpu": med([r["server_cpu"] for r in runs]),
        "per_cpu": med(
            [r["signals_per_s"] / r["server_cpu"] if r.get("server_cpu") else None for r in runs]
        ),
        "accepted": sum(r["accepted_total"] for r in runs),
        "held": sum(r["held"] or 0 for r in runs),
        "non_2xx": sum(v for r in runs for k, v in r["statuses"].items() if not k.startswith("2")),
        "bad_sample": next((r["bad_sample"] for r in runs if r.get("bad_sample")), None),
        "rss_mib": max((r.get("rss_mib") or 0 for r in runs), default=None),
        "rest": med([r["machine_busy"] - r["server_cpu"] - r["loadgen_cpu"] for r in runs]),
        "gen_cpu": med([r["loadgen_cpu"] for r in runs]),
        "us_per_signal": {  # alarmdesk only: its CPU per signal by thread (thread_cpu)
            k: med([r["us_per_signal"][k] for r in runs])
            for k in THREAD_CPU
            if all("us_per_signal" in r for r in runs)
        },
    }


def fmt(v: float | None, digits: int = 0) -> str:
    return "-" if v is None else f"{v:,.{digits}f}"


def report(res: dict[str, Any]) -> None:
    m = res["meta"]
    print(
        f"alarmdesk vs Prometheus Alertmanager - {m['date']} - {m['mode']} - {m['command']}\n"
        f"{m['cpus']} CPUs, {m['pinning']}; alarmdesk on {m['store']}; Alertmanager "
        f"{m['alertmanager']}; load average {m['loadavg_start']} at start, "
        f"{m['loadavg_end']} at end; {m['rounds']} round(s) of {m['seconds']:g} s "
        f"(+{m['warmup']:g} s warm-up), medians; git {m['git']}"
        + (f"; alarmdesk serve --workers {m['workers']}" if m.get("workers") else "")
    )
    for setting in res["settings"]:
        print(f"\n== {setting['label']}")
        print(
            f"{'load':<22}{'side':<13}{'sig/s':>9}  {'[rounds]':<26}{'p50/p99 ms':>16}"
            f"{'srv cpu':>8}{'sig/cpu-s':>11}{'rest':>6}{'accepted':>10}{'held':>10}{'RSS MiB':>8}"
        )
        for name, row in setting["loads"].items():
            for side in ("alertmanager", "alarmdesk"):
                s = row[side]
                held_label = fmt(s["held"])
                print(
                    f"{row['label']:<22}{side:<13}{fmt(s['sig_per_s']):>9}  "
                    f"{'[' + ', '.join(fmt(v) for v in s['rounds']) + ']':<26}"
                    f"{fmt(s['p50_ms'], 1) + ' / ' + fmt(s['p99_ms'], 1):>16}"
                    f"{fmt(s['server_cpu'], 2):>8}{fmt(s['per_cpu']):>11}{fmt(s['rest'], 2):>6}"
                    f"{fmt(s['accepted']):>10}{held_label:>10}{fmt(s['rss_mib']):>8}"
                )
            split = row["alarmdesk"].get("us_per_signal")
            if split:
                print(
                    f"{'':<22}alarmdesk CPU per signal, us: "
                    + ", ".join(f"{k} {fmt(v, 1)}" for k, v in split.items())
                )
            target = TARGETS.get(name)
            verdict = ""
            if target is not None and row["ratio"] is not None:
                verdict = f"  target >= {target:g}: {'PASS' if row['ratio'] >= target else 'MISS'}"
            print(
                f"{'':<22}ratio alarmdesk/Alertmanager {fmt(row['ratio'], 3)} "
                f"(per server CPU {fmt(row['ratio_per_cpu'], 3)}; rounds "
                f"{', '.join(fmt(v, 3) for v in row['ratio_rounds'])}){verdict}"
            )
    print()
    for w in res["warnings"]:
        print(f"WARNING {w}")
    for e in res["errors"]:
        print(f"ERROR in {e['phase']}: {e['error']}")
    print(
        "accepted: 2xx answers in signals over the whole runs (warm-up included); held: for "
        "Alertmanager its alerts_received_total, for alarmdesk the rows its signals table "
        "gained (must equal accepted).\nsrv cpu: cores the server used; sig/cpu-s: signals "
        "per second of server CPU; rest: cores the rest of the machine used (neighbours).\n"
        "CPU per signal: the server's CPU during the run (warm-up included) by thread over the "
        "signals accepted; loop is the main thread (HTTP, streams), others the writer and the "
        "rest; workers the HTTP worker processes (--workers); sys is kernel time (sockets, the "
        "WAL's flush)."
    )
    if res["meta"].get("mode") == "scale":
        print("scaling 2 cores / 1 core (sig/s): " + json.dumps(res.get("scaling")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s per load (smoke run)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3, quick 1)")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds of each run")
    ap.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server's admin URL (e.g. postgresql://postgres@127.0.0.1:5432/"
        "postgres): alarmdesk runs on fresh databases created there and dropped at the end",
    )
    ap.add_argument(
        "--scale",
        action="store_true",
        help="no pinning: each server on 1 core, then on 2 cores; the load generator on all",
    )
    ap.add_argument("--loads", default="single,batch100,batch1000", help="which loads to run")
    ap.add_argument("--conns", type=int, default=64, help="connections for single alerts")
    ap.add_argument("--batch-conns", type=int, default=8, help="connections for batches")
    ap.add_argument("--alertmanager", default=None, help="path of the Alertmanager binary")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="alarmdesk serve --workers N: HTTP worker processes in front of the writer process",
    )
    ap.add_argument(
        "--serve-config",
        default=None,
        help="a configuration file for alarmdesk serve (ALARMDESK_CONFIG), e.g. [writer] gather_ms",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    args = ap.parse_args()

    binary = find_alertmanager(args.alertmanager)
    if binary is None:
        msg = (
            "SKIPPED: Prometheus Alertmanager is not installed (no prometheus-alertmanager or "
            "alertmanager on PATH). Install the Debian package: "
            "apt-get install prometheus-alertmanager. The benchmark never downloads it."
        )
        print(msg, file=sys.stderr)
        print(json.dumps({"skipped": msg}))
        return

    base = FULL if not args.quick else QUICK
    prof = Profile(
        warmup=base.warmup,
        seconds=args.seconds or base.seconds,
        rounds=args.rounds or base.rounds,
    )
    all_loads = {
        "single": Load("single", 0, args.conns),
        "batch100": Load("batch100", 100, args.batch_conns),
        "batch1000": Load("batch1000", 1000, args.batch_conns),
    }
    loads = [all_loads[x] for x in args.loads.split(",") if x]
    cpus = sorted(os.sched_getaffinity(0))
    if args.scale:
        settings = [(f"server on {n} core(s), load generator not pinned", n) for n in (1, 2)]
        settings = [(label, n) for label, n in settings if n <= len(cpus)]
    else:
        settings = [("server on cpu 0, load generator on cpu 1 (taskset)", 0)]

    tmp = Path(tempfile.mkdtemp(prefix="alarmdesk-peers-"))
    cores = Cores(pin=True)
    procs = Procs(tmp, cores)
    occ = datetime.now(UTC).replace(microsecond=0).isoformat()
    version = "?"
    with contextlib.suppress(Exception):  # it prints to stdout or stderr depending on build
        v = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        version = (
            (v.stdout or v.stderr).splitlines()[0].split(" (")[0].replace("alertmanager, ", "")
        )
    meta = ingest.meta(args.quick, cores, tmp)
    res: dict[str, Any] = {
        "meta": {
            "date": meta["date"],
            "command": meta["command"],
            "git": meta["git"],
            "cpus": meta["cpus"],
            "mode": "scale" if args.scale else "pinned",
            "pinning": "not pinned (1 vs 2 cores)" if args.scale else "pinned",
            "store": "?",
            "alertmanager": version,
            "loadavg_start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
            "rounds": prof.rounds,
            "seconds": prof.seconds,
            "warmup": prof.warmup,
            "workers": args.workers,
            "serve_config": args.serve_config,
        },
        "settings": [],
        "warnings": [],
        "errors": [],
    }
    store: SqliteStore | PostgresStore | None = None
    started = time.monotonic()
    try:
        store = PostgresStore(procs, args.database_url) if args.database_url else SqliteStore(procs)
        if args.workers:
            store.args = ("--workers", str(args.workers))
        if args.serve_config:
            store.env = {"ALARMDESK_CONFIG": str(Path(args.serve_config).resolve())}
        res["meta"]["store"] = store.kind + (
            f" {store.settings['server_version']}, synchronous_commit="
            f"{store.settings['synchronous_commit']}"
            if isinstance(store, PostgresStore)
            else f" {sqlite3.sqlite_version} (WAL, synchronous=FULL)"
        )
        ingest.TOKENS.clear()
        ingest.TOKENS.update(store.tokens)
        n = 0
        for label, ncores in settings:
            if ncores:  # --scale: the server gets the first n CPUs, the generator all of them
                cores.pin = True
                cores.server = set(cpus[:ncores])
                cores.client = set(cpus)
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {
                ld.name: {"alertmanager": [], "alarmdesk": []} for ld in loads
            }
            for r in range(prof.rounds):
                for ld in loads:
                    sides = ["alertmanager", "alarmdesk"]
                    if r % 2:
                        sides.reverse()  # neither side always runs first
                    for side in sides:
                        n += 1
                        print(
                            f"[{time.monotonic() - started:5.0f}s] {label}: round {r + 1} "
                            f"{ld.name} {side}",
                            file=sys.stderr,
                            flush=True,
                        )
                        try:
                            got = (
                                run_alertmanager(procs, binary, ld, prof, occ, n)
                                if side == "alertmanager"
                                else run_alarmdesk(procs, store, ld, prof, occ)
                            )
                        except Exception as exc:  # report and go on with the other runs
                            res["errors"].append(
                                {
                                    "phase": f"{label} {ld.name} {side} round {r + 1}",
                                    "error": f"{type(exc).__name__}: {exc}",
                                }
                            )
                            continue
                        runs[ld.name][side].append(got)
            out: dict[str, Any] = {"label": label, "cores": ncores or None, "loads": {}}
            for ld in loads:
                sides_runs = runs[ld.name]
                if not sides_runs["alertmanager"] or not sides_runs["alarmdesk"]:
                    continue
                am, ad = summarise(sides_runs["alertmanager"]), summarise(sides_runs["alarmdesk"])
                if ad["accepted"] != ad["held"]:
                    res["warnings"].append(
                        f"{label} {ld.name}: alarmdesk answered 2xx for {ad['accepted']} "
                        f"signals but its signals table gained {ad['held']} rows"
                    )
                for side, s in (("alertmanager", am), ("alarmdesk", ad)):
                    if s["non_2xx"]:
                        res["warnings"].append(
                            f"{label} {ld.name} {side}: {s['non_2xx']} non-2xx answers; first: "
                            f"{(s['bad_sample'] or '')[:300]!r}"
                        )
                pairs = zip(sides_runs["alarmdesk"], sides_runs["alertmanager"], strict=False)
                out["loads"][ld.name] = {
                    "label": (
                        f"single, {ld.conns} conns"
                        if not ld.batch
                        else f"batch {ld.batch}, {ld.conns} conns"
                    ),
                    "alertmanager": am,
                    "alarmdesk": ad,
                    "ratio": ad["sig_per_s"] / am["sig_per_s"] if am["sig_per_s"] else None,
                    "ratio_per_cpu": ad["per_cpu"] / am["per_cpu"] if am["per_cpu"] else None,
                    "ratio_rounds": [
                        a["signals_per_s"] / b["signals_per_s"]
                        for a, b in pairs
                        if b["signals_per_s"]
                    ],
                }
            res["settings"].append(out)
    finally:
        procs.stop_all()
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res["meta"]["loadavg_end"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    if args.scale and len(res["settings"]) == 2:
        one, two = res["settings"]
        res["scaling"] = {
            f"{name} {side}": round(
                two["loads"][name][side]["sig_per_s"] / one["loads"][name][side]["sig_per_s"], 2
            )
            for name in one["loads"]
            if name in two["loads"]
            for side in ("alertmanager", "alarmdesk")
        }
    report(res)
    print(json.dumps(ingest._jsonable(res)), flush=True)


if __name__ == "__main__":
    main()
