"""``python -m benchmarks`` / ``performer bench``: run the suite and write the report.

Each (workload, server, repeat) gets a freshly started server with an empty
data directory, so no run inherits another's rooms, memory or log.

Every run writes its raw results (with commit, date and machine) to
``results/runs/``, merges its rows into ``results/results.jsonl`` (replacing
the rows of the (workload, server) pairs it measured), and regenerates
``RESULTS.md``, the plots and the benchmark tables of the docs (and README) from that file.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import install, readme, report, servers, workloads
from benchmarks.paths import REPO, RESULTS, peers_python
from benchmarks.servers import KINDS, LOOPS, RunningServer
from benchmarks.workloads import NEEDS_DURABLE, SIZES, WORKLOADS, Case, Sizes, with_big_mb

DEFAULT_SEED = 20240611
# In-memory and persisting peers side by side (see servers.KINDS for what each fsyncs).
DEFAULT_SERVERS = (
    "ours",
    "y-websocket",
    "y-websocket-leveldb",
    "hocuspocus",
    "hocuspocus-sqlite",
    "pycrdt",
)
# Workloads whose steps are long enough that one repeat is the default.
ONE_REPEAT = {"T", "BIG"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="performer bench", description=__doc__)
    p.add_argument(
        "--servers", default=",".join(DEFAULT_SERVERS), help="comma list: " + ",".join(KINDS)
    )
    p.add_argument(
        "--workloads",
        "--workload",
        default="A,B,C,D,E,F",
        help="comma list of " + ",".join(WORKLOADS) + " (T: typists, BIG: big room)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="1 repeat, small sizes (smoke test)")
    mode.add_argument("--full", action="store_true", help="larger sizes (200,000-update cold sync)")
    p.add_argument(
        "--repeats", type=int, help="repeats per case (default 3; T, BIG and --quick: 1)"
    )
    p.add_argument(
        "--loop",
        choices=LOOPS,
        default="uvloop",
        help="event loop of both Python servers, ours and pycrdt-websocket (default uvloop)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each run wait up to this many seconds for other work to use < 0.5 cores",
    )
    p.add_argument(
        "--big-mb", type=float, help="big-room document size in MB (default 17; e.g. 100)"
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--out", type=Path, help="output dir (default benchmarks/results[/quick])")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--profile",
        nargs="?",
        const="A",
        choices=("A", "T"),
        help="also py-spy our server under A (default) or T at 100 rooms",
    )
    p.add_argument(
        "--ours-ref", help="measure our server as of this git ref (default: the work tree)"
    )
    args = p.parse_args(argv)
    args.server_list = _pick(args.servers, KINDS, "server")
    args.workload_list = _pick(args.workloads.upper(), WORKLOADS, "workload")
    args.mode = "quick" if args.quick else "full" if args.full else "default"
    args.fixed_repeats = args.repeats
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    return args


def repeats_for(args: argparse.Namespace, workload: str) -> int:
    if args.fixed_repeats:
        return int(args.fixed_repeats)
    return 1 if workload in ONE_REPEAT else int(args.repeats)


def server_for(workload: str, server: str) -> str | None:
    """The server to run for a workload: BIG needs rooms that survive a restart,
    so y-websocket runs with its LevelDB persistence there and servers that keep
    nothing are skipped (and so are the Hocuspocus-dialect ones: BIG's clients are
    stock y-websocket providers)."""
    if workload in NEEDS_DURABLE:
        if server == "y-websocket":
            return "y-websocket-leveldb"
        if not KINDS[server].durable or KINDS[server].flavor != "path":
            return None
    return server


def _pick(text: str, known: dict[str, Any], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what}(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def run_one(
    workload: str, server: str, sizes: Sizes, seed: int, log: Path, loop: str = "uvloop"
) -> list[Case]:
    """One repeat of one workload against a fresh server."""
    idle = sizes.idle_unload_s if workload == "D" else None
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        srv = RunningServer(KINDS[server], Path(tmp) / "data", log, idle_unload_s=idle, loop=loop)
        try:
            srv.start()
        except RuntimeError as exc:
            return [{"case": "start", "metrics": {}, "failures": [str(exc)]}]
        try:
            return WORKLOADS[workload][1](srv, sizes, seed)
        finally:
            srv.stop()


def run_all(args: argparse.Namespace, out: Path) -> list[dict[str, Any]]:
    sizes = with_big_mb(SIZES[args.mode], args.big_mb)
    raw: list[dict[str, Any]] = []
    for workload in args.workload_list:
        done: set[str] = set()
        for asked in args.server_list:
            server = server_for(workload, asked)
            if server is None or server in done:
                why = "keeps nothing across a restart" if server is None else "already run"
                print(f"[bench] {workload} {asked}: skipped ({why})")
                continue
            done.add(server)
            for rep in range(repeats_for(args, workload)):
                t0 = time.monotonic()
                log = out / f"{server}.log"
                cases = run_one(workload, server, sizes, args.seed, log, args.loop)
                for case in cases:
                    raw.append({"workload": workload, "server": server, "repeat": rep, **case})
                    status = (
                        "ok" if not case["failures"] else "FAILED: " + case["failures"][0][:200]
                    )
                    status += _glance(case["metrics"])
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


def _glance(metrics: dict[str, Any]) -> str:
    """A few headline numbers for the progress line."""
    keys = ("updates_per_s", "p99_ms", "server_cpu_pct", "cold_complete_ms", "small_p99_ms")
    shown = [f"{k}={metrics[k]:.1f}" for k in keys if isinstance(metrics.get(k), int | float)]
    return f" ({', '.join(shown)})" if shown else ""


def write_outputs(
    args: argparse.Namespace,
    out: Path,
    raw: list[dict[str, Any]],
    header: dict[str, Any],
    profile_md: str | None,
    argv: list[str],
) -> bool:
    """Raw runs to ``runs/``, rows merged into ``results.jsonl``, then every report."""
    rows = report.aggregate(raw)
    cmd = ("python -m benchmarks " + shlex.join(argv)).strip()
    header = {**header, "command": cmd, "mode": args.mode, "seed": args.seed, "loop": args.loop}
    runs_dir = out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = header["date"].replace(" UTC", "").replace(" ", "T").replace(":", "")
    name = f"{stamp}-{'-'.join(args.workload_list)}-{header['commit'][:12]}.json"
    path = runs_dir / name
    for n in itertools.count(2):  # two runs started in the same minute keep both files
        if not path.exists():
            break
        path = runs_dir / name.replace(".json", f"-{n}.json")
    path.write_text(json.dumps({"machine": header, "runs": raw}, indent=1) + "\n")
    if profile_md:
        (out / f"profile-{args.profile}.md").write_text(profile_md)
    report.merge_jsonl(out / "results.jsonl", rows, header)
    # Only the committed results feed the docs' tables: a run written elsewhere (--out) holds
    # just its own workloads, and would blank the others' tables.
    committed = out.resolve() == RESULTS.resolve()
    regenerate(out, plots=not args.no_plots, readme_too=args.mode != "quick" and committed)
    print(f"[bench] wrote {path}", file=sys.stderr)
    return all(r["ok"] for r in rows)


def regenerate(out: Path, plots: bool = True, readme_too: bool = True) -> None:
    """RESULTS.md, plots and (for the committed results) the docs' tables from results.jsonl."""
    rows = report.read_jsonl(out / "results.jsonl")
    pngs = _plots(out / "results.jsonl", out) if plots else []
    titles = {k: v[0] for k, v in WORKLOADS.items()}
    profiles = {p.stem.split("-", 1)[1]: p.read_text() for p in sorted(out.glob("profile-*.md"))}
    doc = _document(rows, report.markdown(rows, titles), pngs, profiles)
    (out / "RESULTS.md").write_text(doc)
    print(f"[bench] wrote {out / 'RESULTS.md'}", file=sys.stderr)
    if readme_too:
        readme.update(rows)


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
    rows: list[dict[str, Any]], tables: str, plots: list[str], profiles: dict[str, str]
) -> str:
    from benchmarks import methodology

    servers_seen = list(dict.fromkeys(r["server"] for r in rows))
    parts = [
        "# Benchmarks: Performer Sync side by side with the servers users would pick instead\n",
        (
            "Generated from `results.jsonl` (one line per workload, case and server, each with "
            "the command, commit, date, machine and load it was measured with); raw repeats are "
            "in `runs/`. Every section below says when and how its numbers were taken.\n"
        ),
        "## What persists\n",
        report.persistence_note(servers_seen) + "\n",
        methodology.TEXT,
        "## Results\n",
        "Cells: median of the repeats, (min–max) when they differ.\n",
        tables,
    ]
    parts += [f"![{p}]({p})\n" for p in plots]
    titles = {"A": "workload A", "T": "workload T, 100 rooms x 3 typists"}
    for key, text in profiles.items():
        parts += [f"## Where our server spends its time ({titles.get(key, key)})\n", text]
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
    want_tools = bool(args.profile) or (not args.no_plots and args.mode != "quick")
    need = [server_for(w, s) for w in args.workload_list for s in args.server_list]
    install.ensure_for([s for s in need if s], want_tools)
    workloads.QUIET["wait_s"] = args.quiet_wait
    header = report.machine()
    header["ours"] = _pin_ours(args.ours_ref)
    header["commit"] = report.git_commit(args.ours_ref or "HEAD")
    raw = run_all(args, out)
    profile_md = None
    if args.profile:
        from benchmarks.profile import profile_ours

        profile_md = profile_ours(SIZES[args.mode], args.seed, out, args.profile, args.loop)
    ok = write_outputs(args, out, raw, header, profile_md, argv)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
