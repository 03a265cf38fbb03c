"""Change-feed and history pages per caller, on both backends: a caller (a user, else a
token; each room on an open server) reading as many pages as it may gets 503 +
Retry-After for the next, `/changes` and `/history` alike, while other callers and
rooms are served; a page that ends frees its place. Big pages are encoded off the
event loop."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc

from harness.wire import edit
from server import Config
from server.auth import issue_token
from server.http import feed_encoding, feed_page
from server.http.keys import PAGES
from tests.conftest import StartServer
from tests.server.test_feed_limits import SECRET, _until, base_of, serve

MB = 1_000_000


@pytest.fixture(params=["lmdb", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    redis_url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    return Config(data_dir=tmp_path / "data", redis_url=redis_url)


def _stalled_page(port: int | None, path: str) -> socket.socket:
    """A page request from a client with a tiny receive buffer that then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    assert port is not None
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


async def _fill(base: str, room: str, count: int, token: str | None = None) -> None:
    author: Doc[Any] = Doc()
    query = f"?token={token}" if token else ""
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            async with http.post(
                f"{base}/v1/rooms/{room}/update{query}",
                data=edit(author, "x" * MB),
                headers={"Content-Type": "application/octet-stream"},
            ) as response:
                assert response.status == 200, await response.text()


async def _status(http: aiohttp.ClientSession, url: str) -> tuple[int, str | None]:
    async with http.get(url) as response:
        await response.read()
        return response.status, response.headers.get("Retry-After")


def _big_pages(config: Config, **changes: Any) -> Config:
    limits = replace(config.limits, page_bytes=32 * MB, page_reads_per_caller=1)
    return replace(config, limits=limits, **changes)


async def test_one_user_reads_its_pages_and_no_more(config: Config) -> None:
    server, app = await serve(_big_pages(config, auth_secret=SECRET))
    stalled = None
    try:
        base = base_of(server)
        await _fill(base, "big", 12, issue_token(SECRET, "big", user="writer"))
        alice = issue_token(SECRET, "big", read_only=True, user="alice")
        alice_again = issue_token(SECRET, "big", read_only=True, user="alice", ttl=600)
        bob = issue_token(SECRET, "big", read_only=True, user="bob")
        stalled = _stalled_page(server.port, f"/v1/rooms/big/changes?after=0&token={alice}")
        await _until(lambda: app[PAGES].reading.get("user:alice") == 1, "the page never started")
        async with aiohttp.ClientSession() as http:
            for route in ("changes", "history"):
                url = f"{base}/v1/rooms/big/{route}?after=0&token="
                assert await _status(http, url + alice_again) == (503, "1"), route
                assert (await _status(http, url + bob))[0] == 200, route
            stalled.close()
            stalled = None
            await _until(lambda: not app[PAGES].reading, "the cut page kept its place")
            url = f"{base}/v1/rooms/big/history?after=0&token={alice_again}"
            assert (await _status(http, url))[0] == 200
    finally:
        if stalled is not None:
            stalled.close()
        await server.close()


async def test_an_open_server_counts_pages_per_room(config: Config) -> None:
    server, app = await serve(_big_pages(config))
    stalled = None
    try:
        base = base_of(server)
        await _fill(base, "big", 12)
        await _fill(base, "small", 1)
        stalled = _stalled_page(server.port, "/v1/rooms/big/changes?after=0")
        await _until(lambda: app[PAGES].reading.get("room:big") == 1, "the page never started")
        async with aiohttp.ClientSession() as http:
            assert await _status(http, f"{base}/v1/rooms/big/history") == (503, "1")
            assert (await _status(http, f"{base}/v1/rooms/small/changes?after=0"))[0] == 200
            stalled.close()
            stalled = None
            await _until(lambda: not app[PAGES].reading, "the cut page kept its place")
            assert (await _status(http, f"{base}/v1/rooms/big/history"))[0] == 200
    finally:
        if stalled is not None:
            stalled.close()
        await server.close()


async def test_big_pages_are_encoded_off_the_event_loop(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[str] = set()
    encode = feed_encoding.encoded_entry

    def watched(seq: int, record: memoryview) -> bytes | Exception:
        threads.add(threading.current_thread().name)
        return encode(seq, record)

    monkeypatch.setattr(feed_page, "encoded_entry", watched)
    server, _ = await serve(_big_pages(config))
    try:
        base = base_of(server)
        await _fill(base, "big", 3)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/v1/rooms/big/changes?after=0") as response:
                body = await response.read()
                assert response.content_length == len(body)  # not chunked: no loop copies
        page = json.loads(body)
        assert [entry["seq"] for entry in page["entries"]] == [1, 2, 3]
        assert threads and threading.main_thread().name not in threads
    finally:
        await server.close()


async def test_the_limit_is_a_flag_of_performer_serve(server_factory: StartServer) -> None:
    server = server_factory("--page-reads-per-caller", "0")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/v1/rooms/r/update",
            data=edit(Doc(), "a"),
            headers={"Content-Type": "application/octet-stream"},
        ) as posted:
            assert posted.status == 200
        for route in ("history", "changes"):
            assert await _status(http, f"{server.url}/v1/rooms/r/{route}") == (503, "1")
