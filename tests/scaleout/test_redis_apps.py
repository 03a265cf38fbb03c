"""What applications build on, with two server processes sharing one real Redis: the
authenticate and on_change hooks, server-side edits, the change feed, webhooks and
versions behave as on LMDB, and each room's deliveries come from one process."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import aiohttp
from pycrdt import Array, Doc, Text

from engine.protocol import Update
from harness.wire import connect, edit
from tests.conftest import ServerProcess, StartServer
from tests.redis_process import RedisProcess
from tests.server.hooks_app import delivered, wait_until
from tests.server.receiver import Receiver, verify

HOOKS = "tests.server.hooks_app"
WAIT = 20.0


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


async def post(base: str, room: str, update: bytes, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session() as http:
        async with http.post(f"{base}/v1/rooms/{room}/update", data=update,
                             headers=headers) as response:  # fmt: skip
            assert response.status == 200, await response.text()
            return int((await response.json())["seq"])


async def test_on_change_sees_both_processes_edits_once_each_in_order(
    server_factory: StartServer, redis_server: RedisProcess, tmp_path: Path
) -> None:
    log = tmp_path / "changes.jsonl"
    env = {"PERFORMER_TEST_CHANGES": str(log)}
    a, b = (server_factory("--redis", redis_server.url, "--hooks", f"{HOOKS}:Recorder", env=env)
            for _ in range(2))  # fmt: skip
    author: Doc[Any] = Doc()
    for i in range(12):
        await post((a, b)[i % 2].url, "shared", edit(author, f"{i},"))
    await wait_until(lambda: len({d["seq"] for d in delivered(log)}) == 12, "12 deliveries")
    await asyncio.sleep(0.5)  # a second process would deliver again now if it could
    seqs = [d["seq"] for d in delivered(log) if d["room"] == "shared"]
    assert seqs == list(range(1, 13))  # one process per room: no seq twice


async def test_auth_hook_bot_edits_and_versions_on_redis(
    server_factory: StartServer, redis_server: RedisProcess
) -> None:
    auth = server_factory("--redis", redis_server.url, "--hooks", f"{HOOKS}:AppAuth")
    bot = server_factory("--redis", redis_server.url, "--hooks", f"{HOOKS}:ListBot")
    async with connect(auth.url, "notes", token="nobody") as refused:
        assert await refused.wait_closed() == 4401
    assert await post(auth.url, "notes", edit(Doc(), "x"), token="ann-token") == 1
    async with connect(bot.url, "bots") as client:
        await client.sync()
        updates: list[bytes] = []
        client.doc.observe(lambda event: updates.append(bytes(event.update)))
        client.doc.get("list", type=Array).append("ping-7")
        await client.send(Update(updates[-1]))
        async with asyncio.timeout(WAIT):
            while "pong-7" not in (client.doc.get("list", type=Array).to_py() or []):
                await client.recv()
    async with session() as http:
        base = f"{auth.url}/v1/rooms/notes"
        bearer = {"Authorization": "Bearer ann-token"}
        async with http.post(f"{base}/versions", json={"name": "v1"}, headers=bearer) as r:
            assert r.status == 200 and (await r.json())["seq"] == 1
        await post(auth.url, "notes", edit(Doc(), "y"), token="ann-token")
        async with http.post(f"{base}/restore", json={"seq": 1}, headers=bearer) as r:
            assert r.status == 200 and (await r.json())["restore_of"] == 1
        async with http.get(f"{base}/json?at=v1", headers=bearer) as r:
            assert (await r.json())["seq"] == 1
        async with http.get(f"{base}/history", headers=bearer) as r:
            entries = (await r.json())["entries"]
        assert [e["user"] for e in entries] == ["ann", "ann", "ann"]


async def test_feed_on_one_process_streams_commits_made_on_another(
    server_factory: StartServer, redis_server: RedisProcess
) -> None:
    a, b = (server_factory("--redis", redis_server.url) for _ in range(2))
    author: Doc[Any] = Doc()
    await post(a.url, "feed", edit(author, "first"))
    async with session() as http:
        # the room is loaded on b (a client there), so b hears a's commits at once
        async with connect(b.url, "feed") as follower:
            await follower.sync()
            response = await http.get(f"{b.url}/v1/rooms/feed/changes?after=0",
                                      headers={"Accept": "text/event-stream"})  # fmt: skip
            seen: list[int] = []
            await post(a.url, "feed", edit(author, " second"))
            async with asyncio.timeout(WAIT):
                while len(seen) < 2:
                    line = (await response.content.readline()).decode()
                    if line.startswith("id: "):
                        seen.append(int(line[4:]))
            response.close()
        assert seen == [1, 2]
        async with http.get(f"{b.url}/v1/rooms/feed/changes?after=0") as r:
            entries = (await r.json())["entries"]
        doc: Doc[Any] = Doc()
        for entry in entries:
            doc.apply_update(base64.b64decode(entry["update"]))
        assert str(doc.get("t", type=Text)) == "first second"


async def test_webhooks_from_two_processes_cover_each_room_once_in_order(
    server_factory: StartServer, redis_server: RedisProcess, receiver: Receiver
) -> None:
    args = ("--redis", redis_server.url, "--webhook", receiver.url, "--webhook-secret", "k" * 32)
    a, b = server_factory(*args), server_factory(*args)
    author: Doc[Any] = Doc()
    for i in range(10):
        await post((a, b)[i % 2].url, "hooked", edit(author, f"{i},"))
    await receiver.wait_for(lambda r: r.acknowledged_upto("hooked") == 10)
    await asyncio.sleep(1.5)
    ranges = [(r.payload["from_seq"], r.payload["to_seq"]) for r in receiver.received]
    assert all(verify("k" * 32, r) for r in receiver.received)
    covered = 0
    for start, end in ranges:
        assert start == covered + 1, ranges  # in order, no gap, nothing sent twice
        covered = end
    assert covered == 10


async def test_a_process_killed_mid_delivery_is_taken_over(
    server_factory: StartServer, redis_server: RedisProcess, tmp_path: Path
) -> None:
    """Leases expire: when the delivering process dies, another one resumes from the
    cursor stored in Redis (at least once: a seq may come twice, none is skipped)."""
    log = tmp_path / "changes.jsonl"
    env = {"PERFORMER_TEST_CHANGES": str(log)}
    servers: list[ServerProcess] = [
        server_factory("--redis", redis_server.url, "--hooks", f"{HOOKS}:Recorder", env=env)
        for _ in range(2)
    ]
    author: Doc[Any] = Doc()
    for i in range(5):
        await post(servers[0].url, "handover", edit(author, f"{i},"))
    await wait_until(lambda: len(delivered(log)) >= 5, "first deliveries")
    for server in servers:
        server.kill()
    servers[1].restart()
    for i in range(5, 8):
        await post(servers[1].url, "handover", edit(author, f"{i},"))
    # the dead process's lease (15 s) expires, then the survivor delivers from the cursor
    everything = set(range(1, 9))
    await wait_until(lambda: {d["seq"] for d in delivered(log)} == everything, "all 8", 40)


async def test_a_room_deleted_on_one_process_ends_feeds_on_another(
    server_factory: StartServer, redis_server: RedisProcess
) -> None:
    """Both a room deleted and a room deleted then written again (a new room of the same
    name) end the other process's streams with `deleted`; new streams there work."""
    a, b = (server_factory("--redis", redis_server.url) for _ in range(2))
    async with session() as http:
        for recreate in (False, True):
            await post(a.url, "gone", edit(Doc(), "first"))
            response = await http.get(f"{b.url}/v1/rooms/gone/changes?after=0",
                                      headers={"Accept": "text/event-stream"})  # fmt: skip
            assert response.status == 200
            events: list[str] = []
            async with asyncio.timeout(WAIT):
                while "update" not in events:
                    line = (await response.content.readline()).decode()
                    if line.startswith("event: "):
                        events.append(line[7:].strip())
                async with http.delete(f"{a.url}/v1/rooms/gone") as deleted:
                    assert deleted.status == 200
                if recreate:
                    await post(a.url, "gone", edit(Doc(), "again"))
                while line := (await response.content.readline()).decode():
                    if line.startswith("event: "):
                        events.append(line[7:].strip())
            assert events[-1] == "deleted", events
            response.close()
            async with http.delete(f"{a.url}/v1/rooms/gone") as cleanup:
                assert cleanup.status in (200, 404)
