"""Reliability and security proof, long forms (the short forms run in tests/reliability).

The harnesses live in `harness/`; each module here is one command, run from the
repository root::

    python -m benchmarks.reliability.crash_loop --trials 200
    python -m benchmarks.reliability.connections --connections 10000
    python -m benchmarks.reliability.churn --cycles 10000
    python -m benchmarks.reliability.isolation --updates 2000
    python -m benchmarks.reliability.fuzz --frames 20000
    python -m benchmarks.reliability.abuse --probes 200

Every run prints `RESULT ...` lines, writes its raw results with `--json PATH`, and exits
non-zero when it loses anything, finds the server dead, or a reading passes its
threshold (each threshold is an option with a default).
"""
