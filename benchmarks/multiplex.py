"""One client with many documents: one multiplexed socket vs one socket per document.

    python -m benchmarks.multiplex [--docs 500] [--edits 10] [--servers ours,hocuspocus]

Runs, on a fresh server each: `@hocuspocus/provider` with every document over ONE socket
against our `/hocuspocus` and against Hocuspocus 3.x itself, and stock y-websocket with
one socket per document against our `/rooms`. Reports sockets, server RSS after the sync,
time until every document synced, time until every edit was acknowledged, and server CPU
per update. Prints one JSON line per run (figures are taken on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from benchmarks import install
from benchmarks.paths import BENCH
from benchmarks.servers import KINDS, RunningServer

NODE = BENCH / "node"
RUNS = (("ours", "hocuspocus", "/hocuspocus"), ("ours", "path", "/rooms"),
        ("hocuspocus", "hocuspocus", ""))  # fmt: skip


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MiB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


def run_one(server: str, flavor: str, path: str, docs: int, edits: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        kind = KINDS[server]
        with RunningServer(kind, Path(tmp) / "data", Path(tmp) / "server.log") as running:
            cpu_before, _ = proc_stats(running.pid)
            out = subprocess.run(
                ["node", str(NODE / "multiplex.mjs"), f"--base=ws://127.0.0.1:{running.port}{path}",
                 f"--flavor={flavor}", f"--docs={docs}", f"--edits={edits}"],
                capture_output=True, text=True, timeout=600, check=True, cwd=NODE,
            )  # fmt: skip
            cpu_after, rss = proc_stats(running.pid)
    row: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    cpu_ms_per_update = (cpu_after - cpu_before) * 1000 / (docs * edits)
    row.update(server=server, server_rss_mib=round(rss, 1),
               server_cpu_ms_per_update=round(cpu_ms_per_update, 3))  # fmt: skip
    return row


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.multiplex", description=__doc__)
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument("--servers", default="ours,hocuspocus")
    args = parser.parse_args()
    wanted = set(args.servers.split(","))
    install.ensure_node_clients()
    if "hocuspocus" in wanted:
        install.ensure_node_peers()
    for server, flavor, path in RUNS:
        if server in wanted:
            print(json.dumps(run_one(server, flavor, path, args.docs, args.edits)), flush=True)


if __name__ == "__main__":
    main()
