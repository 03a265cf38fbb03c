"""SIGKILL at random moments, with compaction running: nothing seen or acknowledged is lost.

The short form of `python -m benchmarks.reliability.crash_loop` (see there for what each
trial checks); the seed is in the failure message.
"""

from __future__ import annotations

import random

from harness.common import verify_store
from harness.crash_loop import CrashLoop, Totals
from tests.conftest import ServerProcess

TRIALS = 5


async def test_crash_loop_loses_nothing_observed_or_acknowledged(server: ServerProcess) -> None:
    seed = random.randrange(2**32)
    loop = CrashLoop(server, random.Random(seed), rooms=2, writers_per_room=2, max_run_seconds=1.2)
    totals = Totals()
    for trial in range(TRIALS):
        # the first run is long enough that the rooms pass 1,000 updates (compaction)
        run_for = 1.2 if trial == 0 else None
        totals.add(await loop.trial(trial, verify=trial == TRIALS - 1, run_for=run_for))
    assert totals.lost == [], f"seed {seed}: {totals.lost}"
    assert totals.acked > 0 and totals.observed > 0, f"seed {seed}: nothing happened"
    assert totals.compactions > 0, f"seed {seed}: no snapshot was written before a kill"
    server.kill()
    code, output = verify_store(server.data_dir)
    assert code == 0, output
