"""Flow limits: a flooding client is slowed down, a client that stops reading is cut off."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc

from engine.protocol import Saved, Update
from harness.wire import connect, durable_text, edit
from tests.conftest import StartServer


@pytest.mark.parametrize(
    ("rate", "flood"),
    # 2,000/s regressed once: uvloop returns from a sub-millisecond sleep at once, and a
    # bucket that assumed the sleep earned a token let anything above ~1,000/s through
    [(100, 600), (2000, 10_000)],
)
async def test_a_flooding_client_is_throttled_and_loses_nothing(
    server_factory: StartServer, rate: int, flood: int
) -> None:
    """A token bucket lets a burst of messages through at once, then `rate` per second. Whatever
    the machine's speed, the server cannot have saved more than burst + rate x elapsed of
    the flood at any moment (the elapsed time measured here includes the server's), so
    every "saved" acknowledgement is checked against that bound; an unthrottled server
    acknowledges the whole flood within a fraction of a second. Nothing may be dropped."""
    burst = 2 * rate  # the server's burst is twice the rate
    server = server_factory("--rate", str(rate))
    acks: list[tuple[float, int]] = []
    async with connect(server.url, "flood", ack=True) as flooder:
        await flooder.sync()  # one message of the burst
        frames = [Update(edit(flooder.doc, f"{i}.")) for i in range(flood)]
        started = time.monotonic()
        for frame in frames:
            await flooder.send(frame)
        sent = time.monotonic() - started
        async with asyncio.timeout(60):
            while not acks or acks[-1][1] < flood:
                message = await flooder.recv(60)
                assert message is not None, f"closed with {flooder.close_code}"
                if isinstance(message, Saved):
                    acks.append((time.monotonic() - started, message.count))
    early = [(round(t, 2), n) for t, n in acks if n > burst + rate * t]
    assert early == [], f"acknowledged faster than {rate}/s after a burst of {burst}"
    # the client could hand its frames over long before they were taken: its reads backed up
    assert sent < acks[-1][0] - 1.0, (sent, acks[-1])
    assert await durable_text(server.url, "flood") == "".join(f"{i}." for i in range(flood))
    async with aiohttp.ClientSession() as http:
        metrics = await (await http.get(f"{server.url}/metrics")).text()
    throttled = [
        line
        for line in metrics.splitlines()
        if line.startswith('performer_rejected_messages_total{reason="throttled"}')
    ]
    assert throttled and float(throttled[0].split()[-1]) > 0


async def test_a_client_that_stops_reading_is_disconnected_with_4408(
    server_factory: StartServer,
) -> None:
    server = server_factory("--send-buffer-bytes", "200000")
    async with (
        connect(server.url, "slow") as sleeper,
        connect(server.url, "slow", ack=True) as writer,
    ):
        await sleeper.sync()
        await writer.sync()
        author: Doc[Any] = Doc()
        # The sleeper reads nothing while 8 MB of updates are broadcast to it.
        for _ in range(80):
            await writer.send(Update(edit(author, "z" * 100_000)))
        assert await sleeper.wait_closed(timeout=30) == 4408
        await writer.send(Update(edit(author, "!")))
        await writer.wait_saved(81, timeout=30)
        async with connect(server.url, "slow") as fresh:
            await fresh.sync()
            assert fresh.text().endswith("!")
