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
    # Every frame is answered: the connection stays alive, or is closed with a close code.
    # The server reads on until the client's close frame, so the code is not lost to the
    # client's answer finding its socket closed (that race is pinned without timing in
    # tests/server/test_websocket.py); the margin is for a client starved past the linger
    # on a loaded machine. A server that drops connections without a code does it for
    # nearly every refusal.
    assert report.unanswered <= report.refused // 100, f"seed {seed}: {report.line()}"
    assert report.accepted > 0, f"seed {seed}: no frame was ever accepted"
    assert report.connections > 1, f"seed {seed}: no frame was ever refused"
    assert set(report.close_codes) <= {4400, 4413, 1009}, report.close_codes
    assert report.probes >= FRAMES // 50
