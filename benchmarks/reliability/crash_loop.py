"""SIGKILL crash loop with writers and observers (see `harness.crash_loop` for what each
trial checks).

Fails (exit 1) when anything observed or acknowledged is lost, a client task fails, or
`performer verify` rejects the crashed store::

    python -m benchmarks.reliability.crash_loop --trials 200
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from harness import results
from harness.common import verify_store
from harness.crash_loop import CrashLoop, run
from harness.process import ServerProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=3)
    parser.add_argument("--writers", type=int, default=2, help="writers per room")
    parser.add_argument("--max-run", type=float, default=1.5, help="seconds before the kill")
    parser.add_argument("--verify-every", type=int, default=10, help="0: only at the end")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed}", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="crash-loop-") as tmp:
        server = ServerProcess(Path(tmp) / "data")
        server.start()
        loop = CrashLoop(
            server,
            random.Random(seed),
            rooms=args.rooms,
            writers_per_room=args.writers,
            max_run_seconds=args.max_run,
        )
        try:
            totals = asyncio.run(run(loop, args.trials, args.verify_every or args.trials))
        finally:
            server.kill()
        code, output = verify_store(server.data_dir)
    seconds = time.monotonic() - started
    print(f"final verify: exit {code}: {output}")
    line = totals.line() + f" verify_exit={code} seconds={seconds:.0f}"
    print(line)
    problems = totals.lost + ([f"final performer verify exit {code}: {output}"] if code else [])
    exit_code = 1 if problems else 0
    results.write(
        args.json,
        module="benchmarks.reliability.crash_loop",
        argv=argv,
        result={**asdict(totals), "seed": seed, "verify_exit": code, "seconds": seconds},
        lines=[line],
        problems=problems,
        exit_code=exit_code,
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
