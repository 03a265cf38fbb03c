"""The commit linger alone: time from an edit's arrival to its durable commit, and
updates per LMDB transaction, for the writer thread of each git ref.

    python -m benchmarks.commit_linger --refs main,HEAD [--rooms 100] [--rate 15]
        [--seconds 5] [--rounds 3] [--linger-ms 0,1,2]

No sockets, no documents: R rooms each receive edits as a Poisson stream (`--rate`
per room per second; typists: 3 clients x 5/s = 15) and behave as the room actor
does: one commit in flight per room, edits that arrive meanwhile go into its next
commit. Every ref's `server/rooms/committer.py` (exported as in `cpu_ab`) runs over a
real LMDB store with fsync in a fresh process; refs alternate round by round. The
edit-to-durable latency is the part of an edit's p50/p99 the linger decides; the
process CPU per edit and the updates per transaction show what the linger buys.
`--linger-ms` runs every ref at each of these lingers (default: each ref's own), all
alternated alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import install
from benchmarks.paths import REPO

UPDATE = bytes(24)  # the size of a one-character Yjs update; stored, never parsed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.commit_linger", description=__doc__)
    p.add_argument("--refs", required=True, help="comma list of git refs")
    p.add_argument("--rooms", type=int, default=100)
    p.add_argument("--rate", type=float, default=15.0, help="edits/s per room")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--linger-ms", help="comma list of lingers to run every ref at")
    p.add_argument("--seed", type=int, default=20240611)
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p.parse_args(argv)


async def _room(
    name: str, writer: Any, rate: float, until: float, rng: random.Random
) -> list[float]:
    """One room's edits; returns each edit's arrival-to-durable time in ms."""
    from engine.storage import Append

    pending: list[float] = []
    latencies: list[float] = []
    flushing: asyncio.Task[None] | None = None

    async def flush() -> None:
        while pending:
            arrived = pending[:]
            pending.clear()
            await writer.commit([Append(name, UPDATE, None, (1,)) for _ in arrived])
            now = time.perf_counter()
            latencies.extend((now - t) * 1000 for t in arrived)

    loop = asyncio.get_running_loop()
    due = time.perf_counter() + rng.expovariate(rate)
    while due < until:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        pending.append(due)
        if flushing is None or flushing.done():
            flushing = loop.create_task(flush())
        due += rng.expovariate(rate)
    if flushing is not None:
        await flushing
    return latencies


async def _child(cfg: dict[str, Any]) -> dict[str, Any]:
    """Runs inside a process whose `server` package is the ref's export."""
    from engine.store import open_store
    from server.metrics import Metrics
    from server.rooms import committer

    with tempfile.TemporaryDirectory(prefix="bench-linger-") as tmp:
        store = open_store(data_dir=tmp)
        writes = 0

        def write(batch: list[Any]) -> list[int]:
            nonlocal writes
            writes += 1
            return store.append_many(batch)

        kwargs = {} if cfg["linger_ms"] is None else {"linger": cfg["linger_ms"] / 1000}
        writer = committer.WriterThread(write, Metrics(), **kwargs)
        writer.start()
        linger_ms = writer.linger * 1000
        rng = random.Random(cfg["seed"])
        cpu0, until = time.process_time(), time.perf_counter() + cfg["seconds"]
        rooms = [
            _room(f"r{i}", writer, cfg["rate"], until, random.Random(rng.random()))
            for i in range(cfg["rooms"])
        ]
        latencies = sorted(x for room in await asyncio.gather(*rooms) for x in room)
        cpu = time.process_time() - cpu0
        await writer.close()
    return {
        "edits": len(latencies),
        "writes": writes,
        "updates_per_write": len(latencies) / max(1, writes),
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[int(len(latencies) * 0.99)],
        "cpu_us_per_edit": cpu * 1e6 / max(1, len(latencies)),
        "linger_ms": linger_ms,
    }


def run_ref(directory: Path, args: argparse.Namespace, linger_ms: float | None) -> dict[str, Any]:
    """One measurement in a fresh process importing `engine`/`server` from `directory`."""
    cfg = {k: getattr(args, k) for k in ("rooms", "rate", "seconds", "seed")}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(directory), str(REPO)])}
    child = json.dumps({**cfg, "linger_ms": linger_ms})
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.commit_linger", "--refs", "-", "--child", child],
        env=env,
        cwd=directory,
        capture_output=True,
        text=True,
        check=True,
        timeout=args.seconds * 10 + 60,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(asyncio.run(_child(json.loads(args.child)))))
        return 0
    refs = [r.strip() for r in args.refs.split(",") if r.strip()]
    lingers = [float(x) for x in args.linger_ms.split(",")] if args.linger_ms else [None]
    exported = {ref: install.ours_snapshot(ref)[0] for ref in refs}
    variants = [(ref, linger) for ref in refs for linger in lingers]
    runs: dict[tuple[str, float | None], list[dict[str, Any]]] = {v: [] for v in variants}
    for round_no in range(args.rounds):
        for ref, linger in variants if round_no % 2 == 0 else variants[::-1]:
            run = run_ref(exported[ref], args, linger)
            runs[ref, linger].append(run)
            print(json.dumps({"ref": ref, **run}), flush=True)
    for (ref, _), done in runs.items():
        med = {k: statistics.median(r[k] for r in done) for k in done[0]}
        print(
            f"{ref}: linger {med['linger_ms']:.1f} ms, p50 {med['p50_ms']:.2f} ms, "
            f"p99 {med['p99_ms']:.2f} ms, {med['updates_per_write']:.1f} updates/write, "
            f"CPU {med['cpu_us_per_edit']:.0f} µs/edit (medians of {len(done)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
