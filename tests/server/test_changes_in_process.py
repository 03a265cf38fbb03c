"""The change feed's JSON pages, SSE framing and request checks on an in-process server
over real LMDB (test_changes.py holds the same on a server subprocess, and across kill -9)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from harness.wire import edit
from server import Config, create_app
from server.auth import issue_token
from server.config import Limits
from tests.server.test_changes import open_stream, session

SECRET = "a-secret-of-at-least-thirty-two-bytes!"
WAIT = 20.0
WRITER = issue_token(SECRET, "feed", user="ann")
READER = issue_token(SECRET, "feed", read_only=True)


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[str]:
    app = create_app(Config(data_dir=tmp_path / "data", auth_secret=SECRET))
    async with TestServer(app) as server:
        yield str(server.make_url("")).rstrip("/")


async def post(http: aiohttp.ClientSession, base: str, update: bytes) -> None:
    async with http.post(f"{base}/v1/rooms/feed/update?token={WRITER}", data=update) as r:
        assert r.status == 200, await r.text()


async def page(http: aiohttp.ClientSession, url: str, **headers: str) -> dict[str, Any]:
    async with http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("application/json")
        body: dict[str, Any] = await response.json()
        return body


async def test_a_json_page_carries_every_entry_after_the_position(base: str) -> None:
    author: Doc[Any] = Doc()
    updates = [edit(author, word) for word in ("one", "two", "three")]
    before = time.time()
    async with session() as http:
        for update in updates:
            await post(http, base, update)
        url = f"{base}/v1/rooms/feed/changes?token={READER}"
        body = await page(http, f"{url}&after=0")
        assert {k: v for k, v in body.items() if k != "entries"} == {
            "room": "feed", "last_seq": 3, "next_after": 3, "more": False,
        }  # fmt: skip
        assert [entry["seq"] for entry in body["entries"]] == [1, 2, 3]
        for entry, update in zip(body["entries"], updates, strict=True):
            assert base64.b64decode(entry["update"]) == update
            assert entry["user"] == "ann" and before - 1 <= entry["ts"] <= time.time() + 1
        assert [e["seq"] for e in (await page(http, f"{url}&after=2"))["entries"]] == [3]
        assert (await page(http, url))["entries"][0]["seq"] == 1  # after defaults to 0
        empty = await page(http, f"{url}&after=3")
        assert empty == {"room": "feed", "last_seq": 3, "next_after": 3, "more": False,
                         "entries": []}  # fmt: skip
        resumed = await page(http, f"{url}&after=0", **{"Last-Event-ID": "2"})
        assert [entry["seq"] for entry in resumed["entries"]] == [3]  # the header wins


async def test_a_page_of_big_entries_is_one_valid_document(base: str) -> None:
    """Entries are encoded in groups of about 256 KiB; the groups join into one list."""
    author: Doc[Any] = Doc()
    async with session() as http:
        for i in range(3):
            await post(http, base, edit(author, f"{i}" * 200_000))
        body = await page(http, f"{base}/v1/rooms/feed/changes?token={READER}&after=0")
        assert [entry["seq"] for entry in body["entries"]] == [1, 2, 3]


async def test_a_long_poll_answers_as_soon_as_an_entry_is_committed(base: str) -> None:
    author: Doc[Any] = Doc()
    async with session() as http:
        await post(http, base, edit(author, "first"))
        url = f"{base}/v1/rooms/feed/changes?token={READER}&after=1&wait=30"
        waiting = asyncio.ensure_future(page(http, url))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        started = time.monotonic()
        await post(http, base, edit(author, "second"))
        body = await asyncio.wait_for(waiting, WAIT)
        assert [entry["seq"] for entry in body["entries"]] == [2]
        assert time.monotonic() - started < 10
        quick = await page(http, f"{base}/v1/rooms/feed/changes?token={READER}&after=2&wait=0")
        assert quick["entries"] == []


async def test_bad_feed_requests_get_clear_errors(base: str) -> None:
    async with session() as http:
        await post(http, base, edit(Doc(), "x"))
        cases = [
            ("feed/changes", {}, 401),
            (f"feed/changes?token={issue_token(SECRET, 'other')}", {}, 403),
            (f"feed/changes?token={READER}&after=2", {}, 400),
            (f"feed/changes?token={READER}&after=-1", {}, 400),
            (f"feed/changes?token={READER}&after=abc", {}, 400),
            (f"nowhere/changes?token={issue_token(SECRET, 'nowhere')}", {}, 404),
            (f"feed/changes?token={READER}", {"Last-Event-ID": "x"}, 400),
            (f"feed/changes?token={READER}", {"Last-Event-ID": "5"}, 400),
            (
                f"feed/changes?token={READER}",
                {"Accept": "text/event-stream", "Last-Event-ID": "x"},
                400,
            ),  # fmt: skip
            (f"feed/changes?token={READER}&after=1", {}, 200),  # at the last seq: empty
        ]
        for path, headers, status in cases:
            async with http.get(f"{base}/v1/rooms/{path}", headers=headers) as response:
                assert response.status == status, (path, headers, await response.text())
                if status == 400:
                    assert "after" in (await response.text()) or "Last-Event-ID" in (
                        await response.text()
                    )


async def test_an_event_stream_replays_then_follows_with_ids(base: str) -> None:
    author: Doc[Any] = Doc()
    async with session() as http:
        await post(http, base, edit(author, "one"))
        await post(http, base, edit(author, "two"))
        url = f"{base}/v1/rooms/feed/changes?token={READER}&after=1"
        response, events = await open_stream(http, url)
        assert response.headers["Content-Type"] == "text/event-stream"
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"
        replayed = await events.next()
        assert replayed is not None and replayed["id"] == 2 and replayed["event"] == "update"
        assert replayed["data"]["seq"] == 2 and replayed["data"]["user"] == "ann"
        live = edit(author, "three")
        await post(http, base, live)
        followed = await events.next()
        assert followed is not None and followed["id"] == 3
        assert base64.b64decode(followed["data"]["update"]) == live
        response.close()
        again, resumed = await open_stream(http, url, **{"Last-Event-ID": "2"})
        first = await resumed.next()
        assert first is not None and first["id"] == 3
        again.close()


async def test_a_stream_whose_queue_overflows_is_told_where_to_resume(tmp_path: Path) -> None:
    """An entry bigger than a subscriber may queue ends its stream with an `overflow`
    event naming the last seq it was sent; the stream then closes."""
    config = Config(data_dir=tmp_path, limits=Limits(send_buffer_bytes=2000))
    author: Doc[Any] = Doc()
    async with TestServer(create_app(config)) as server:
        base = str(server.make_url("")).rstrip("/")
        async with session() as http:
            async with http.post(f"{base}/v1/rooms/feed/update", data=edit(author, "a")) as r:
                assert r.status == 200
            url = f"{base}/v1/rooms/feed/changes?after=1"
            response, events = await open_stream(http, url)
            async with http.post(
                f"{base}/v1/rooms/feed/update", data=edit(author, "x" * 5000)
            ) as r:
                assert r.status == 200
            event = await events.next()
            assert event is not None
            assert (event["event"], event["data"]) == ("overflow", {"resume_after": 1})
            assert await events.next() is None
            response.close()
