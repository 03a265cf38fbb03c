"""What the tests and the benchmarks share: a raw y-websocket client, a server process,
and the reliability harnesses (crash loop, connections, churn, isolation, fuzz).

Tests (`tests/`) and benchmarks (`benchmarks/`) both import `harness`; neither imports
the other, and `harness` imports neither. The short forms of the harnesses run in
tests/reliability; the long forms are `python -m benchmarks.reliability.NAME`.
"""
