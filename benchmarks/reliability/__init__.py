"""Reliability and security proof, long forms (the short forms run in tests/reliability).

Each module is one command, run from the repository root::

    .venv/bin/python -m benchmarks.reliability.crash_loop --trials 200
    .venv/bin/python -m benchmarks.reliability.connections --connections 10000
    .venv/bin/python -m benchmarks.reliability.churn --cycles 10000
    .venv/bin/python -m benchmarks.reliability.isolation --updates 2000
    .venv/bin/python -m benchmarks.reliability.fuzz --frames 20000

Every run prints one `RESULT ...` line that can be pasted into a report; a run that loses
anything or finds the server dead exits non-zero.
"""
