"""Reproducible load and sync benchmarks, side by side with peer servers.

Run ``python -m benchmarks --help`` (or ``performer bench``). Load comes from
real Yjs clients in one Node process (``benchmarks/node``); peers are installed
on demand into ``benchmarks/.peers`` and are never runtime dependencies.
"""
