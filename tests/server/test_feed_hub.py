"""The change feed's hub in-process over a real LMDB store: a subscriber's bounded queue,
the per-caller stream count, where a new feed starts reading, and how feeds end (last
subscriber gone, room deleted, hub closed). tests/server/test_changes.py and
test_feed_limits.py hold the same promises over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pycrdt import Doc

from engine.errors import Busy
from engine.storage import Append
from engine.storage.records import UpdateRecord
from engine.store import open_store
from harness.wire import edit
from server.metrics import Metrics
from server.rooms import feeds
from server.rooms.feeds import FeedHub, Subscriber
from server.rooms.store import RoomStore

WAIT = 10.0


def encode(record: UpdateRecord) -> bytes:
    return f"seq {record.seq}".encode()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RoomStore]:
    rooms = RoomStore(open_store(data_dir=tmp_path / "data"), Metrics())
    await rooms.start()
    yield rooms
    await rooms.close()


async def commit(store: RoomStore, room: str, count: int = 1) -> list[int]:
    return await store.commit([Append(room, edit(Doc(), f"{room} {i}")) for i in range(count)])


async def next_batch(subscriber: Subscriber) -> list[tuple[int, bytes]]:
    async with asyncio.timeout(WAIT):
        while True:
            taken = subscriber.take()
            if taken:
                return taken
            await subscriber.wakeup.wait()


def test_a_queue_takes_up_to_its_limits_and_overflows_past_them() -> None:
    by_count = Subscriber("r", limit=3, limit_bytes=1000)
    by_count.offer([(1, b"a"), (2, b"b")])
    by_count.offer([(3, b"c")])  # exactly at the limit: kept
    assert not by_count.overflowed and by_count.queued == 3 and by_count.queued_bytes == 3
    assert by_count.take() == [(1, b"a"), (2, b"b"), (3, b"c")]
    assert (by_count.queued, by_count.queued_bytes, by_count.wakeup.is_set()) == (0, 0, False)
    by_count.offer([(4, b"d"), (5, b"e"), (6, b"f")])  # room again after the take
    assert not by_count.overflowed
    by_count.offer([(7, b"g")])
    assert by_count.overflowed and by_count.wakeup.is_set()
    by_count.offer([(8, b"h")])  # nothing more once overflowed
    assert by_count.take() == [(4, b"d"), (5, b"e"), (6, b"f")]

    by_bytes = Subscriber("r", limit=100, limit_bytes=4)
    by_bytes.offer([(1, b"ab"), (2, b"cd")])  # exactly 4 bytes: kept
    assert not by_bytes.overflowed
    by_bytes.offer([(3, b"e")])
    assert by_bytes.overflowed and by_bytes.take() == [(1, b"ab"), (2, b"cd")]


def test_cut_ends_a_stream_as_an_overflow_does() -> None:
    subscriber = Subscriber("r")
    subscriber.cut()
    assert subscriber.overflowed and subscriber.wakeup.is_set()


async def test_a_new_feed_starts_after_what_is_already_stored(store: RoomStore) -> None:
    await commit(store, "old", 3)
    hub = FeedHub(store, encode)
    try:
        subscriber = await hub.subscribe("old")
        assert subscriber.room == "old" and subscriber.feed is hub.feeds["old"]
        assert hub.feeds["old"].position == 3
        await commit(store, "old")
        assert await next_batch(subscriber) == [(4, b"seq 4")]
        fresh = await hub.subscribe("never-written")
        assert hub.feeds["never-written"].position == 0 and fresh.feed is not None
        await commit(store, "never-written", 2)
        assert await next_batch(fresh) == [(1, b"seq 1"), (2, b"seq 2")]
    finally:
        await hub.close()


async def test_subscribers_of_one_room_share_one_feed_with_their_own_queues(
    store: RoomStore,
) -> None:
    hub = FeedHub(store, encode, queue_entries=2, queue_bytes=1000)
    try:
        first, second = await hub.subscribe("r"), await hub.subscribe("r")
        assert first.feed is second.feed and first.limit == 2 and second.limit_bytes == 1000
        await commit(store, "r")
        assert await next_batch(first) == [(1, b"seq 1")]
        assert await next_batch(second) == [(1, b"seq 1")]
        assert first.feed is not None and first.feed.reads >= 1
        await commit(store, "r", 3)  # more than second's queue holds
        async with asyncio.timeout(WAIT):
            while not second.overflowed:
                await second.wakeup.wait()
                second.wakeup.clear()
    finally:
        await hub.close()


async def test_one_caller_holds_only_so_many_streams_and_gets_them_back(
    store: RoomStore,
) -> None:
    hub = FeedHub(store, encode, streams_per_caller=2)
    try:
        held = [await hub.subscribe("r", caller="ann"), await hub.subscribe("s", caller="ann")]
        assert hub.streams == {"ann": 2}
        with pytest.raises(Busy, match="at most 2"):
            await hub.subscribe("r", caller="ann")
        assert hub.streams == {"ann": 2}
        await hub.subscribe("r", caller="bo")  # another caller is not affected
        await hub.subscribe("r")  # nor are uncounted streams
        hub.unsubscribe(held[0])
        assert hub.streams == {"ann": 1, "bo": 1}
        hub.unsubscribe(held[0])  # a second unsubscribe changes nothing
        assert hub.streams == {"ann": 1, "bo": 1}
        third = await hub.subscribe("t", caller="ann")
        hub.unsubscribe(held[1])
        assert hub.streams["ann"] == 1
        hub.unsubscribe(third)  # every stream given back: the caller starts afresh
        assert "ann" not in hub.streams
        again = [await hub.subscribe(room, caller="ann") for room in ("r", "s")]
        assert hub.streams["ann"] == 2 and all(s.feed is not None for s in again)
    finally:
        await hub.close()


async def test_a_feed_ends_with_its_last_subscriber(store: RoomStore) -> None:
    hub = FeedHub(store, encode)
    try:
        first, second = await hub.subscribe("r"), await hub.subscribe("r")
        feed = hub.feeds["r"]
        hub.unsubscribe(first)
        assert hub.feeds["r"] is feed and feed.subscribers == {second}
        hub.unsubscribe(second)
        assert "r" not in hub.feeds and second.feed is None
        async with asyncio.timeout(WAIT):  # with no subscriber its reader returns
            while feed.task is not None and not feed.task.done():
                await commit(store, "r")
                await asyncio.sleep(0.01)
        again = await hub.subscribe("r")
        assert hub.feeds["r"] is not feed and again.feed is hub.feeds["r"]
    finally:
        await hub.close()


async def test_deleting_a_room_tells_its_subscribers_and_stops_its_reader(
    store: RoomStore,
) -> None:
    hub = FeedHub(store, encode)
    other = await hub.subscribe("other")
    subscriber = await hub.subscribe("r")
    feed = subscriber.feed
    assert feed is not None and feed.task is not None
    hub.room_deleted("r")
    hub.room_deleted("never-subscribed")  # nothing to end
    assert subscriber.deleted and subscriber.wakeup.is_set() and not feed.subscribers
    assert "r" not in hub.feeds and "other" in hub.feeds and not other.deleted
    async with asyncio.timeout(WAIT):
        await asyncio.wait([feed.task])
    assert feed.task.cancelled()
    hub.unsubscribe(subscriber)  # its stream ends later: nothing breaks
    other_task = hub.feeds["other"].task
    await hub.close()
    assert hub.feeds == {} and other.wakeup.is_set()
    assert other_task is not None and other_task.done()


async def test_a_room_deleted_by_another_process_ends_its_feed(store: RoomStore) -> None:
    await commit(store, "r")
    hub = FeedHub(store, encode)
    try:
        subscriber = await hub.subscribe("r")
        feed = hub.feeds["r"]
        assert feed.created is not None
        await store.write(store.docs.delete_room, "r")  # behind this hub's back
        store.commits.notify("r", 2)  # wakes the reader, which finds nothing new
        await _until_deleted(subscriber)
        assert "r" not in hub.feeds
    finally:
        await hub.close()


async def test_an_idle_feed_keeps_its_room_until_it_is_deleted_or_made_anew(
    store: RoomStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each idle wait checks the room; the same room carries on, another room of the
    same name (deleted and written again elsewhere) ends the feed."""
    monkeypatch.setattr(feeds, "IDLE_SECONDS", 0.01)
    await commit(store, "r")
    hub = FeedHub(store, encode)
    try:
        subscriber = await hub.subscribe("r")
        feed = hub.feeds["r"]
        async with asyncio.timeout(WAIT):
            while feed.reads < 5 and not subscriber.deleted:  # several idle checks
                await asyncio.sleep(0.01)
        assert not subscriber.deleted and hub.feeds.get("r") is feed
        (seq,) = await commit(store, "r")
        assert await next_batch(subscriber) == [(seq, f"seq {seq}".encode())]
        await store.write(store.docs.delete_room, "r")  # behind this hub's back ...
        await asyncio.sleep(0.01)
        await store.write(store.docs.append, "r", edit(Doc(), "anew"))  # ... and anew
        await _until_deleted(subscriber)
        assert "r" not in hub.feeds
    finally:
        await hub.close()


