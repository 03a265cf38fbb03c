"""Malformed input is a 400 with a reason, never a 500: odd `?at=` values, a 5,000-digit
Last-Event-ID, JSON bodies nested past any parser's stack, a room nested 3,000 deep, a
client that leaves halfway through its body.
And version names: bounded per room (on LMDB and on Redis) and listed in pages."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
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
from tests.conftest import ServerProcess, StartServer
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


def _post_half_then_reset(server: ServerProcess, path: str, content_type: str) -> None:
    """A POST announcing a 1 MB body that sends 1,000 bytes of it, then resets the
    connection (SO_LINGER 0): a client killed mid-upload."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        sock.sendall(f"{head}Content-Length: 1000000\r\n\r\n".encode() + b"{" * 1000)
        time.sleep(0.2)  # the handler is now reading the body
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_a_client_that_leaves_mid_body_is_not_a_server_error(
    server_factory: StartServer, capfd: pytest.CaptureFixture[str]
) -> None:
    server = server_factory(env={"PERFORMER_LOG": "INFO"})
    room = f"{server.url}/v1/rooms/left"
    async with aiohttp.ClientSession() as http:
        assert (await call(http, "POST", f"{room}/update", data=edit(Doc(), "x"),
                           headers=OCTET))[0] == 200  # fmt: skip
        for path, kind in (("update", OCTET["Content-Type"]), ("restore", "application/json")):
            await asyncio.to_thread(_post_half_then_reset, server, f"/v1/rooms/left/{path}", kind)
        err, end = "", time.monotonic() + 20
        while err.count("the client left") < 2:
            assert time.monotonic() < end, f"the server did not log both departures: {err!r}"
            await asyncio.sleep(0.1)
            err += capfd.readouterr().err
        assert "Traceback" not in err and "Error handling request" not in err, err
        status, body = await call(http, "GET", f"{room}/json")
        assert status == 200 and body["seq"] == 1  # nothing of the half bodies was applied
