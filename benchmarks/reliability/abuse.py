"""Attacks on views, restores, pages and change streams must not hurt another room (see
`harness.abuse`).

Fails (exit 1) when the probe room's p99 edit latency under attack passes
`--max-p99-ratio` (2) times its quiet p99 (the control phase, `--control-busy`, says
how much of that the machine's co-located load alone accounts for), the server's RSS grows more than
`--max-rss-growth-mib` (150) during the attacks, the compute flood is never refused with
503, one token gets every stream it asks for, or a stream outlives its token::

    python -m benchmarks.reliability.abuse --probes 200

`--serve-arg` passes a flag on to the server, for an A/B of one of its limits under the
same attacks (e.g. `--serve-arg=--restore-bytes-per-second=0` turns that one off).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from harness import results
from harness.abuse import SECRET, AbuseSizes, run_abuse
from harness.process import ServerProcess


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = AbuseSizes()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=value)
    parser.add_argument("--max-p99-ratio", type=float, default=2.0)
    parser.add_argument("--max-rss-growth-mib", type=float, default=150.0)
    parser.add_argument("--control-busy", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="before the attacks, probe again while N idle-priority "
                             "processes spin and nothing attacks (default: one per core; "
                             "0: skip)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--serve-arg", action="append", default=[], metavar="FLAG",
                        help="one more flag for the server (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    sizes = AbuseSizes(**{name: getattr(args, name) for name in asdict(defaults)})
    with tempfile.TemporaryDirectory(prefix="abuse-") as tmp:
        flags = ["--auth-secret", SECRET, *args.serve_arg]  # as the README
        server = ServerProcess(Path(tmp) / "data", flags)
        server.start()
        try:
            report = asyncio.run(run_abuse(server, sizes, args.control_busy))
        finally:
            server.kill()
    problems = report.problems(args.max_p99_ratio, args.max_rss_growth_mib, sizes)
    for problem in problems:
        print(f"PROBLEM {problem}")
    for line in report.lines():
        print(line)
    exit_code = 1 if problems else 0
    results.write(
        args.json,
        module="benchmarks.reliability.abuse",
        argv=argv,
        result={
            "sizes": asdict(sizes),
            "serve_args": args.serve_arg,
            "probe": {
                phase: {"p50_ms": times.p50_ms, "p99_ms": times.p99_ms, "n": len(times.samples)}
                for phase, times in (
                    ("quiet", report.quiet),
                    ("control", report.control),
                    ("attacked", report.attacked),
                )
                if times is not None
            },
            "control_busy": report.control_busy,
            "loop_stalls": {
                "quiet": asdict(report.stalls_quiet),
                "attacked": asdict(report.stalls_attacked),
            },
            "rss_mib": report.rss_mib,
            "statuses": {name: dict(counts) for name, counts in report.statuses.items()},
            "page_bytes": report.page_bytes,
            "streams_accepted_one_token": report.streams_accepted,
            "subscribers_at_end": report.subscribers_at_end,
            "expired": report.expired,
            "expired_seconds": report.expired_seconds,
            "thresholds": {
                "max_p99_ratio": args.max_p99_ratio,
                "max_rss_growth_mib": args.max_rss_growth_mib,
            },
        },
        lines=report.lines(),
        problems=problems,
        exit_code=exit_code,
    )
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
