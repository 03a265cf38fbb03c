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
runs to a file.
"""

from __future__ import annotations

import argparse
import json
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
    p.add_argument("--refs", required=True, help="comma list of git refs (two or more)")
    p.add_argument("--rooms", type=int, default=50, help="rooms of 3 typists (default 50)")
    p.add_argument("--seconds", type=float, default=5.0, help="typing time per run")
    p.add_argument("--rounds", type=int, default=4, help="runs per ref, interleaved")
    p.add_argument("--seed", type=int, default=20240611)
    p.add_argument("--json", type=Path, help="append every run as a JSON line here")
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
        "failures": case["failures"],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    refs = [r.strip() for r in args.refs.split(",") if r.strip()]
    if len(refs) < 2:
        raise SystemExit("--refs needs two or more refs")
    install.ensure_node_clients()
    dirs = {ref: install.ours_snapshot(ref) for ref in refs}
    cpu: dict[str, list[float]] = {ref: [] for ref in refs}
    failed = False
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
            if run["failures"] or run["cpu_us_per_edit"] is None:
                failed = True
                continue
            cpu[ref].append(float(run["cpu_us_per_edit"]))
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
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
