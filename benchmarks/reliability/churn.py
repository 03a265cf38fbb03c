"""Connect/disconnect cycles on one room that stays loaded (see `harness.churn`).

Fails (exit 1) when a connection, presence state or edit is left behind or lost, or the
server's RSS at the end is more than `--max-growth-mib` above its level after the
warm-up cycles::

    python -m benchmarks.reliability.churn --cycles 10000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from harness import results
from harness.churn import churn
from harness.process import ServerProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=10_000)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--max-growth-mib", type=float, default=16.0)
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="churn-") as tmp:
        server = ServerProcess(Path(tmp) / "data")
        server.start()
        try:
            report = asyncio.run(churn(server, args.cycles, args.parallel))
        finally:
            server.kill()
    problems = report.problems(args.max_growth_mib)
    for problem in problems:
        print(f"PROBLEM {problem}")
    print(report.line())
    exit_code = 1 if problems else 0
    results.write(
        args.json,
        module="benchmarks.reliability.churn",
        argv=argv,
        result={
            **asdict(report),
            "growth_mib": report.growth_mib,
            "thresholds": {"max_growth_mib": args.max_growth_mib},
        },
        lines=[report.line()],
        problems=problems,
        exit_code=exit_code,
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
