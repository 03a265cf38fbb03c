"""What a change-feed or history caller may cost, on both backends: pages bounded by
bytes (and resumable), a stalled SSE reader cut by bytes and resumable, a cap on streams
per caller, streams that end with their token, and deleted rooms that leave no feed
task behind."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from harness.wire import edit
from server import Config, create_app
from server.auth import issue_token
from server.hooks import Grant, Hooks
from server.http.keys import FEEDS
from tests.conftest import StartServer
from tests.server.test_changes import open_stream, session, text_from, write

WAIT = 20.0
SECRET = "a-secret-of-at-least-thirty-two-bytes!"
KIB = 1024


@pytest.fixture(params=["lmdb", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    redis_url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    return Config(data_dir=tmp_path / "data", redis_url=redis_url, feed_heartbeat_seconds=0.3)


async def serve(config: Config, hooks: Hooks | None = None) -> tuple[TestServer, web.Application]:
    app = create_app(config, hooks)
    server = TestServer(app)
    await server.start_server()
    return server, app


def base_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_pages_end_at_their_byte_budget_and_say_where_to_resume(config: Config) -> None:
    config = replace(config, limits=replace(config.limits, page_bytes=600 * KIB))
    server, _ = await serve(config)
    try:
        base = base_of(server)
        author: Doc[Any] = Doc()
        await write(base, "big", ["x" * 250_000 for _ in range(12)], author)
        async with session() as http:
            for route in ("changes", "history"):
                seqs: list[int] = []
                after, pages = 0, 0
                while True:
                    page = await get_json(
                        http, f"{base}/v1/rooms/big/{route}?after={after}&limit=1000"
                    )
                    pages += 1
                    got = [e["seq"] for e in page["entries"]]
                    assert 1 <= len(got) <= 4, (route, got)  # ~600 KiB of 250 KB entries
                    seqs += got
                    assert page["next_after"] == got[-1]
                    if not page["more"]:
                        break
                    after = page["next_after"]
                assert seqs == list(range(1, 13)), route
                assert pages >= 3
            response, events = await open_stream(http, f"{base}/v1/rooms/big/changes?after=0")
            updates: list[bytes] = []
            while len(updates) < 12:
                event = await events.next()
                assert event and event["event"] == "update"
                updates.append(base64.b64decode(event["data"]["update"]))
            assert text_from(updates) == "x" * 250_000 * 12
            response.close()
    finally:
        await server.close()


def _stalled_request(port: int, path: str) -> socket.socket:
    """An SSE request from a client with a tiny receive buffer that then never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    sock.sendall(request.encode())
    return sock


def _subscribers(app: web.Application, room: str) -> int:
    feed = app[FEEDS].feeds.get(room)
    return len(feed.subscribers) if feed else 0


