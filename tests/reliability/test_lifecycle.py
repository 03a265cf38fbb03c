"""Room lifecycle races against a real server: cold loads, unload during a commit,
shutdown during edits, idle unload racing a reconnect or a REST write."""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
from pycrdt import Doc, Text

from benchmarks.reliability.common import durable_doc, health
from benchmarks.reliability.crash_loop import CrashLoop
from engine.protocol import Update
from tests.conftest import ServerProcess, StartServer
from tests.server.wire import WireClient, connect, edit

FAST_UNLOAD = ("--idle-unload", "0.05")
CROWD = 40


async def test_a_crowd_joining_a_cold_room_shares_one_loaded_room(server: ServerProcess) -> None:
    async with connect(server.url, "cold", ack=True) as seed:
        await seed.sync()
        for i in range(300):
            await seed.send(Update(edit(seed.doc, f"{i};")))
        await seed.wait_saved(300)
        expected = seed.text()
    server.kill()
    server.restart()
    async with AsyncExitStack() as stack:
        async with asyncio.timeout(60):  # all connect at once, so all race for the load
            clients = await asyncio.gather(
                *(stack.enter_async_context(connect(server.url, "cold")) for _ in range(CROWD))
            )
            await asyncio.gather(*(c.sync() for c in clients))
        assert {c.text() for c in clients} == {expected}
        # One room actor for everyone: each client's edit reaches every other client.
        for n, client in enumerate(clients):
            await client.send(Update(edit(client.doc, "x", name=f"k{n}")))
        for client in clients:
            await _wait_keys(client, CROWD)
        assert (await health(server.url))["rooms_loaded"] == 1


async def _wait_keys(client: WireClient, count: int) -> None:
    async with asyncio.timeout(30):
        while not all(str(client.doc.get(f"k{n}", type=Text)) == "x" for n in range(count)):
            assert await client.recv() is not None, client.close_code


async def test_last_client_leaving_mid_commit_then_a_new_one_joining_loses_nothing(
    server_factory: StartServer,
) -> None:
    server = server_factory(*FAST_UNLOAD)
    rng = random.Random(5)
    expected = ""
    for round_ in range(15):
        async with connect(server.url, "handover") as leaver:
            await leaver.sync()
            for i in range(100):
                await leaver.send(Update(edit(leaver.doc, f"{round_}.{i};")))
            expected = leaver.text()
        # The leaver is gone with its commit possibly in flight and the room about to
        # unload; the next client joins at a random point of that window.
        await asyncio.sleep(rng.uniform(0, 0.1))
        async with connect(server.url, "handover") as joiner:
            await joiner.sync()
            await joiner.wait_text(expected, timeout=20)
    assert str((await durable_doc(server.url, "handover")).get("t", type=Text)) == expected


async def test_sigterm_with_edits_in_flight_exits_zero_and_keeps_every_ack(
    server: ServerProcess,
) -> None:
    loop = CrashLoop(server, random.Random(11), rooms=3, writers_per_room=2)
    result = await loop.trial(0, verify=True, run_for=0.8, graceful=True)
    assert result.lost == []
    assert result.acked > 0


async def test_idle_unload_racing_reconnects_keeps_every_edit(server_factory: StartServer) -> None:
    server = server_factory(*FAST_UNLOAD)
    rng = random.Random(3)
    expected = ""
    for i in range(30):
        async with connect(server.url, "flicker", ack=True) as client:
            await client.sync()
            assert client.text() == expected
            await client.send(Update(edit(client.doc, f"{i};")))
            await client.wait_saved(1)
            expected = client.text()
        await asyncio.sleep(rng.uniform(0, 0.1))  # before, during or after the unload
    async with connect(server.url, "flicker") as last:
        await last.sync()
        assert last.text() == expected


async def test_rest_writes_racing_idle_unload_are_all_stored(server_factory: StartServer) -> None:
    server = server_factory(*FAST_UNLOAD)
    rng = random.Random(4)
    doc: Doc[Any] = Doc()
    seqs = []
    async with aiohttp.ClientSession() as http:
        for i in range(30):
            response = await http.post(
                f"{server.url}/v1/rooms/rest-race/update", data=edit(doc, f"{i};")
            )
            assert response.status == 200, await response.text()
            seqs.append((await response.json())["seq"])
            await asyncio.sleep(rng.uniform(0, 0.1))
    assert seqs == list(range(1, 31))
    stored = await durable_doc(server.url, "rest-race")
    assert str(stored.get("t", type=Text)) == str(doc.get("t", type=Text))
