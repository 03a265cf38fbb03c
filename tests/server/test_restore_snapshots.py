"""Restore to a seq the store holds as a snapshot (alone, or with the log after it), on
both backends: the worker loads a snapshot stored whole without walking it, and the
room's content after the restore is exactly its content at that seq."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from engine.storage import CompactionPolicy
from harness.wire import edit
from server import Config, create_app
from server.http.keys import STORE
from tests.redis_process import RedisProcess


@pytest.fixture(params=["lmdb", "redis"])
async def snapshotting_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, Any]]:
    """A server that snapshots every 3 updates, on the test's backend; its snapshots are
    stored whole as a big room's are."""
    policy = CompactionPolicy(every_updates=3)
    if request.param == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        config = Config(redis_url=redis.url, compaction=policy)
    else:
        config = Config(data_dir=tmp_path / "data", compaction=policy)
    app = create_app(config)
    async with TestServer(app) as test_server:
        app[STORE].big_room_bytes = 0  # every room is rebuilt in the worker, stored whole
        yield str(test_server.make_url("")).rstrip("/"), app


async def _whole_snapshot_at(app: Any, room: str, seq: int) -> bool:
    """Wait (up to 10 s) until the updates making `seq` start with a whole snapshot."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        updates, whole = await app[STORE].updates_and_whole_at(room, seq)
        if whole:
            return len(updates) > 0
        await asyncio.sleep(0.05)
    return False


async def test_restore_to_a_whole_snapshot_and_past_it(
    snapshotting_server: tuple[str, Any],
) -> None:
    base, app = snapshotting_server
    url = f"{base}/v1/rooms/snap"
    author: Doc[Any] = Doc()
    async with aiohttp.ClientSession() as http:
        for word in ("a ", "b ", "c ", "d ", "e ", "f ", "g "):
            async with http.post(f"{url}/update", data=edit(author, word)) as response:
                assert response.status == 200
            if word == "c ":  # the snapshot covers what is stored when it is made
                assert await _whole_snapshot_at(app, "snap", 3), "no whole snapshot at 3"
        for seq in (3, 5):  # the snapshot alone; the snapshot and two log entries
            async with http.get(f"{url}/json?at={seq}") as response:
                then = (await response.json())["doc"]
            async with http.post(f"{url}/restore", json={"seq": seq}) as response:
                assert response.status == 200 and (await response.json())["changed"]
            async with http.get(f"{url}/json") as response:
                assert (await response.json())["doc"] == then
        assert then == {"t": "a b c d e "}
