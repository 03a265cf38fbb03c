"""Protocol fuzzing of the live socket (see `harness.fuzz`).

Fails (exit 1) when the process dies, a probe does not arrive, more than
`--max-unanswered` frames (default 0) are neither answered nor refused with a close code,
something relayed does not apply in pycrdt, or the store does not verify::

    python -m benchmarks.reliability.fuzz --frames 20000
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from pathlib import Path

from harness import results
from harness.fuzz import fuzz_and_check
from harness.process import ServerProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--max-unanswered",
        type=int,
        default=0,
        help="frames after which the connection may break without a close code",
    )
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed}", flush=True)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        server = ServerProcess(Path(tmp) / "data")
        server.start()
        try:
            report = asyncio.run(fuzz_and_check(server, args.frames, seed))
        finally:
            server.kill()
    problems = list(report.problems)
    if report.unanswered > args.max_unanswered:
        problems.append(
            f"{report.unanswered} frames closed without a close code "
            f"(> {args.max_unanswered}), the first was frame {report.first_unanswered}"
        )
    for problem in problems:
        print(f"PROBLEM {problem}")
    print(report.line())
    exit_code = 1 if problems else 0
    results.write(
        args.json,
        module="benchmarks.reliability.fuzz",
        argv=argv,
        result={
            "seed": seed,
            "frames": report.frames,
            "accepted": report.accepted,
            "refused": report.refused,
            "unanswered": report.unanswered,
            "first_unanswered": report.first_unanswered,
            "connections": report.connections,
            "probe_rounds": report.probes,
            "close_codes": {str(k): v for k, v in sorted(report.close_codes.items())},
        },
        lines=[report.line()],
        problems=problems,
        exit_code=exit_code,
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
