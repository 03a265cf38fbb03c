"""Random and mutated frames on a live socket (the short form of
`python -m benchmarks.reliability.fuzz`): the process stays up, probes keep flowing in
the fuzzed room and in another room, and the store it leaves behind verifies. The codec
itself is fuzzed directly in tests/engine/test_protocol.py."""

from __future__ import annotations

import random

from harness.fuzz import fuzz_and_check
from tests.conftest import ServerProcess

FRAMES = 400


async def test_mutated_frames_close_only_their_connection(server: ServerProcess) -> None:
    seed = random.randrange(2**32)
    report = await fuzz_and_check(server, FRAMES, seed)
    assert report.problems == [], f"seed {seed}: {report.problems}"
    # every frame was answered: the connection stayed alive, or was closed with a code
    assert report.accepted + report.refused == FRAMES, f"seed {seed}: {report.line()}"
    assert report.accepted > 0, f"seed {seed}: no frame was ever accepted"
    assert report.connections > 1, f"seed {seed}: no frame was ever refused"
    assert set(report.close_codes) <= {4400, 4413, 1009}, report.close_codes
    assert report.probes >= FRAMES // 50
