"""Before/after: one benchmark run interleaved over checkouts, then medians, spread and ratios.

    .venv/bin/python bench/ab.py dc09.py --rounds 4 before=../before after=.
    .venv/bin/python bench/ab.py ingest.py --rounds 3 --args "--only 2,3,4,5" \
        before=../before after=.
    .venv/bin/python bench/ab.py peers.py --rounds 3 --args "--loads single,batch100 --rounds 1" \
        before=../before after=.
    .venv/bin/python bench/ab.py writer.py --rounds 4 --args "--groups 1,8 --rounds 1" \
        before=../before after=.
    .venv/bin/python bench/ab.py --summary-only /tmp/ab-ingest ingest.py before after

Each checkout runs its own ``bench/<script>`` with ``PYTHONPATH=<checkout>/src``, in the
order given, round after round (before, after, before, after...), so a neighbour that loads
the machine for a while hits both sides. Every run's output is kept in ``--out`` as
``<label>-<round>.txt``; the summary reads the JSON line each script prints last.

The summary gives, per figure, the median of the rounds with every round in brackets, and
the ratio of each label's median to the first label's. On a shared machine, compare the
figures per CPU (``us srv-cpu/...``, ``us/frame``): they divide what the server did by the
CPU it actually got.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Figures = dict[str, float | None]


def ingest_figures(j: dict[str, Any]) -> Figures:
    f: Figures = {}
    if "sqlite" in j:
        f["1 sqlite rows/s"] = j["sqlite"]["rows_per_s"]
    if "batch" in j:
        b = j["batch"]
        f["2 batch sig/s"] = b["signals_per_s"]
        f["2 batch us srv-cpu/sig"] = b["server_cpu"] / b["signals_per_s"] * 1e6
    if "noop" in j:
        f["3 no-op req/s"] = j["noop"]["requests_per_s"]
    if "single" in j:
        s = j["single"]
        f["4 single sig/s"] = s["signals_per_s"]
        f["4 single p99 ms"] = s["p99_ms"]
        f["4 single us srv-cpu/sig"] = s["server_cpu"] / s["signals_per_s"] * 1e6
        f["4/3 per server cpu"] = j.get("ratio_4_3_per_cpu")
    if "e2e" in j:
        e = j["e2e"]
        sent = e["pace"]["achieved_rate"]
        f["5 e2e sent/s"] = sent
        f["5 e2e p50 ms"] = e["p50_ms"]
        f["5 e2e p99 ms"] = e["p99_ms"]
        f["5 e2e us srv-cpu/sig"] = e["server_cpu"] / sent * 1e6
    if "pipeline" in j:
        p = j["pipeline"]
        f["6 pipeline 1k us"] = p["us_small"]
        f["6 pipeline 100k us"] = p["us_large"]
        f["6 ratio 100k/1k"] = p["ratio"]
    return f


def dc09_figures(j: dict[str, Any], text: str) -> Figures:
    f: Figures = {
        "closed frames/s": j["closed_rate"],
        "closed p99 ms": j["closed_p99_ms"],
        "paced p50 ms": j["paced_p50_ms"],
        "paced p99 ms": j["paced_p99_ms"],
        "acks == stored": float(j["acks"] == j["stored"]),
    }
    for line in text.splitlines():  # receiver CPU is printed, not in the JSON line
        if "closed loop" in line and "receiver CPU" in line:
            cpu = float(line.split("receiver CPU")[1].split("%")[0]) / 100
            f["closed us receiver-cpu/frame"] = cpu / j["closed_rate"] * 1e6
    return f


def frame_cost_figures(j: dict[str, Any]) -> Figures:
    return {"us cpu/frame (best)": j["best_us_per_frame"], "validate us": j["validate_us"]}


def peers_figures(j: dict[str, Any]) -> Figures:
    """bench/peers.py: per setting and load, each side's rate, alarmdesk's p99 and server CPU
    per signal, and the ratio alarmdesk / Alertmanager (rates and per server CPU)."""
    f: Figures = {}
    many = len(j.get("settings", [])) > 1
    for setting in j.get("settings", []):
        tag = f"{setting['cores']}c " if many else ""
        for name, row in setting["loads"].items():
            am, ad = row["alertmanager"], row["alarmdesk"]
            f[f"{tag}{name} AM sig/s"] = am["sig_per_s"]
            f[f"{tag}{name} alarmdesk sig/s"] = ad["sig_per_s"]
            f[f"{tag}{name} alarmdesk p99 ms"] = ad["p99_ms"]
            f[f"{tag}{name} alarmdesk us srv-cpu/sig"] = (
                1e6 / ad["per_cpu"] if ad["per_cpu"] else None
            )
            for part, us in (ad.get("us_per_signal") or {}).items():
                f[f"{tag}{name} alarmdesk us {part}/sig"] = us
            f[f"{tag}{name} ratio"] = row["ratio"]
            f[f"{tag}{name} ratio per cpu"] = row["ratio_per_cpu"]
    return f


def writer_figures(j: dict[str, Any]) -> Figures:
    """bench/writer.py: the writer's CPU per signal, per group size."""
    return {f"{name} us cpu/sig": us for name, us in j["us_per_signal"].items()}


