"""The change feed on a real server: JSON and SSE, replay + live, resume by Last-Event-ID
(also across kill -9), snapshot where the log was trimmed, a subscriber that stops
reading, a deleted room, bad input."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc, Text

from engine.storage import CompactionPolicy, Retention
from harness.wire import edit
from server import Config, create_app
from server.auth import issue_token
from tests.conftest import ServerProcess, StartServer

WAIT = 20.0
SECRET = "a-secret-of-at-least-thirty-two-bytes!"


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


async def write(base: str, room: str, words: list[str], author: Doc[Any] | None = None) -> None:
    author = author or Doc()
    async with session() as http:
        for word in words:
            async with http.post(f"{base}/v1/rooms/{room}/update", data=edit(author, word)) as r:
                assert r.status == 200, await r.text()


def text_from(updates: list[bytes]) -> str:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return str(doc.get("t", type=Text))


class Events:
    """An SSE stream read event by event, with a deadline on every wait."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments = 0

    async def next(self, timeout: float = WAIT) -> dict[str, Any] | None:
        event: dict[str, Any] = {}
        async with asyncio.timeout(timeout):
            while True:
                try:
                    line = await self.response.content.readline()
                except aiohttp.ClientPayloadError:
                    return None  # the stream broke (the server died)
                if not line:
                    return None  # the stream ended
                text = line.decode().rstrip("\n")
                if text.startswith(":"):
                    self.comments += 1
                elif text.startswith("id: "):
                    event["id"] = int(text[4:])
                elif text.startswith("event: "):
                    event["event"] = text[7:]
                elif text.startswith("data: "):
                    event["data"] = json.loads(text[6:])
                elif text == "" and event:
                    return event


async def open_stream(
    http: aiohttp.ClientSession, url: str, **headers: str
) -> tuple[aiohttp.ClientResponse, Events]:
    response = await http.get(url, headers={"Accept": "text/event-stream", **headers})
    assert response.status == 200, await response.text()
    return response, Events(response)


async def test_json_feed_replays_every_entry_and_long_polls(server: ServerProcess) -> None:
    words = ["a", "b", "c", "d"]
    await write(server.url, "feed", words)
    async with session() as http:
        async with http.get(f"{server.url}/v1/rooms/feed/changes?after=0") as response:
            body = await response.json()
        assert body["room"] == "feed" and body["last_seq"] == 4
        assert [e["seq"] for e in body["entries"]] == [1, 2, 3, 4]
        updates = [base64.b64decode(e["update"]) for e in body["entries"]]
        assert text_from(updates) == "abcd"
        poll = asyncio.create_task(
            _get_json(http, f"{server.url}/v1/rooms/feed/changes?after=4&wait=10")
        )
        await asyncio.sleep(0.2)
        assert not poll.done()  # waiting for a commit
        await write(server.url, "feed", ["e"])
        late = await asyncio.wait_for(poll, WAIT)
        assert [e["seq"] for e in late["entries"]] == [5]


