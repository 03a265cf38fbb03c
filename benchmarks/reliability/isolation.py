"""One bad client must not hurt the others (see `harness.isolation`).

Fails (exit 1) when the client that reads nothing is not cut off with 4408, a flooded
update is not saved, the flooder gets through faster than the server's token bucket
allows (a burst of twice `--rate`, then `--rate` per second), or the p99 probe latency
of the other clients passes `--max-slow-p99-ms` (beside the slow consumer) or
`--max-flood-p99-ms` (another room, during the flood)::

    python -m benchmarks.reliability.isolation --updates 2000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from harness import results
from harness.isolation import IsolationReport, flood, slow_consumer
from harness.process import ServerProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=2000, help="probes per phase")
    parser.add_argument("--size", type=int, default=20_000, help="bytes per slow-room update")
    parser.add_argument("--flood", type=int, default=20_000, help="flooder's updates")
    parser.add_argument("--rate", type=float, default=2000.0, help="server --rate")
    parser.add_argument("--max-slow-p99-ms", type=float, default=250.0)
    parser.add_argument("--max-flood-p99-ms", type=float, default=100.0)
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="isolation-") as tmp:
        server = ServerProcess(
            Path(tmp) / "data",
            ["--send-buffer-bytes", "262144", "--rate", str(args.rate)],
        )
        server.start()
        try:
            alone, _ = asyncio.run(slow_consumer(server, args.updates, args.size, False))
            beside, code = asyncio.run(slow_consumer(server, args.updates, args.size, True))
            calm = asyncio.run(flood(server, 0, args.updates, "baseline")).times
            flooded = asyncio.run(flood(server, args.flood, args.updates))
        finally:
            server.kill()
    report = IsolationReport(args.rate, args.flood, alone, beside, code, calm, flooded)
    problems = report.problems(args.max_slow_p99_ms, args.max_flood_p99_ms)
    for problem in problems:
        print(f"PROBLEM {problem}")
    for line in report.lines():
        print(line)
    exit_code = 1 if problems else 0
    results.write(
        args.json,
        module="benchmarks.reliability.isolation",
        argv=argv,
        result={
            "slow_consumer": {
                "baseline": {
                    "p50_ms": alone.p50_ms,
                    "p99_ms": alone.p99_ms,
                    "n": len(alone.samples),
                },
                "with_sleeper": {
                    "p50_ms": beside.p50_ms,
                    "p99_ms": beside.p99_ms,
                    "n": len(beside.samples),
                    "sleeper_close": code,
                },
            },
            "flood": {
                "baseline": {"p50_ms": calm.p50_ms, "p99_ms": calm.p99_ms, "n": len(calm.samples)},
                "with_flooder": {
                    "p50_ms": flooded.times.p50_ms,
                    "p99_ms": flooded.times.p99_ms,
                    "n": len(flooded.times.samples),
                    "flooder_sent": flooded.sent,
                    "flooder_saved": flooded.saved,
                    "flooder_seconds": flooded.seconds,
                    "flooder_saved_per_second": flooded.saved_per_second,
                },
                "rate": args.rate,
            },
            "thresholds": {
                "max_slow_p99_ms": args.max_slow_p99_ms,
                "max_flood_p99_ms": args.max_flood_p99_ms,
            },
        },
        lines=report.lines(),
        problems=problems,
        exit_code=exit_code,
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
