"""``python -m benchmarks`` / ``performer bench``: run the suite and write the report.

Each (workload, server, repeat) gets a freshly started server with an empty
data directory, so no run inherits another's rooms, memory or log.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import install, report, servers
from benchmarks.paths import REPO, RESULTS, peers_python
from benchmarks.servers import KINDS, RunningServer
from benchmarks.workloads import SIZES, WORKLOADS, Case, Sizes

DEFAULT_SEED = 20240611


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="performer bench", description=__doc__)
    p.add_argument("--servers", default=",".join(KINDS), help="comma list: " + ",".join(KINDS))
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma list of A-F")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1 repeat, small sizes (smoke test)")
    mode.add_argument("--full", action="store_true", help="larger sizes (200,000-update cold sync)")
    p.add_argument("--repeats", type=int, help="repeats per case (default 3, --quick 1)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--out", type=Path, help="output dir (default benchmarks/results[/quick])")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--profile", action="store_true", help="also py-spy our server under A")
    p.add_argument(
        "--ours-ref", help="measure our server as of this git ref (default: the work tree)"
    )
    args = p.parse_args(argv)
    args.server_list = _pick(args.servers, KINDS, "server")
    args.workload_list = _pick(args.workloads.upper(), WORKLOADS, "workload")
    args.mode = "quick" if args.quick else "full" if args.full else "default"
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    return args


def _pick(text: str, known: dict[str, Any], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def run_one(workload: str, server: str, sizes: Sizes, seed: int, log: Path) -> list[Case]:
    """One repeat of one workload against a fresh server."""
    idle = sizes.idle_unload_s if workload == "D" else None
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        srv = RunningServer(KINDS[server], Path(tmp) / "data", log, idle_unload_s=idle)
        try:
            srv.start()
        except RuntimeError as exc:
            return [{"case": "start", "metrics": {}, "failures": [str(exc)]}]
        try:
            return WORKLOADS[workload][1](srv, sizes, seed)
        finally:
            srv.stop()


def run_all(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    sizes = SIZES[args.mode]
    raw: list[dict[str, Any]] = []
    for workload in args.workload_list:
        for server in args.server_list:
            for rep in range(args.repeats):
                t0 = time.monotonic()
                cases = run_one(workload, server, sizes, args.seed, out / f"{server}.log")
                for case in cases:
                    raw.append({"workload": workload, "server": server, "repeat": rep, **case})
                    status = (
                        "ok" if not case["failures"] else "FAILED: " + case["failures"][0][:200]
                    )
                    print(
                        f"[bench] {workload} {server} #{rep + 1} {case['case']}: {status}",
                        file=sys.stderr,
                        flush=True,
                    )
                print(
                    f"[bench] {workload} {server} #{rep + 1} took {time.monotonic() - t0:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    return raw


def write_outputs(
    args: argparse.Namespace,
    out: Path,
    raw: list[dict[str, Any]],
    header: dict[str, Any],
    profile_md: str | None,
    argv: list[str],
) -> bool:
    rows = report.aggregate(raw)
    (out / "runs.raw.json").write_text(json.dumps({"machine": header, "runs": raw}, indent=1))
    report.write_jsonl(out / "results.jsonl", rows, header)
    plots = [] if args.no_plots else _plots(out / "results.jsonl", out)
    titles = {k: v[0] for k, v in WORKLOADS.items()}
    doc = _document(args, header, report.markdown(rows, titles), plots, profile_md, argv)
    name = "RESULTS.md" if args.mode != "quick" else "summary.md"
    (out / name).write_text(doc)
    print(doc)
    print(f"[bench] wrote {out / name}", file=sys.stderr)
    return all(r["ok"] for r in rows)


def _plots(jsonl: Path, out: Path) -> list[str]:
    """Plot with our interpreter if it has matplotlib, else with the peers venv's."""
    python = sys.executable
    if importlib.util.find_spec("matplotlib") is None:
        python = str(peers_python())
        if not Path(python).exists():
            print("[bench] matplotlib not available: no plots", file=sys.stderr)
            return []
    cmd = [python, "-m", "benchmarks.plots", str(jsonl), str(out)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        print(f"[bench] plotting failed: {proc.stderr[-1000:]}", file=sys.stderr)
        return []
    return [Path(line).name for line in proc.stdout.split()]


def _document(
    args: argparse.Namespace,
    header: dict[str, Any],
    tables: str,
    plots: list[str],
    profile_md: str | None,
    argv: list[str],
) -> str:
    from benchmarks import methodology

    cmd = "python -m benchmarks " + shlex.join(argv)
    parts = [
        "# Benchmarks: Performer Sync side by side with the servers users would pick instead\n",
        f"Command: `{cmd.strip()}`  ",
        f"Mode: {args.mode}, {args.repeats} repeat(s), seed {args.seed}  ",
        f"Date: {header['date']}  ",
        f"Performer measured: {header['ours']}  ",
        (
            f"Machine: {header['cores']} cores, {header['cpu']}, {header['memory_gib']} GiB RAM, "
            f"Linux {header['kernel']}, Python {header['python']}, Node {header['node']}. "
            "Servers and the load generator share these cores; everything runs on 127.0.0.1.\n"
        ),
        "## What persists\n",
        report.persistence_note(args.server_list) + "\n",
        methodology.TEXT,
        "## Results\n",
        "Cells: median of the repeats, (min–max) when they differ.\n",
        tables,
    ]
    parts += [f"![{p}]({p})\n" for p in plots]
    if profile_md:
        parts += ["## Where our server spends its time (workload A)\n", profile_md]
    return "\n".join(parts)


def _pin_ours(ref: str | None) -> str:
    """Export our server at ``ref`` (if given); say which version is measured."""
    if ref:
        target, sha = install.ours_snapshot(ref)
        servers.OURS_SNAPSHOT[:] = [target]
        return f"commit {sha[:12]}"
    return "work tree at " + report.git_head()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    want_tools = args.profile or (not args.no_plots and args.mode != "quick")
    install.ensure_for(args.server_list, want_tools)
    header = report.machine()
    header["ours"] = _pin_ours(args.ours_ref)
    raw = run_all(args, out)
    profile_md = None
    if args.profile:
        from benchmarks.profile import profile_ours

        profile_md = profile_ours(SIZES[args.mode], args.seed, out)
    ok = write_outputs(args, out, raw, header, profile_md, argv)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
