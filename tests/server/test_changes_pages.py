"""JSON pages of the change feed at their edges, on an in-process server over real LMDB:
a room whose log was trimmed (the page starts with the snapshot), a long-poll that times
out (an empty page saying where to resume), and a room written before the server started
(no commit of this process says where its log ends)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from engine.storage import CompactionPolicy, Retention
from server import Config, create_app
from tests.server.test_changes import session, text_from, write

WAIT = 20.0


async def json_page(base: str, query: str) -> dict[str, Any]:
    async with session() as http, http.get(f"{base}/v1/rooms/notes/changes?{query}") as r:
        assert r.status == 200, await r.text()
        body: dict[str, Any] = await r.json()
        return body


@pytest.fixture
async def trimming(tmp_path: Path) -> AsyncIterator[str]:
    """A server that snapshots every 3 updates and trims the log the snapshot covers."""
    config = Config(
        data_dir=tmp_path,
        compaction=CompactionPolicy(every_updates=3),
        retention=Retention(keep_log=False, keep_snapshots=1),
    )
    async with TestServer(create_app(config)) as server:
        yield str(server.make_url("")).rstrip("/")


async def test_a_page_of_a_trimmed_room_starts_from_its_snapshot(trimming: str) -> None:
    author: Doc[Any] = Doc()
    await write(trimming, "notes", [f"{i}," for i in range(6)], author)
    async with asyncio.timeout(WAIT):  # snapshots are written in the background
        while (body := await json_page(trimming, "after=0")).get("snapshot", {}).get("seq") != 6:
            await asyncio.sleep(0.05)
    assert body["entries"] == [] and body["next_after"] == 6 and body["last_seq"] == 6
    assert text_from([base64.b64decode(body["snapshot"]["state"])]) == "0,1,2,3,4,5,"
    await write(trimming, "notes", ["6,"], author)
    body = await json_page(trimming, "after=2")
    assert body["snapshot"]["seq"] == 6 and [e["seq"] for e in body["entries"]] == [7]
    assert (body["next_after"], body["more"]) == (7, False)
    updates = [body["snapshot"]["state"]] + [e["update"] for e in body["entries"]]
    assert text_from([base64.b64decode(u) for u in updates]) == "0,1,2,3,4,5,6,"
    assert "snapshot" not in await json_page(trimming, "after=6")  # the log goes on from 6


async def test_a_long_poll_that_times_out_is_an_empty_page_at_the_same_place(
    trimming: str,
) -> None:
    await write(trimming, "notes", ["a"])
    async with asyncio.timeout(WAIT):
        body = await json_page(trimming, "after=1&wait=1")
    assert body == {"room": "notes", "last_seq": 1, "next_after": 1, "more": False, "entries": []}


async def test_a_room_written_before_the_server_started_pages_to_its_end(
    tmp_path: Path,
) -> None:
    async with TestServer(create_app(Config(data_dir=tmp_path))) as first:
        await write(str(first.make_url("")).rstrip("/"), "notes", ["a", "b", "c"])
    async with TestServer(create_app(Config(data_dir=tmp_path))) as server:
        body = await json_page(str(server.make_url("")).rstrip("/"), "after=1")
    assert [e["seq"] for e in body["entries"]] == [2, 3]
    assert (body["next_after"], body["more"], body["last_seq"]) == (3, False, 3)
