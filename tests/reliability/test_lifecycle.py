"""Room lifecycle races against a real server: cold loads, unload during a commit,
shutdown during edits, idle unload racing a reconnect or a REST write."""

from __future__ import annotations

import asyncio
import random
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Doc, Text

from engine.protocol import Update
from engine.storage import Append, DocStore, KVLogStore, LmdbKV
from harness.common import durable_doc, health
from harness.crash_loop import CrashLoop
from harness.wire import WireClient, connect, edit
from tests.conftest import ServerProcess, StartServer

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


def _heavy_room(data_dir: Path, room: str, updates: int) -> str:
    """Write a room with a long log and no snapshot, so loading it takes a while."""
    kv = LmdbKV(data_dir)
    try:
        doc: Doc[Any] = Doc()
        DocStore(KVLogStore(kv)).append_many(
            [Append(room, edit(doc, f"{i};")) for i in range(updates)]
        )
    finally:
        kv.close()
    return str(doc.get("t", type=Text))


async def _upgrade_then_abort(server: ServerProcess, room: str) -> None:
    """Open the WebSocket by hand and drop the TCP connection right after the 101, while
    the server is still loading the room."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"GET /rooms/{room} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    status = await asyncio.wait_for(reader.readline(), 10)
    assert b" 101 " in status, status
    writer.transport.abort()


async def test_a_client_gone_during_the_room_load_does_not_pin_the_room(
    server_factory: StartServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "heavy"
    expected = await asyncio.to_thread(_heavy_room, data_dir, "heavy", 20_000)
    server = server_factory("--idle-unload", "0.5", data_dir=data_dir)
    await _upgrade_then_abort(server, "heavy")
    async with asyncio.timeout(20):
        while (await health(server.url))["rooms_loaded"] != 1:  # the load finished
            await asyncio.sleep(0.01)
    async with asyncio.timeout(5):  # ten times the idle period
        while (await health(server.url))["rooms_loaded"] != 0:
            await asyncio.sleep(0.05)
    async with connect(server.url, "heavy") as client:
        await client.sync()
        assert client.text() == expected