async def test_a_commit_costs_the_room_two_reads_whatever_its_subscribers(
    store: RoomStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One read finds the new entries for every subscriber, one more finds the end; the
    commit wakes the feed (its idle wait is made longer than the test's deadline)."""
    monkeypatch.setattr(feeds, "IDLE_SECONDS", 60.0)
    hub = FeedHub(store, encode)
    try:
        subscribers = [await hub.subscribe("r") for _ in range(50)]
        feed = hub.feeds["r"]
        before = feed.reads
        for _ in range(3):
            (seq,) = await commit(store, "r")
            for subscriber in subscribers:
                assert await next_batch(subscriber) == [(seq, f"seq {seq}".encode())]
        async with asyncio.timeout(WAIT):
            while feed.reads - before < 6:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert feed.reads - before == 6
    finally:
        await hub.close()


async def test_a_feed_of_a_room_written_before_this_process_starts_at_its_end(
    tmp_path: Path,
) -> None:
    """No commit of this process names the room's durable end: the store's count does."""
    first = RoomStore(open_store(data_dir=tmp_path / "data"), Metrics())
    await first.start()
    await commit(first, "old", 3)
    await first.close()
    store = RoomStore(open_store(data_dir=tmp_path / "data"), Metrics())
    await store.start()
    hub = FeedHub(store, encode, streams_per_caller=1)
    try:
        subscriber = await hub.subscribe("old", caller="ann")  # one stream allowed: this
        assert hub.feeds["old"].position == 3
        with pytest.raises(Busy):
            await hub.subscribe("old", caller="ann")
        await commit(store, "old")
        assert await next_batch(subscriber) == [(4, b"seq 4")]
    finally:
        await hub.close()
        await store.close()


async def _until_deleted(subscriber: Subscriber) -> None:
    """Wait (with the test's deadline) until the feed tells the subscriber its room is gone."""
    async with asyncio.timeout(WAIT):
        while not subscriber.deleted:
            await subscriber.wakeup.wait()
            subscriber.wakeup.clear()