async def _until(condition: Any, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_a_stalled_stream_is_cut_by_bytes_and_resumes(config: Config) -> None:
    limits = replace(config.limits, send_buffer_bytes=512 * KIB, stream_write_seconds=2.0)
    server, app = await serve(replace(config, limits=limits))
    try:
        base = base_of(server)
        author: Doc[Any] = Doc()
        await write(base, "flood", ["start"], author)
        assert server.port is not None
        stalled = _stalled_request(server.port, "/v1/rooms/flood/changes?after=0")
        await _until(lambda: _subscribers(app, "flood") == 1, "the stream never started")
        await write(base, "flood", ["y" * 200_000 for _ in range(40)], author)  # 8 MB
        await _until(lambda: _subscribers(app, "flood") == 0, "the stalled stream was not cut")
        stalled.close()
        async with session() as http:
            response, events = await open_stream(
                http, f"{base}/v1/rooms/flood/changes", **{"Last-Event-ID": "1"}
            )
            seen: list[int] = []
            while len(seen) < 40:
                event = await events.next()
                assert event and event["event"] == "update"
                seen.append(event["id"])
            assert seen == list(range(2, 42))  # nothing lost: the log has it all
            response.close()
    finally:
        await server.close()


async def test_one_caller_may_hold_only_so_many_streams(config: Config) -> None:
    limits = replace(config.limits, streams_per_caller=3)
    server, _ = await serve(replace(config, auth_secret=SECRET, limits=limits))
    try:
        base = base_of(server)
        writer = issue_token(SECRET, "room", user="ann")
        async with session() as http:
            async with http.post(f"{base}/v1/rooms/room/update?token={writer}",
                                 data=edit(Doc(), "x")) as posted:  # fmt: skip
                assert posted.status == 200
            reader = issue_token(SECRET, "room", read_only=True)
            url = f"{base}/v1/rooms/room/changes?token={reader}"
            streams = [await open_stream(http, url) for _ in range(3)]
            headers = {"Accept": "text/event-stream"}
            async with http.get(url, headers=headers) as refused:
                assert refused.status == 503
                assert int(refused.headers["Retry-After"]) >= 1
                assert "streams" in (await refused.json())["error"]
            other = issue_token(SECRET, "room", read_only=True, user="bob")
            response, events = await open_stream(
                http, f"{base}/v1/rooms/room/changes?token={other}"
            )
            assert (await events.next()) is not None  # another caller is not affected
            response.close()
            streams[0][0].close()
            deadline = time.monotonic() + WAIT
            while True:  # the server notices the closed stream at its next heartbeat
                async with http.get(url, headers=headers) as again:
                    if again.status == 200:
                        break
                assert time.monotonic() < deadline, "a closed stream's place never came back"
                await asyncio.sleep(0.2)
            for response, _ in streams[1:]:
                response.close()
    finally:
        await server.close()


class ShortGrants(Hooks):
    """The application's own auth: "writer" may write; anyone else reads for 1.5 s."""

    async def authenticate(self, token: str | None, room: str) -> Grant | None:
        if token == "writer":
            return Grant(user="ann", mode="write")
        return Grant(user="bob", mode="read", expires_at=time.time() + 1.5)


@pytest.mark.parametrize("by", ["jwt", "grant"])
async def test_a_stream_ends_when_its_token_expires(config: Config, by: str) -> None:
    hooks = ShortGrants() if by == "grant" else None
    server, _ = await serve(replace(config, auth_secret=SECRET), hooks)
    try:
        base = base_of(server)
        writer = issue_token(SECRET, "room", user="ann") if hooks is None else "writer"
        token = issue_token(SECRET, "room", read_only=True, ttl=2)
        async with session() as http:
            await _post(http, f"{base}/v1/rooms/room/update?token={writer}")
            opened = time.time()
            response, events = await open_stream(
                http, f"{base}/v1/rooms/room/changes?token={token}"
            )
            first = await events.next()
            assert first and first["event"] == "update"
            ended = await events.next(timeout=10.0)
            assert ended and ended["event"] == "expired", ended
            assert ended["data"]["resume_after"] == 1
            assert time.time() - opened < 5.0
            assert await events.next(timeout=5.0) is None  # then the stream is closed
            response.close()
            if hooks is None:
                async with http.get(f"{base}/v1/rooms/room/history?token={token}") as history:
                    assert history.status == 401
    finally:
        await server.close()


async def _post(http: aiohttp.ClientSession, url: str) -> None:
    async with http.post(url, data=edit(Doc(), "x")) as posted:
        assert posted.status == 200, await posted.text()


def _feed_tasks() -> list[asyncio.Task[Any]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and task.get_coro().__qualname__ == "RoomFeed.run"  # type: ignore[union-attr]
    ]


async def test_deleting_a_room_ends_its_feed_task_and_subscribers(config: Config) -> None:
    server, app = await serve(config)
    try:
        base = base_of(server)
        async with session() as http:
            for round_ in range(20):
                await write(base, "short-lived", [f"round {round_}"])
                response, events = await open_stream(
                    http, f"{base}/v1/rooms/short-lived/changes?after=0"
                )
                first = await events.next()
                assert first and first["event"] == "update"
                async with http.delete(f"{base}/v1/rooms/short-lived") as deleted:
                    assert deleted.status == 200
                ended = await events.next()
                assert ended and ended["event"] == "deleted"
                assert await events.next() is None
                response.close()
        await _until(lambda: not _feed_tasks(), f"{len(_feed_tasks())} feed tasks left running")
        assert app[FEEDS].feeds == {} and app[FEEDS].streams == {}
    finally:
        await server.close()


async def test_the_limits_are_flags_of_performer_serve(server_factory: StartServer) -> None:
    server = server_factory("--auth-secret", SECRET, "--streams-per-caller", "1",
                            "--page-bytes", "100000", "--compute-queue", "0")  # fmt: skip
    writer = issue_token(SECRET, "room", user="ann")
    reader = issue_token(SECRET, "room", read_only=True, user="bob")
    author: Doc[Any] = Doc()
    async with session() as http:
        for _ in range(3):
            async with http.post(f"{server.url}/v1/rooms/room/update?token={writer}",
                                 data=edit(author, "z" * 60_000)) as posted:  # fmt: skip
                assert posted.status == 200
        page = await get_json(http, f"{server.url}/v1/rooms/room/changes?after=0&token={reader}")
        assert len(page["entries"]) == 2 and page["more"] is True
        url = f"{server.url}/v1/rooms/room/changes?token={reader}"
        response, _ = await open_stream(http, url)
        async with http.get(url, headers={"Accept": "text/event-stream"}) as second:
            assert second.status == 503 and "Retry-After" in second.headers
        response.close()
