"""Redis-specific behaviour against a real Redis: racing compactors in two processes'
stores, a follower that finds a gap, leases, and presence between two fan-outs (the rest
is the shared contract suite in tests/engine/test_docstore.py)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as redis

from engine.document import rebuild
from engine.storage import Append, DocStore, LoadedRoom, Retention
from engine.store import open_store
from server.rooms.presence import PresenceRelay
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
        presence = relay("room")

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


def relay(room: str) -> PresenceRelay:
    return PresenceRelay(room=room, peers={}, flush_seconds=0.01, max_ids_per_peer=4,
                         publish=lambda payload: None)  # fmt: skip


class PresenceSink:
    """A room as the fan-out sees it, keeping the awareness other processes send."""

    def __init__(self, room: str, states: bytes | None = None) -> None:
        self.presence = relay(room)
        self.presence.local_states = lambda: states  # type: ignore[method-assign]
        self.heard: list[bytes] = []
        self.news = asyncio.Event()

    def remote_updates(self, batch: list[bytes], last_seq: int) -> None:
        pass

    def remote_awareness(self, payload: bytes) -> None:
        self.heard.append(payload)
        self.news.set()


async def never_loads(room: str) -> LoadedRoom:
    raise AssertionError("no gap expected")


@pytest.fixture
async def fanouts(redis_server: RedisProcess) -> AsyncIterator[list[RedisFanout]]:
    pair = [RedisFanout(redis_server.url, node, never_loads) for node in (b"one", b"two")]
    for fanout in pair:
        await fanout.start()
    yield pair
    for fanout in pair:
        await fanout.close()


async def hears(sink: PresenceSink, payload: bytes, again: Callable[[], None]) -> None:
    """Until `sink` has heard `payload` (10 s at most), `again()` every 0.2 s: a publish
    before the subscription is in place is lost, and that is not what is tested here."""
    async with asyncio.timeout(10):
        while payload not in sink.heard:
            again()
            sink.news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sink.news.wait(), 0.2)


async def test_presence_of_every_room_followed_at_once_reaches_the_other_process(
    fanouts: list[RedisFanout],
) -> None:
    """Regression: rooms followed together on a fresh process each opened their own
    pub/sub connection and only the last one was read, so the others heard nothing."""
    one, two = fanouts
    rooms = [f"room-{i}" for i in range(5)]
    on_one = {room: PresenceSink(room) for room in rooms}
    on_two = {room: PresenceSink(room) for room in rooms}
    for room in rooms:
        one.follow(room, 0, on_one[room])
        two.follow(room, 0, on_two[room])
    for room in rooms:
        for sender, receiver in ((one, on_two[room]), (two, on_one[room])):
            hello = f"{sender.node.decode()} in {room}".encode()
            await hears(receiver, hello, lambda: sender.publish_awareness(room, hello))  # noqa: B023


async def test_a_process_that_starts_following_a_room_gets_the_states_held_elsewhere(
    fanouts: list[RedisFanout],
) -> None:
    """Pub/sub keeps nothing: a process loading a room late asks, and the others answer
    with their own clients' states."""
    one, two = fanouts
    holder = PresenceSink("late", states=b"states of one's clients")
    one.follow("late", 0, holder)
    await hears(holder, b"are you there", lambda: two.publish_awareness("late", b"are you there"))
    latecomer = PresenceSink("late")
    two.follow("late", 0, latecomer)
    async with asyncio.timeout(10):
        await latecomer.news.wait()
    assert latecomer.heard == [b"states of one's clients"]


async def test_garbage_on_a_presence_channel_is_ignored_and_presence_carries_on(
    fanouts: list[RedisFanout], redis_server: RedisProcess
) -> None:
    """Anything published on a room's channel (short, unknown kind, a stateless message
    that is not UTF-8): nothing is delivered for it and the next real message is."""
    one, two = fanouts
    room = PresenceSink("noisy")
    one.follow("noisy", 0, room)
    await hears(room, b"ready", lambda: two.publish_awareness("noisy", b"ready"))
    raw = redis.Redis.from_url(redis_server.url)
    try:
        for junk in (b"", b"\x01", b"\x09\x03two", b"\x01\xffxx", b"\x03\x03two\xff\xfe"):
            await raw.publish("performer:aw:noisy", junk)
    finally:
        await raw.aclose()
    await hears(room, b"after", lambda: two.publish_awareness("noisy", b"after"))
    assert set(room.heard) == {b"ready", b"after"}
