"""Flow limits: a flooding client is slowed down, a client that stops reading is cut off."""

from __future__ import annotations

from typing import Any

import aiohttp
from pycrdt import Doc

from engine.protocol import Update
from tests.conftest import StartServer
from tests.server.wire import connect, edit


async def test_a_flooding_client_is_throttled_and_loses_nothing(
    server_factory: StartServer,
) -> None:
    server = server_factory("--rate", "100")
    async with connect(server.url, "flood", ack=True) as flooder:
        await flooder.sync()
        for i in range(400):
            await flooder.send(Update(edit(flooder.doc, f"{i}.")))
        await flooder.wait_saved(400, timeout=30)
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
