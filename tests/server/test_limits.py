"""Flow limits: a flooding client is slowed down, a client that stops reading is cut off."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
from pycrdt import Doc

from engine.protocol import Saved, Update
from harness.wire import connect, durable_text, edit
from tests.conftest import StartServer

RATE = 100  # messages/s; the server's burst is twice that
BURST = 2 * RATE
FLOOD = 600


async def test_a_flooding_client_is_throttled_and_loses_nothing(
    server_factory: StartServer,
) -> None:
    """A token bucket lets BURST messages through at once, then RATE per second. Whatever
    the machine's speed, the server cannot have saved more than BURST + RATE x elapsed of
    the flood at any moment (the elapsed time measured here includes the server's), so
    every "saved" acknowledgement is checked against that bound; an unthrottled server
    acknowledges all 600 within a fraction of a second. Nothing may be dropped."""
    server = server_factory("--rate", str(RATE))
    acks: list[tuple[float, int]] = []
    async with connect(server.url, "flood", ack=True) as flooder:
        await flooder.sync()  # one message of the burst
        frames = [Update(edit(flooder.doc, f"{i}.")) for i in range(FLOOD)]
        started = time.monotonic()
        for frame in frames:
            await flooder.send(frame)
        sent = time.monotonic() - started
        async with asyncio.timeout(60):
            while not acks or acks[-1][1] < FLOOD:
                message = await flooder.recv(60)
                assert message is not None, f"closed with {flooder.close_code}"
                if isinstance(message, Saved):
                    acks.append((time.monotonic() - started, message.count))
    early = [(round(t, 2), n) for t, n in acks if n > BURST + RATE * t]
    assert early == [], f"acknowledged faster than {RATE}/s after a burst of {BURST}"
    # the client could hand its frames over long before they were taken: its reads backed up
    assert sent < acks[-1][0] - 1.0, (sent, acks[-1])
    assert await durable_text(server.url, "flood") == "".join(f"{i}." for i in range(FLOOD))
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
