"""Scale-out benchmark: the same durable ingest on one LMDB process, one process on
Redis, and two processes sharing Redis.

    python -m benchmarks.scaleout [--rooms 50] [--seconds 8] [--repeats 3]

Every configuration runs R rooms x 2 writers (the writers of a room on different
processes when there are two) that keep 4 edits each waiting for the "saved"
acknowledgement; a run passes only if every edit was acknowledged and every room's
writers converged. A setup with a failed run has no figure (it shows FAILED and the
failures), and any failed run makes the exit code 1. Redis runs with AOF and fsync on
every write (the durable setting).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)


@contextmanager
def performer(data: Path, redis_url: str | None) -> Iterator[str]:
    args = [sys.executable, "-m", "server", "serve", "--port", "0", "--data", str(data)]
    if redis_url:
        args += ["--redis", redis_url]
    env = {**os.environ, "PERFORMER_LOG": "WARNING"}
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"server did not start: {line!r}")
        yield line.split()[1].replace("http://", "ws://") + "/rooms"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()


def ingest(bases: list[str], rooms: int, seconds: float) -> dict[str, Any]:
    config = json.dumps({"bases": bases, "rooms": rooms, "seconds": seconds})
    out = subprocess.run(
        ["node", str(HERE / "ingest.mjs"), config],
        capture_output=True,
        timeout=seconds + 120,
        check=False,
        text=True,
    )
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("RESULT "):
            result: dict[str, Any] = json.loads(line[7:])
            return result
    lines = out.stderr.strip().splitlines() or [f"exit code {out.returncode}, no output"]
    why = next((line for line in lines if "Error" in line), lines[-1])
    return {"failures": [f"load generator failed: {why.strip()[:300]}"]}


def run_case(processes: int, use_redis: bool, rooms: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not use_redis:
            with performer(root / "lmdb", None) as base:
                return ingest([base], rooms, seconds)
        (root / "redis").mkdir()
        with redis_server(root / "redis") as url:
            bases: list[str] = []
            with _servers(root, url, processes, bases):
                return ingest(bases, rooms, seconds)


@contextmanager
def _servers(root: Path, url: str, count: int, bases: list[str]) -> Iterator[None]:
    if count == 0:
        yield
        return
    with performer(root / f"p{count}", url) as base:
        bases.append(base)
        with _servers(root, url, count - 1, bases):
            yield


CASES = [
    ("LMDB, 1 process", 1, False),
    ("Redis, 1 process", 1, True),
    ("Redis, 2 processes", 2, True),
]


def run_repeats(
    processes: int, use_redis: bool, rooms: int, seconds: float, repeats: int
) -> tuple[list[float], list[str]]:
    """Acknowledged updates/s of the runs that passed, and one entry per failed run."""
    rates: list[float] = []
    failures: list[str] = []
    for repeat in range(1, repeats + 1):
        try:
            result = run_case(processes, use_redis, rooms, seconds)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            result = {"failures": [f"{type(exc).__name__}: {exc}"]}
        if result.get("failures"):
            failures.append(f"run {repeat}: {'; '.join(result['failures'])}")
        else:
            rates.append(result["updatesPerS"])
    return rates, failures


def main(argv: list[str] | None = None) -> int:
    """Exit 1 if any run of any setup failed: a failed run is never left out quietly."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for name, processes, use_redis in CASES:
        rates, failures = run_repeats(processes, use_redis, args.rooms, args.seconds, args.repeats)
        rows.append((name, rates, failures))
    baseline = statistics.median(rows[1][1]) if rows[1][1] and not rows[1][2] else None
    print(
        f"{os.cpu_count()} cores, {platform.machine()}, rooms={args.rooms}, "
        f"{args.seconds:.0f} s per run, median of {args.repeats}"
    )
    print("| setup | acknowledged updates/s | vs Redis, 1 process | failed runs |")
    print("|---|---:|---:|---|")
    for name, rates, failures in rows:
        median = statistics.median(rates) if rates and not failures else None
        ratio = f"{median / baseline:.2f}x" if median and baseline else "-"
        shown = f"{median:,.0f} ({min(rates):,.0f}-{max(rates):,.0f})" if median else "FAILED"
        print(f"| {name} | {shown} | {ratio} | {len(failures)} of {args.repeats} |")
    failed = [(name, f) for name, _, failures in rows for f in failures]
    for name, failure in failed:
        print(f"FAILED {name}: {failure}")
    print(f"RESULT scaleout failed_runs={len(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
