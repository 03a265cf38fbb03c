"""Attacks on views, restores, pages and change streams must not hurt another room (see
`harness.abuse`).

Fails (exit 1) when the probe room's p99 edit latency under attack passes
`--max-p99-ratio` (2) times its quiet p99 (the control phase, `--control-busy`, says
how much of that the machine's co-located load alone accounts for), the server's RSS
grows more than `--max-rss-growth-mib` (150) during the attacks, the compute flood is
never refused with 503, one token gets every stream it asks for, or a stream outlives its
token::

    python -m benchmarks.reliability.abuse --probes 200

With the attacks on another machine (so that their CPU is not taken from the server's
cores): there `python -m benchmarks.reliability.abuse --attacker-listen 0.0.0.0:7700`, here
`... --attacker-at ATTACKER:7700 --advertise-host THIS-HOST` (both with the same
`ABUSE_ATTACKER_KEY`).

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
from harness.abuse_attacks import serve_attacks
from harness.attacker_link import RemoteAttacker
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
    parser.add_argument("--attacker-listen", metavar="HOST:PORT",
                        help="be the attacker host: wait here for harnesses on other "
                             "machines (their --attacker-at), one run at a time")  # fmt: skip
    parser.add_argument("--attacker-at", metavar="HOST:PORT",
                        help="take the attacks from that attacker host instead of a "
                             "local process (the server then listens on every "
                             "interface)")  # fmt: skip
    parser.add_argument("--advertise-host", metavar="HOST",
                        help="with --attacker-at: the address the attacker host reaches "
                             "this machine at")  # fmt: skip
    parser.add_argument("--attacker-key", default=os.environ.get("ABUSE_ATTACKER_KEY", SECRET),
                        help="shared key of harness and attacker host (default: "
                             "$ABUSE_ATTACKER_KEY, else the harness's secret)")  # fmt: skip
    args = parser.parse_args(argv)
    key = args.attacker_key.encode()
    if args.attacker_listen:
        serve_attacks(_address(args.attacker_listen), key)
        return 0
    if args.attacker_at and not args.advertise_host:
        parser.error("--attacker-at needs --advertise-host (how the attacker host reaches us)")
    sizes = AbuseSizes(**{name: getattr(args, name) for name in asdict(defaults)})
    with tempfile.TemporaryDirectory(prefix="abuse-") as tmp:
        flags = ["--auth-secret", SECRET, *args.serve_arg]  # as the README
        if args.attacker_at:
            flags += ["--host", "0.0.0.0"]  # the attacker host must reach it
        server = ServerProcess(Path(tmp) / "data", flags)
        server.start()
        attacker = None
        if args.attacker_at:
            url = f"http://{args.advertise_host}:{server.port}"
            attacker = RemoteAttacker(url, sizes, _address(args.attacker_at), key)
        try:
            report = asyncio.run(run_abuse(server, sizes, args.control_busy, attacker))
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
            "attacker": args.attacker_at or "local process",
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


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


if __name__ == "__main__":
    sys.exit(main())
