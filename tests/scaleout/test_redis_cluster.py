"""Several server processes sharing rooms through one real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from pycrdt import Array, Doc, Text

from engine.client import connect as sdk_connect
from engine.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    Update,
    decode_awareness,
    encode_awareness,
)
from harness.wire import connect, durable_text, edit
from tests.conftest import ServerProcess, StartServer
from tests.redis_process import RedisProcess


def nodes(start: StartServer, redis: RedisProcess, count: int) -> list[ServerProcess]:
    return [start("--redis", redis.url) for _ in range(count)]


async def test_clients_on_three_processes_edit_one_room_and_converge(
    server_factory: StartServer, redis_server: RedisProcess
) -> None:
    a, b, c = nodes(server_factory, redis_server, 3)
    async with (
        connect(a.url, "shared", ack=True) as on_a,
        connect(b.url, "shared") as on_b,
        connect(c.url, "shared") as on_c,
    ):
        for client in (on_a, on_b, on_c):
            await client.sync()
        await on_a.send(Update(edit(on_a.doc, "a")))
        await on_b.wait_text("a")
        await on_c.wait_text("a")
        await on_b.send(Update(edit(on_b.doc, "b")))
        await on_c.send(Update(edit(on_c.doc, "c")))
        for client in (on_a, on_b, on_c):
            async with asyncio.timeout(10):
                while len(client.text()) < 3:
                    assert await client.recv() is not None
        assert on_a.text() == on_b.text() == on_c.text()
        assert sorted(on_a.text()) == ["a", "b", "c"]
    for node in (a, b, c):
        assert sorted(await durable_text(node.url, "shared")) == ["a", "b", "c"]


async def test_presence_crosses_processes(
    server_factory: StartServer, redis_server: RedisProcess
) -> None:
    a, b = nodes(server_factory, redis_server, 2)
    async with connect(a.url, "aw") as on_a, connect(b.url, "aw") as on_b:
        await on_a.sync()
        await on_b.sync()
        state = AwarenessEntry(31337, 1, '{"user":{"name":"bea"}}')
        await on_b.send(AwarenessUpdate(encode_awareness([state])))
        async with asyncio.timeout(10):
            while True:
                seen = await on_a.wait_for(AwarenessUpdate)
                assert isinstance(seen, AwarenessUpdate)
                if state in decode_awareness(seen.payload):
                    break


async def test_killed_process_loses_nothing_acknowledged_and_clients_move_on(
    server_factory: StartServer, redis_server: RedisProcess
) -> None:
    a, b = nodes(server_factory, redis_server, 2)
    async with connect(a.url, "failover", ack=True) as client:
        await client.sync()
        for i in range(30):
            await client.send(Update(edit(client.doc, f"{i};")))
        await client.wait_saved(30)
        expected = client.text()
        a.kill()
    async with connect(b.url, "failover") as moved:
        await moved.sync()
        assert moved.text() == expected


async def test_redis_restart_with_aof_keeps_every_acknowledged_update(
    server_factory: StartServer, redis_server: RedisProcess
) -> None:
    (node,) = nodes(server_factory, redis_server, 1)
    async with connect(node.url, "aof", ack=True) as client:
        await client.sync()
        for i in range(20):
            await client.send(Update(edit(client.doc, f"{i},")))
        await client.wait_saved(20)
        expected = client.text()
    redis_server.kill()
    redis_server.start()
    node.kill()
    node.restart()
    assert await durable_text(node.url, "aof") == expected


async def test_redis_outage_withholds_acks_and_everything_converges_after(
    server_factory: StartServer, redis_server: RedisProcess, tmp_path: Any
) -> None:
    (node,) = nodes(server_factory, redis_server, 1)
    async with sdk_connect(node.ws_url, "outage", store_path=str(tmp_path / "c")) as client:
        items = client.doc.get("items", type=Array)
        items.append("before")
        await asyncio.wait_for(client.saved(), 15)
        redis_server.kill()
        items.append("during")
        saved = asyncio.ensure_future(client.saved())
        await asyncio.sleep(1.0)
        assert not saved.done(), "an edit was acknowledged while Redis was down"
        redis_server.start()
        await asyncio.wait_for(saved, 30)
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{node.url}/v1/rooms/outage/state")
        doc: Doc[Any] = Doc()
        doc.apply_update(await response.read())
        assert doc.get("items", type=Array).to_py() == ["before", "during"]


async def test_rest_history_and_time_travel_work_the_same_on_redis(
    server_factory: StartServer, redis_server: RedisProcess
) -> None:
    (node,) = nodes(server_factory, redis_server, 1)
    author: Doc[Any] = Doc()
    async with aiohttp.ClientSession() as http:
        for word in ("x", "y", "z"):
            response = await http.post(f"{node.url}/v1/rooms/rest/update", data=edit(author, word))
            assert response.status == 200
        history = await (await http.get(f"{node.url}/v1/rooms/rest/history")).json()
        assert [e["seq"] for e in history["entries"]] == [1, 2, 3]
        old = await (await http.get(f"{node.url}/v1/rooms/rest/state", params={"at": 2})).read()
        doc: Doc[Any] = Doc()
        doc.apply_update(old)
        assert str(doc.get("t", type=Text)) == "xy"
        rooms = (await (await http.get(f"{node.url}/v1/rooms")).json())["rooms"]
        assert [(r["name"], r["last_seq"]) for r in rooms] == [("rest", 3)]