def retention_figures(j: dict[str, Any]) -> Figures:
    """bench/retention.py: the dry run's and the real run's seconds and ms a chunk, and how
    long a writer was locked out (SQLite's real run)."""
    keys = ("seconds", "ms_per_chunk", "locked_out_longest_s", "locked_out_total_s")
    return {f"{run} {k}": j[run][k] for run in ("dry", "real") for k in keys if k in j[run]}


def queue_reads_figures(j: dict[str, Any]) -> Figures:
    """bench/queue_reads.py: each read's median ms, per desk filter."""
    return {f"{read}, {label} ms": ms for read, by in j["ms"].items() for label, ms in by.items()}


def figures_of(script: str, text: str) -> Figures | None:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        return None
    return SCRIPTS[script](json.loads(lines[-1]), text)


# The benchmarks this runs, and how each one's last JSON line becomes figures.
SCRIPTS: dict[str, Callable[[dict[str, Any], str], Figures]] = {
    "ingest.py": lambda j, _text: ingest_figures(j),
    "dc09.py": dc09_figures,
    "dc09_frame_cost.py": lambda j, _text: frame_cost_figures(j),
    "peers.py": lambda j, _text: peers_figures(j),
    "writer.py": lambda j, _text: writer_figures(j),
    "retention.py": lambda j, _text: retention_figures(j),
    "queue_reads.py": lambda j, _text: queue_reads_figures(j),
}


def fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:,.1f}"


def summary(out: Path, script: str, labels: list[str]) -> str:
    runs: dict[str, list[Figures]] = {}
    lines = []
    for label in labels:
        runs[label] = []
        for path in sorted(out.glob(f"{label}-*.txt"), key=lambda p: int(p.stem.split("-")[-1])):
            figs = figures_of(script, path.read_text("utf-8", "replace"))
            if figs is None:
                lines.append(f"({path.name}: no result, skipped)")
            else:
                runs[label].append(figs)
    names: list[str] = []
    for label in labels:
        for figs in runs[label]:
            names += [n for n in figs if n not in names]
    lines.append(
        f"{'figure':30}"
        + "".join(f" | {label}: median [rounds]" for label in labels)
        + " | ratio of medians"
    )
    for name in names:
        row = f"{name:30}"
        medians = []
        for label in labels:
            values = [v for figs in runs[label] if (v := figs.get(name)) is not None]
            if not values:
                row += " | -"
                medians.append(None)
                continue
            m = statistics.median(values)
            medians.append(m)
            row += f" | {fmt(m)} [" + ", ".join(fmt(v) for v in values) + "]"
        base = medians[0]
        ratios = [
            f"{labels[i]}/{labels[0]} {m / base:.2f}"
            for i, m in enumerate(medians[1:], start=1)
            if m is not None and base
        ]
        lines.append(row + " | " + ", ".join(ratios))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("script", choices=list(SCRIPTS))
    ap.add_argument("checkouts", nargs="+", help="label=path (run), or labels with --summary-only")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--args", default="", help="arguments for the script, one string")
    ap.add_argument("--out", type=Path, default=None, help="where runs are kept (default: temp)")
    ap.add_argument("--summary-only", type=Path, default=None, metavar="OUT")
    a = ap.parse_args()
    if a.summary_only is not None:
        print(summary(a.summary_only, a.script, a.checkouts))
        return
    pairs = [c.split("=", 1) for c in a.checkouts]
    if any(len(p) != 2 for p in pairs):
        ap.error("give checkouts as label=path")
    out = a.out or Path(tempfile.mkdtemp(prefix="ab-"))
    out.mkdir(parents=True, exist_ok=True)
    for r in range(1, a.rounds + 1):
        for label, path in pairs:
            root = Path(path).resolve()
            env = {**os.environ, "PYTHONPATH": str(root / "src")}
            cmd = [sys.executable, f"bench/{a.script}", *a.args.split()]
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            print(f"[{stamp}] round {r} {label}: {' '.join(cmd)} in {root}", flush=True)
            with (out / f"{label}-{r}.txt").open("w") as log:
                subprocess.run(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"runs kept in {out}\n")
    print(summary(out, a.script, [label for label, _ in pairs]))


if __name__ == "__main__":
    main()
