"""Redis-specific behaviour against a real Redis: racing compactors in two processes'
stores, a follower that finds a gap, and leases (the rest is the shared contract suite in
tests/engine/test_docstore.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest

from engine.document import rebuild
from engine.storage import Append, DocStore, LoadedRoom, Retention
from engine.store import open_store
from server.rooms.redis_fanout import RedisFanout
from tests.engine.helpers import content, typing_updates
from tests.redis_process import RedisProcess


@pytest.fixture
async def stores(redis_server: RedisProcess) -> AsyncIterator[list[DocStore]]:
    retention = Retention(keep_log=False)
    pair = [open_store(redis_url=redis_server.url, retention=retention) for _ in range(2)]
    yield pair
    for store in pair:
        store.close()


async def test_two_compactors_racing_leave_one_snapshot_and_trim_only_to_it(
    stores: list[DocStore],
) -> None:
    slow, fast = stores
    updates = typing_updates("racing compactors")
    fast.append_many([Append("room", u) for u in updates[:10]])
    merging, release = threading.Event(), threading.Event()

    def stalled_rebuild(batch: list[bytes]) -> bytes:
        merging.set()
        release.wait(10)  # the slow compactor stalls mid-merge
        return rebuild(batch)

    slow._rebuild = stalled_rebuild
    slow_task = asyncio.create_task(asyncio.to_thread(slow.compact, "room", force=True))
    await asyncio.to_thread(merging.wait, 10)
    fast.append_many([Append("room", u) for u in updates[10:]])
    assert fast.compact("room", force=True) is not None
    release.set()
    assert await slow_task is None  # fenced: its snapshot would be older
    assert [seq for seq, _ in fast.log.snapshots("room")][0] == len(updates)
    assert fast.log.read("room") == []  # trimmed only to the winner
    assert content(fast.load("room").updates)["t"] == "racing compactors"


async def test_a_follower_that_finds_a_gap_reloads_instead_of_skipping(
    stores: list[DocStore], redis_server: RedisProcess
) -> None:
    writer, reader = stores
    updates = typing_updates("gapless!")
    writer.append_many([Append("room", u) for u in updates[:2]])
    received: list[bytes] = []
    done = asyncio.Event()

    class Sink:
        def remote_updates(self, batch: list[bytes], last_seq: int) -> None:
            received.extend(batch)
            if last_seq >= len(updates):
                done.set()

        def remote_awareness(self, payload: bytes) -> None:
            pass

    async def load(room: str) -> LoadedRoom:
        return await asyncio.to_thread(reader.load, room)

    fanout = RedisFanout(redis_server.url, b"follower", load)
    await fanout.start()
    try:
        writer.append_many([Append("room", u) for u in updates[2:-1]])
        assert writer.compact("room", force=True)  # the stream is trimmed past seq 2
        fanout.follow("room", 2, Sink())
        writer.append_many([Append("room", updates[-1])])
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await fanout.close()
    assert content(updates[:2] + received)["t"] == "gapless!"


async def test_a_lease_has_one_owner_until_it_expires(redis_server: RedisProcess) -> None:
    async def never(room: str) -> LoadedRoom:
        raise AssertionError("no load expected")

    first = RedisFanout(redis_server.url, b"first", never)
    second = RedisFanout(redis_server.url, b"second", never)
    try:
        assert await first.lease("deliver:room", 0.3)
        assert await first.lease("deliver:room", 0.3)  # renewing its own
        assert not await second.lease("deliver:room", 0.3)
        await asyncio.sleep(0.4)
        assert await second.lease("deliver:room", 5)
        assert not await first.lease("deliver:room", 5)
    finally:
        await first.close()
        await second.close()


def test_a_stream_trimmed_by_the_previous_version_still_loads(redis_server: RedisProcess) -> None:
    """Earlier versions kept one snapshot in a hash `performer:snap:{room}` and trimmed the
    stream up to it; such a room must still load, and the next snapshot replaces it."""
    from engine.document import rebuild
    from engine.storage.records import Snapshot, pack
    from engine.storage.redis_keys import key
    from engine.storage.redis_log import RedisLogStore

    store = open_store(redis_url=redis_server.url, retention=Retention(keep_log=False))
    try:
        updates = typing_updates("old store")
        store.append_many([Append("legacy", u) for u in updates])
        state = rebuild(updates[:5])
        record = pack(Snapshot(5, 1.0, state, b"\x00").to_map())
        assert isinstance(store.log, RedisLogStore)
        redis = store.log.redis
        redis.hset(key("snap", "legacy"), mapping={"seq": 5, "r": record})
        redis.xtrim(key("log", "legacy"), minid="0-6")
        loaded = store.load("legacy")
        assert loaded.snapshot_seq == 5 and content(loaded.updates)["t"] == "old store"
        assert store.compact("legacy", force=True) is not None
        assert not redis.exists(key("snap", "legacy"))
        assert content(store.load("legacy").updates)["t"] == "old store"
    finally:
        store.close()
