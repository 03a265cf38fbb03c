"""Nothing any client has seen is lost: SIGKILL at a random moment, SIGTERM mid-stream."""

from __future__ import annotations

import asyncio
import random

import aiohttp

from engine.protocol import Update
from harness.wire import WireClient, connect, durable_text, edit
from tests.conftest import ServerProcess


async def stream_edits(client: WireClient, stop: asyncio.Event, sent: list[str]) -> None:
    """Send numbered words until stopped or the socket dies."""
    i = 0
    while not stop.is_set():
        word = f"<{i}>"
        try:
            await client.send(Update(edit(client.doc, word)))
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            return
        sent.append(word)
        i += 1
        if i % 20 == 0:
            await asyncio.sleep(0.001)


async def observe(client: WireClient, seen: list[str]) -> None:
    """Record the text as it arrives until the connection drops."""
    try:
        while await client.recv(timeout=30) is not None:
            seen.append(client.text())
    except (aiohttp.ClientError, ConnectionError, TimeoutError):
        return


async def test_sigkill_loses_nothing_an_observer_saw(server: ServerProcess) -> None:
    rng = random.Random(7)
    for trial in range(3):
        room = f"crash{trial}"
        seen: list[str] = []
        sent: list[str] = []
        stop = asyncio.Event()
        async with connect(server.url, room) as writer, connect(server.url, room) as watcher:
            await writer.sync()
            await watcher.sync()
            watching = asyncio.create_task(observe(watcher, seen))
            writing = asyncio.create_task(stream_edits(writer, stop, sent))
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            server.kill()
            stop.set()
            await asyncio.wait_for(asyncio.gather(writing, watching), 30)
        assert seen, "the observer received nothing before the crash"
        server.restart()
        after = await durable_text(server.url, room)
        last_seen = seen[-1]
        assert after.startswith(last_seen), (trial, len(last_seen), len(after))


async def test_acknowledged_edits_survive_sigkill(server: ServerProcess) -> None:
    async with connect(server.url, "acked", ack=True) as client:
        await client.sync()
        for i in range(50):
            await client.send(Update(edit(client.doc, f"{i},")))
        await client.wait_saved(50)
        expected = client.text()
    server.kill()
    server.restart()
    assert await durable_text(server.url, "acked") == expected


async def test_sigterm_with_edits_in_flight_flushes_and_exits_zero(server: ServerProcess) -> None:
    async with connect(server.url, "term", ack=True) as client:
        await client.sync()
        for i in range(200):
            await client.send(Update(edit(client.doc, f"{i};")))
        assert server.process is not None
        acked = 0
        stopper = asyncio.create_task(asyncio.to_thread(server.stop))
        while (message := await client.recv()) is not None:
            acked = max(acked, getattr(message, "count", 0))
        assert await stopper == 0
        assert client.close_code == 1001
    server.restart()
    text = await durable_text(server.url, "term")
    assert text.count(";") >= acked
    assert text == "".join(f"{i};" for i in range(text.count(";")))
