"""The Redis backend in-process against a real Redis: compaction races, gaps, migration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from engine.storage import Append, DocStore, LmdbKV, LoadedRoom
from server.metrics import Metrics
from server.migrate import migrate
from server.redis_backend import RedisBackend, key
from tests.engine.helpers import content, typing_updates
from tests.scaleout.conftest import RedisProcess


@pytest.fixture
async def backends(redis_server: RedisProcess) -> AsyncIterator[list[RedisBackend]]:
    pair = [RedisBackend(redis_server.url, Metrics(), trim_log=True) for _ in range(2)]
    for backend in pair:
        await backend.start()
    yield pair
    for backend in pair:
        await backend.close()


async def test_two_compactors_racing_leave_one_snapshot_and_trim_only_to_it(
    backends: list[RedisBackend],
) -> None:
    slow, fast = backends
    updates = typing_updates("racing compactors")
    await fast.commit([Append("room", u) for u in updates[:10]])
    original_load = slow.load
    loaded_once = asyncio.Event()
    release = asyncio.Event()

    async def stalled_load(room: str) -> LoadedRoom:
        loaded = await original_load(room)
        loaded_once.set()
        await release.wait()  # the slow compactor's lease "expires" here
        return loaded

    slow.load = stalled_load  # type: ignore[method-assign]
    slow_task = asyncio.create_task(slow.compact("room"))
    await loaded_once.wait()
    await fast.redis.delete(key("lease", "room"))  # lease expired mid-merge
    await fast.commit([Append("room", u) for u in updates[10:]])
    assert await fast.compact("room") is True
    release.set()
    assert await slow_task is False  # fenced: its snapshot would be older
    snapshot_seq = int(await fast.redis.hget(key("snap", "room"), "seq"))
    assert snapshot_seq == len(updates)
    assert await fast.redis.xlen(key("log", "room")) == 0
    assert content((await fast.load("room")).updates)["t"] == "racing compactors"


async def test_a_follower_that_finds_a_gap_reloads_instead_of_skipping(
    backends: list[RedisBackend],
) -> None:
    writer, follower = backends
    updates = typing_updates("gapless!")
    await writer.commit([Append("room", u) for u in updates[:2]])
    received: list[bytes] = []
    done = asyncio.Event()

    class Sink:
        def remote_updates(self, batch: list[bytes], last_seq: int) -> None:
            received.extend(batch)
            if last_seq >= len(updates):
                done.set()

        def remote_awareness(self, payload: bytes) -> None:
            pass

    follower.follow("room", 2, Sink())
    follower.unfollow("room")  # the follower drops out for a while...
    await writer.commit([Append("room", u) for u in updates[2:-1]])
    assert await writer.compact("room")  # ...and the stream is trimmed past its position
    follower.follow("room", 2, Sink())
    await writer.commit([Append("room", updates[-1])])
    await asyncio.wait_for(done.wait(), 10)
    assert content(updates[:2] + received)["t"] == "gapless!"


async def test_migrate_copies_lmdb_rooms_once(tmp_path: Path, redis_server: RedisProcess) -> None:
    store = DocStore(LmdbKV(tmp_path / "lmdb"))
    for room, text in (("one", "first room"), ("two", "second")):
        for update in typing_updates(text):
            store.append(room, update, "importer")
    store.compact("one", force=True)
    first = await migrate(store, redis_server.url)
    assert first == [("one", 10), ("two", 6)]
    assert await migrate(store, redis_server.url) == [("one", 0), ("two", 0)]
    store.append("two", typing_updates("second!")[-1])
    assert await migrate(store, redis_server.url) == [("one", 0), ("two", 1)]
    backend = RedisBackend(redis_server.url, Metrics())
    await backend.start()
    try:
        texts: dict[str, Any] = {
            r: content((await backend.load(r)).updates)["t"] for r in ("one", "two")
        }
        history = await backend.history("one", 0, 3)
    finally:
        await backend.close()
    store.kv.close()
    assert texts == {"one": "first room", "two": "second!"}
    assert [h.user for h in history] == ["importer"] * 3
