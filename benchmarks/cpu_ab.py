"""A/B our server's CPU per edit between versions, interleaved, under typists.

    python -m benchmarks.cpu_ab --refs main,HEAD [--rooms 50] [--seconds 5] [--rounds 4]

Each ref is exported once (``install.ours_snapshot``); every round then runs one step
of workload T (``--rooms`` rooms x 3 typists, 5 edits/s each) against a fresh server of
each ref, in alternating order, so slow drifts of a shared machine's load hit every
ref alike. The clients run in one load generator process per 50 rooms (each one's CPU
is printed, to show none was saturated). Server CPU time per edit (process CPU seconds
/ edits delivered) holds up under load far better than latency, which is printed for
reference only. A ref may be any commit, e.g. one made by ``git stash create`` of an
uncommitted variant. Prints one line per run and the medians; ``--json`` appends the
runs to a file, ``--summarize FILE`` summarizes such a file again.

On a shared machine a starved server batches more and spends less per edit (seen here:
about 38 µs/edit less for every e-fold of p50), so whichever ref drew the quieter runs
looks dearer. The last line therefore also gives each ref's CPU per edit at one common
p50: one least-squares line per ref in ln(p50), with a slope common to all refs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import install, servers
from benchmarks.servers import KINDS, RunningServer
from benchmarks.workloads import SIZES, typists_step


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cpu_ab", description=__doc__)
    p.add_argument("--refs", help="comma list of git refs (two or more)")
    p.add_argument("--rooms", type=int, default=50, help="rooms of 3 typists (default 50)")
    p.add_argument("--seconds", type=float, default=5.0, help="typing time per run")
    p.add_argument("--rounds", type=int, default=4, help="runs per ref, interleaved")
    p.add_argument("--seed", type=int, default=20240611)
    p.add_argument("--json", type=Path, help="append every run as a JSON line here")
    p.add_argument("--summarize", type=Path, help="only summarize the runs in this --json file")
    return p.parse_args(argv)


def run_ref(directory: Path, rooms: int, seconds: float, seed: int) -> dict[str, Any]:
    """One T step against a fresh server exported at one ref."""
    servers.OURS_SNAPSHOT[:] = [directory]
    sizes = replace(SIZES["default"], typist_s=seconds)
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        log = Path(tmp) / "server.log"
        with RunningServer(KINDS["ours"], Path(tmp) / "data", log) as server:
            case = typists_step(server, sizes, seed, rooms)
    metrics = case["metrics"]
    return {
        "cpu_us_per_edit": metrics.get("server_cpu_us_per_update"),
        "p50_ms": metrics.get("p50_ms"),
        "p99_ms": metrics.get("p99_ms"),
        "other_busy_cores": metrics.get("other_busy_cores"),
        "loadgen_processes": metrics.get("loadgen_processes"),
        "loadgen_cpu_pct_each": metrics.get("loadgen_cpu_pct_each"),
        # why edits left late: the machine (run-queue wait) or the load process's loop
        "send_lag_p99_ms": metrics.get("send_lag_p99_ms"),
        "loadgen_runqueue_wait_pct": metrics.get("runqueue_wait_pct"),
        "loadgen_loop_delay_p99_ms": metrics.get("loop_delay_p99_ms"),
        "loadgen_loop_delay_max_ms": metrics.get("loop_delay_max_ms"),
        "failures": case["failures"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarize:
        saved = [json.loads(line) for line in args.summarize.read_text().splitlines() if line]
        order = [r.strip() for r in (args.refs or "").split(",") if r.strip()]
        summarize(order or list(dict.fromkeys(run["ref"] for run in saved)), saved)
        return 0
    refs = [r.strip() for r in (args.refs or "").split(",") if r.strip()]
    if len(refs) < 2:
        raise SystemExit("--refs needs two or more refs")
    install.ensure_node_clients()
    dirs = {ref: install.ours_snapshot(ref) for ref in refs}
    done: list[dict[str, Any]] = []
    for round_no in range(args.rounds):
        order = refs if round_no % 2 == 0 else refs[::-1]
        for ref in order:
            directory, sha = dirs[ref]
            run = run_ref(directory, args.rooms, args.seconds, args.seed)
            run.update(ref=ref, sha=sha, round=round_no, rooms=args.rooms, seconds=args.seconds)
            print(json.dumps(run), flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(run) + "\n")
            done.append(run)
    summarize(refs, done)
    return 1 if any(run["failures"] or run["cpu_us_per_edit"] is None for run in done) else 0


def summarize(refs: list[str], done: list[dict[str, Any]]) -> None:
    """Per ref: the median CPU per edit, and the CPU per edit at one common p50."""
    ok = [r for r in done if not r["failures"] and r["cpu_us_per_edit"] and r["p50_ms"]]
    cpu = {ref: [float(r["cpu_us_per_edit"]) for r in ok if r["ref"] == ref] for ref in refs}
    base = statistics.median(cpu[refs[0]]) if cpu[refs[0]] else None
    for ref in refs:
        values = cpu[ref]
        if not values:
            print(f"{ref}: no successful run", file=sys.stderr)
            continue
        med = statistics.median(values)
        ratio = f" ({med / base:.2f}x {refs[0]})" if base else ""
        runs = ", ".join(f"{v:.0f}" for v in values)
        print(f"{ref}: CPU µs/edit median {med:.0f}{ratio}; runs {runs}")
    at = at_common_latency(refs, ok)
    if at is not None:
        p50, adjusted = at
        line = ", ".join(f"{ref} {v:.0f}" for ref, v in adjusted.items())
        print(f"CPU µs/edit at a common p50 of {p50:.0f} ms (see module docs): {line}")


def at_common_latency(
    refs: list[str], runs: list[dict[str, Any]]
) -> tuple[float, dict[str, float]] | None:
    """Each ref's CPU per edit at the runs' median p50, from one line per ref with a
    common slope in ln(p50): a server starved by other work batches more and spends less
    per edit, so on a shared machine the ref that drew the quieter runs looks dearer.
    None without three runs per ref or any spread in p50."""
    points = {
        ref: [(math.log(r["p50_ms"]), float(r["cpu_us_per_edit"])) for r in runs if r["ref"] == ref]
        for ref in refs
    }
    if any(len(p) < 3 for p in points.values()):
        return None
    means = {
        ref: (statistics.fmean(x for x, _ in p), statistics.fmean(y for _, y in p))
        for ref, p in points.items()
    }
    spread = sum((x - means[ref][0]) ** 2 for ref, p in points.items() for x, _ in p)
    if spread == 0:
        return None
    slope = (
        sum((x - means[ref][0]) * (y - means[ref][1]) for ref, p in points.items() for x, y in p)
        / spread
    )
    common = statistics.median(x for p in points.values() for x, _ in p)
    return math.exp(common), {ref: my + slope * (common - mx) for ref, (mx, my) in means.items()}


if __name__ == "__main__":
    raise SystemExit(main())
