"""The console's "policy refusals": real servers started with the chat demo's rules (LMDB;
two processes on one Redis), a Python SDK client breaks a rule, and `/v1/rooms?detail=1`
counts the room's refusals while `/history` says who was refused, by what and why."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Array, Map

from engine.client import connect
from server.auth import issue_token
from tests.conftest import ServerProcess, StartServer
from tests.redis_process import RedisProcess

SECRET = "console-rules-" + "0123456789abcdef" * 4
RULES = str(Path(__file__).resolve().parents[2] / "examples" / "chat-rules.toml")
DEADLINE = 20.0


@pytest.fixture(params=["lmdb", "redis-two-processes"])
def servers(request: pytest.FixtureRequest, server_factory: StartServer) -> list[ServerProcess]:
    args = ("--auth-secret", SECRET, "--rules", RULES)
    if request.param == "lmdb":
        one = server_factory(*args)
        return [one, one]
    redis: RedisProcess = request.getfixturevalue("redis_server")
    return [server_factory(*args, "--redis", redis.url) for _ in range(2)]


async def get(url: str, token: str) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, await response.json()


async def listed(server: ServerProcess, token: str) -> dict[str, Any]:
    code, body = await get(server.http_url + "/v1/rooms?detail=1", token)
    assert code == 200, body
    return {room["name"]: room for room in body["rooms"]}


async def test_a_broken_rule_is_counted_per_room_and_told_in_the_history(
    servers: list[ServerProcess],
) -> None:
    a, b = servers
    admin = issue_token(SECRET, "*", user="ops", admin=True)

    def user(name: str) -> str:
        return issue_token(SECRET, "chat*", user=name)

    async with (
        connect(a.ws_url, "chat", token=user("ann"), store_path=None) as ann,
        connect(b.ws_url, "chat", token=user("bo"), store_path=None) as bo,
        connect(a.ws_url, "chat-quiet", token=user("ann"), store_path=None) as quiet,
    ):
        reasons: list[str] = []
        bo.on_rejected(reasons.append)
        for client in (ann, bo, quiet):
            await client.synced()
        for client in (ann, quiet):
            with client.doc.transaction():
                client.doc.get("messages", type=Array).append(
                    Map({"user": "ann", "text": "hello", "reactions": Map()})
                )
            await client.saved()
        bo_messages = bo.doc.get("messages", type=Array)
        async with asyncio.timeout(DEADLINE):
            while len(bo_messages) != 1:
                await asyncio.sleep(0.02)
            del bo_messages[0]  # ann's message: only its author may delete it
            await bo.saved()
            while not reasons or len(bo_messages) != 1:
                await asyncio.sleep(0.02)
            with bo.doc.transaction():  # a message in someone else's name
                bo_messages.append(Map({"user": "ann", "text": "I am ann", "reactions": Map()}))
            await bo.saved()
            while len(reasons) < 2:
                await asyncio.sleep(0.02)

    for server in (a, b):  # both processes read the same count from the shared store
        rooms = await listed(server, admin)
        assert rooms["chat"]["refusals"] == 2, rooms
        assert rooms["chat-quiet"]["refusals"] == 0, rooms
    code, page = await get(a.http_url + "/v1/rooms/chat/history", admin)
    assert code == 200, page
    refused = [(e["seq"], e["rejected"]) for e in page["entries"] if "rejected" in e]
    assert [record for _, record in refused] == [
        {"user": "bo", "by": "rule", "reason": "rule: only the author can delete messages[0]"},
        {"user": "bo", "by": "rule", "reason": "rule: messages[1].user must be your name"},
    ]
    assert refused[0][0] < refused[1][0]
    # a reader of one room counts that room's refusals only: the count is no secret
    # from those who may read its history, and other rooms stay hidden
    rooms = await listed(a, issue_token(SECRET, "chat", user="rita", read_only=True))
    assert list(rooms) == ["chat"] and rooms["chat"]["refusals"] == 2


async def test_the_check_hooks_refusals_and_failures_count_too(server_factory: StartServer) -> None:
    """`Hooks.check` refusing (by "check") and failing (by "check_failed") are policy
    refusals as well: counted, and told in the history."""
    server = server_factory("--auth-secret", SECRET, "--hooks", "tests.rules.check_hooks:Faulty")
    admin = issue_token(SECRET, "*", user="ops", admin=True)
    async with connect(
        server.ws_url, "desk", token=issue_token(SECRET, "desk", user="bo"), store_path=None
    ) as bo:
        reasons: list[str] = []
        bo.on_rejected(reasons.append)
        await bo.synced()
        for text in ("x" * 501, "raise", "fine"):
            with bo.doc.transaction():
                bo.doc.get("messages", type=Array).append(Map({"user": "bo", "text": text}))
            await bo.saved()
        async with asyncio.timeout(DEADLINE):
            while len(reasons) < 2:
                await asyncio.sleep(0.02)
    assert (await listed(server, admin))["desk"]["refusals"] == 2
    code, page = await get(server.http_url + "/v1/rooms/desk/history", admin)
    assert code == 200, page
    assert [e["rejected"]["by"] for e in page["entries"] if "rejected" in e] == [
        "check",
        "check_failed",
    ]
