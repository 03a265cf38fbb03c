"""Does a slow or failing on_change hook cost its room anything? Edit-to-peer latency in
one room at typing pace, with no hook, a hook that takes 1 s per change, and one that
raises on every change.

    python -m benchmarks.apps.hooks [--edits 300] [--rate 50] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from pycrdt import Doc

from engine.protocol import Update
from harness import results
from harness.process import ServerProcess
from harness.wire import connect, edit

HOOKS = {"none": [], "slow": ["--hooks", "benchmarks.apps.hooks_app:SlowHook"],
         "failing": ["--hooks", "benchmarks.apps.hooks_app:FailingHook"]}  # fmt: skip
DEFAULT_JSON = Path(__file__).resolve().parents[1] / "results" / "hooks.json"


async def measure(url: str, edits: int, rate: float) -> list[float]:
    """Milliseconds from sending each edit to a second client receiving it."""
    latencies = []
    author: Doc[Any] = Doc()
    async with connect(url, "typing") as writer, connect(url, "typing") as reader:
        await writer.sync()
        await reader.sync()
        for i in range(edits):
            sent = time.perf_counter()
            await writer.send(Update(edit(author, "x")))
            await reader.wait_text("x" * (i + 1), timeout=30)
            latencies.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - sent)))
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 2),
            "max_ms": round(ordered[-1], 2)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--edits", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0, help="edits per second")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {}
    lines = []
    for name, flags in HOOKS.items():
        with tempfile.TemporaryDirectory() as data:
            server = ServerProcess(Path(data), flags, {"PERFORMER_LOG": "CRITICAL"})
            server.start()
            try:
                result[name] = summary(asyncio.run(measure(server.url, args.edits, args.rate)))
            finally:
                server.kill()
        lines.append(f"{name:8} hook: p50 {result[name]['p50_ms']} ms  p99 "
                     f"{result[name]['p99_ms']} ms  max {result[name]['max_ms']} ms")  # fmt: skip
        print(lines[-1], flush=True)
    results.write(args.json, module="benchmarks.apps.hooks", argv=argv, result=result,
                  lines=lines, problems=[], exit_code=0)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
