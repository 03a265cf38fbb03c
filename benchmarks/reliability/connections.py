"""Many concurrent WebSocket connections on one server, then all of them gone, in rounds.

Fails (exit 1) when a connection does not sync, the server does not count them all open
and then all gone, the RSS per open connection passes `--max-kib-per-connection`, or the
RSS left after everyone left grows from the first round to the last by more than
`--max-round-growth-mib` (a leak grows every round; allocator reuse does not)::

    python -m benchmarks.reliability.connections --connections 10000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from harness import results
from harness.connections import ConnectionReport, hold_connections, round_growth_problems
from harness.process import ServerProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="rounds on the same server")
    parser.add_argument("--max-kib-per-connection", type=float, default=40.0)
    parser.add_argument("--max-round-growth-mib", type=float, default=16.0)
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args(argv)
    reports: list[ConnectionReport] = []
    problems: list[str] = []
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="connections-") as tmp:
        server = ServerProcess(Path(tmp) / "data", ["--idle-unload", "1"])
        server.start()
        try:
            for round_ in range(1, args.rounds + 1):
                report = asyncio.run(hold_connections(server, args.connections, args.rooms))
                reports.append(report)
                problems += [
                    f"round {round_}: {p}" for p in report.problems(args.max_kib_per_connection)
                ]
                lines.append(report.line() + f" round={round_}")
                print(lines[-1], flush=True)
            code = server.stop()
        finally:
            server.kill()
    problems += round_growth_problems(reports, args.max_round_growth_mib)
    if code != 0:
        problems.append(f"SIGTERM exit code {code}")
    lines.append(f"RESULT connections sigterm_exit={code} problems={len(problems)}")
    for problem in problems:
        print(f"PROBLEM {problem}")
    print(lines[-1])
    exit_code = 1 if problems else 0
    results.write(
        args.json,
        module="benchmarks.reliability.connections",
        argv=argv,
        result={
            "rounds": [
                {
                    **{k: v for k, v in asdict(r).items() if k != "failures"},
                    "failures": r.failures[:10],
                    "per_connection_kib": r.per_connection_kib,
                }
                for r in reports
            ],
            "sigterm_exit": code,
            "thresholds": {
                "max_kib_per_connection": args.max_kib_per_connection,
                "max_round_growth_mib": args.max_round_growth_mib,
            },
        },
        lines=lines,
        problems=problems,
        exit_code=exit_code,
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