async def _get_json(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        return await response.json()


async def test_sse_replays_then_streams_live_and_resumes_with_last_event_id(
    server: ServerProcess,
) -> None:
    author: Doc[Any] = Doc()
    await write(server.url, "live", ["one ", "two "], author)
    url = f"{server.url}/v1/rooms/live/changes?after=0"
    async with session() as http:
        response, events = await open_stream(http, url)
        first, second = await events.next(), await events.next()
        assert first and second and (first["id"], second["id"]) == (1, 2)
        assert first["event"] == "update" and set(first["data"]) == {"seq", "ts", "user", "update"}
        await write(server.url, "live", ["three "], author)
        third = await events.next()
        assert third and third["id"] == 3
        response.close()
        await write(server.url, "live", ["four"], author)
        response, events = await open_stream(http, url, **{"Last-Event-ID": "3"})  # wins over after
        fourth = await events.next()
        assert fourth and fourth["id"] == 4
        response.close()


async def test_a_feed_resumes_after_kill_9_without_a_gap(server: ServerProcess) -> None:
    author: Doc[Any] = Doc()
    await write(server.url, "crash", [f"{i}," for i in range(5)], author)
    seen: list[int] = []
    async with session() as http:
        response, events = await open_stream(http, f"{server.url}/v1/rooms/crash/changes")
        while len(seen) < 5:
            event = await events.next()
            assert event is not None
            seen.append(event["id"])
        server.kill()
        assert await events.next() is None  # the stream broke with the server
        response.close()
    server.restart()
    await write(server.url, "crash", [f"{i}," for i in range(5, 9)], author)
    async with session() as http:
        headers = {"Last-Event-ID": str(seen[-1])}
        response, events = await open_stream(
            http, f"{server.url}/v1/rooms/crash/changes", **headers
        )
        while len(seen) < 9:
            event = await events.next()
            assert event is not None
            seen.append(event["id"])
        response.close()
    assert seen == list(range(1, 10))


async def test_bad_feed_requests_get_clear_errors(server_factory: StartServer) -> None:
    server = server_factory("--auth-secret", SECRET)
    token = issue_token(SECRET, "guarded", read_only=True)
    writer = issue_token(SECRET, "guarded")
    async with session() as http:
        author: Doc[Any] = Doc()
        async with http.post(f"{server.url}/v1/rooms/guarded/update?token={writer}",
                             data=edit(author, "x")) as r:  # fmt: skip
            assert r.status == 200
        cases = [
            ("guarded/changes", 401),
            (f"guarded/changes?token={token}&after=5", 400),
            (f"guarded/changes?token={token}&after=-1", 400),
            (f"guarded/changes?token={token}&after=abc", 400),
            (f"nowhere/changes?token={issue_token(SECRET, 'nowhere')}", 404),
            (f"guarded/changes?token={token}", 200),  # a read token is enough
        ]
        for path, status in cases:
            async with http.get(f"{server.url}/v1/rooms/{path}") as response:
                assert response.status == status, (path, await response.text())
        headers = {"Accept": "text/event-stream", "Last-Event-ID": "x"}
        async with http.get(f"{server.url}/v1/rooms/guarded/changes?token={token}",
                            headers=headers) as response:  # fmt: skip
            assert response.status == 400


@pytest.fixture
async def app_server(tmp_path: Path) -> AsyncIterator[tuple[str, Any]]:
    config = Config(
        data_dir=tmp_path,
        feed_heartbeat_seconds=0.2,
        feed_queue_entries=4,
        compaction=CompactionPolicy(every_updates=3),
        retention=Retention(keep_log=False, keep_snapshots=1),
    )
    app = create_app(config)
    async with TestServer(app) as test_server:
        yield str(test_server.make_url("")).rstrip("/"), app


async def test_heartbeats_snapshot_after_trimming_and_deleted_rooms(
    app_server: tuple[str, Any],
) -> None:
    base, _ = app_server
    author: Doc[Any] = Doc()
    await write(base, "trim", [f"{i}," for i in range(7)], author)
    await asyncio.sleep(0.3)  # snapshots are written in the background
    async with session() as http:
        response, events = await open_stream(http, f"{base}/v1/rooms/trim/changes?after=0")
        first = await events.next()
        assert first and first["event"] == "snapshot" and first["data"]["seq"] >= 3
        state = base64.b64decode(first["data"]["state"])
        rest = []
        while (event := await events.next(timeout=1.0)) is not None and event["event"] == "update":
            rest.append(base64.b64decode(event["data"]["update"]))
            if event["id"] == 7:
                break
        assert text_from([state, *rest]) == "0,1,2,3,4,5,6,"
        await asyncio.sleep(0.5)  # idle: the server sends heartbeat comments meanwhile
        async with http.delete(f"{base}/v1/rooms/trim") as deleted:
            assert deleted.status == 200
        ended = await events.next()
        assert ended and (ended["event"], ended["data"]) == ("deleted", {"room": "trim"})
        assert events.comments >= 1
        assert await events.next() is None
        response.close()


async def test_a_subscriber_that_stops_reading_is_cut_and_resumes(
    app_server: tuple[str, Any],
) -> None:
    base, _ = app_server
    big = "x" * 200_000
    author: Doc[Any] = Doc()
    await write(base, "flood", ["start"], author)
    async with session() as http:
        response = await http.get(f"{base}/v1/rooms/flood/changes?after=0",
                                  headers={"Accept": "text/event-stream"})  # fmt: skip
        # never read: the server's socket buffer fills, then its queue (4 entries)
        await write(base, "flood", [big] * 60, author)
        content = await asyncio.wait_for(response.content.read(), WAIT)  # drain what was sent
        assert b"event: overflow" in content
        response.close()
    async with session() as http:
        async with http.get(f"{base}/v1/rooms/flood/changes?after=0") as again:
            assert len((await again.json())["entries"]) >= 1  # still served from the log
