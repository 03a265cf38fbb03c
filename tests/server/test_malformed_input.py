"""Malformed input is a 400 with a reason, never a 500: odd `?at=` values, a 5,000-digit
Last-Event-ID, JSON bodies nested past any parser's stack, a room nested 3,000 deep.
And version names: bounded per room (on LMDB and on Redis) and listed in pages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc, Map

from harness.wire import edit
from server import Config, create_app
from server.config import Limits
from tests.conftest import ServerProcess
from tests.redis_process import RedisProcess

OCTET = {"Content-Type": "application/octet-stream"}


async def call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kw) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


async def test_odd_positions_are_400_with_a_reason(server: ServerProcess) -> None:
    room = f"{server.url}/v1/rooms/odd"
    async with aiohttp.ClientSession() as http:
        assert (await call(http, "POST", f"{room}/update", data=edit(Doc(), "x"),
                           headers=OCTET))[0] == 200  # fmt: skip
        for at in ("²", "٣", "9" * 5000, "1" * 25):
            for path in ("state", "json"):
                status, body = await call(http, "GET", f"{room}/{path}", params={"at": at})
                assert status == 400 and "at=" in body["error"], (path, at[:10], body)
        for last_event in ("9" * 5000, "²"):
            status, body = await call(http, "GET", f"{room}/changes",
                                      headers={"Last-Event-ID": last_event})  # fmt: skip
            assert status == 400 and "Last-Event-ID" in body["error"], body
        for name in ("after", "limit"):
            status, body = await call(http, "GET", f"{room}/history", params={name: "9" * 5000})
            assert status == 400 and name in body["error"]


async def test_bodies_nested_past_the_stack_are_400(server: ServerProcess) -> None:
    room = f"{server.url}/v1/rooms/deep-body"
    deep = "[" * 200_000
    async with aiohttp.ClientSession() as http:
        assert (await call(http, "POST", f"{room}/update", data=edit(Doc(), "x"),
                           headers=OCTET))[0] == 200  # fmt: skip
        for path in ("restore", "versions"):
            status, body = await call(http, "POST", f"{room}/{path}", data=deep,
                                      headers={"Content-Type": "application/json"})  # fmt: skip
            assert status == 400 and "JSON" in body["error"], (path, body)
        status, body = await call(http, "GET", f"{room}/json")
        assert status == 200 and body["doc"] == {"t": "x"}  # the room carries on


def nested_update(depth: int) -> bytes:
    doc: Doc[Any] = Doc()
    node: Map[Any] = doc.get("tree", type=Map)
    with doc.transaction():
        for _ in range(depth):
            node["child"] = Map()
            node = node["child"]
        node["leaf"] = "bottom"
    return doc.get_update()


async def test_a_room_nested_3000_deep_is_a_clear_error(server: ServerProcess) -> None:
    room = f"{server.url}/v1/rooms/deep-room"
    async with aiohttp.ClientSession() as http:
        status, _ = await call(http, "POST", f"{room}/update", data=nested_update(3000),
                               headers=OCTET)  # fmt: skip
        assert status == 200
        status, body = await call(http, "GET", f"{room}/json")
        assert status == 400 and "deep" in body["error"], body
        shallow = f"{server.url}/v1/rooms/shallow"
        status, _ = await call(http, "POST", f"{shallow}/update", data=nested_update(50),
                               headers=OCTET)  # fmt: skip
        status, body = await call(http, "GET", f"{shallow}/json")
        assert status == 200
        node = body["doc"]["tree"]
        for _ in range(50):
            node = node["child"]
        assert node == {"leaf": "bottom"}


@pytest.fixture(params=["lmdb", "redis"])
async def small_limits(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    redis_url = None
    if request.param == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        redis_url = redis.url
    config = Config(data_dir=tmp_path, redis_url=redis_url, limits=Limits(max_versions=5))
    server = TestServer(create_app(config))
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


async def test_version_names_are_bounded_and_listed_in_pages(small_limits: str) -> None:
    room = f"{small_limits}/v1/rooms/labels"
    async with aiohttp.ClientSession() as http:
        for i in range(5):
            assert (await call(http, "POST", f"{room}/update", data=edit(Doc(), f"{i}"),
                               headers=OCTET))[0] == 200  # fmt: skip
            status, _ = await call(http, "POST", f"{room}/versions", json={"name": f"v{i}"})
            assert status == 200
        status, body = await call(http, "POST", f"{room}/versions", json={"name": "one-more"})
        assert status == 409 and "5 versions" in body["error"], body
        names: list[str] = []
        url: str | None = f"{room}/versions?limit=2"
        while url is not None:
            status, body = await call(http, "GET", url)
            assert status == 200 and len(body["versions"]) <= 2
            names += [v["name"] for v in body["versions"]]
            url = f"{room}/versions?limit=2&after={body['next']}" if body.get("next") else None
        assert names == [f"v{i}" for i in range(5)]
        status, body = await call(http, "GET", f"{room}/versions?after=nope")
        assert status == 404
