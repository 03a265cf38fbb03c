"""Big rooms' snapshots are built in the compute worker, never on the event loop.

Real storage underneath (LMDB in a temporary directory, or a real redis-server) and the
real worker pool; the only stand-in is a Compute that counts (and on request fails) the
calls sent to it, so a test can tell which path built a snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pycrdt import Doc, Text, get_state

from engine.document import RoomDocument
from engine.storage import Append, CompactionPolicy, LoadedRoom
from engine.store import open_store
from harness.wire import edit
from server.app import open_storage
from server.compute import Compute
from server.config import Config
from server.metrics import Metrics
from server.rooms.actor import RoomActor
from server.rooms.fanout import Fanout
from server.rooms.registry import RoomRegistry
from server.rooms.store import BIG_ROOM_BYTES, RoomStore
from tests.redis_process import RedisProcess

T = TypeVar("T")
PIECE = 700_000  # characters: two pieces make a big room, one does not


class CountingCompute(Compute):
    """The real worker pool, recording the name of every function sent to it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.failing = False

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        self.calls.append(func.__name__)
        if self.failing:
            raise RuntimeError("worker died (injected)")
        return await super().run(func, *args)


@dataclass
class Rig:
    store: RoomStore
    fanout: Fanout
    registry: RoomRegistry
    compute: CountingCompute


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[Rig]:
    """The storage and rooms of a server, wired as the app wires them."""
    compute = CountingCompute()
    metrics = Metrics()
    store, fanout = open_storage(config, metrics, compute)
    await store.start()
    await fanout.start()
    registry = RoomRegistry(store, fanout, config, metrics)
    try:
        yield Rig(store, fanout, registry, compute)
    finally:
        await registry.close(1.0)
        await fanout.close()
        await store.close()
        compute.close()


def lmdb_config(tmp_path: Path, every_updates: int = 3) -> Config:
    return Config(data_dir=tmp_path / "data", compaction=CompactionPolicy(every_updates))


@pytest.fixture
def encodings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts documents encoded in this process (the worker is another process)."""
    calls: list[int] = []
    original = RoomDocument.encode_snapshot

    def counted(self: RoomDocument) -> bytes:
        calls.append(1)
        return original(self)

    monkeypatch.setattr(RoomDocument, "encode_snapshot", counted)
    return calls


async def prefill(rig: Rig, room: str, author: Doc[Any], pieces: int) -> None:
    """Store `pieces` updates of PIECE characters, as a room written earlier would be."""
    appends = [Append(room, edit(author, chr(ord("a") + i) * PIECE)) for i in range(pieces)]
    await rig.store.write(rig.store.docs.append_many, appends)


async def snapshot_at(rig: Rig, room: str, seq: int, timeout: float = 60.0) -> LoadedRoom:
    """The room as stored, once its newest snapshot covers `seq`."""
    async with asyncio.timeout(timeout):
        while True:
            loaded = await rig.store.read(rig.store.docs.load, room)
            if loaded.snapshot_seq >= seq:
                return loaded
            await asyncio.sleep(0.05)


def assert_is_the_room(snapshot: bytes, room: RoomActor, author: Doc[Any]) -> None:
    doc: Doc[Any] = Doc()
    doc.apply_update(snapshot)
    assert str(doc.get("t", type=Text)) == str(author.get("t", type=Text))
    assert get_state(snapshot) == room.doc.state_vector()


async def test_a_big_room_loaded_from_its_log_is_snapshotted_in_the_worker(
    tmp_path: Path, encodings: list[int]
) -> None:
    """Its size is the log it was loaded from: nothing appended since counts for much."""
    async with running(lmdb_config(tmp_path)) as rig:
        author: Doc[Any] = Doc()
        await prefill(rig, "big", author, 2)
        room = await rig.registry.acquire("big")
        assert await room.post_update(edit(author, "!"), "ann") == 3  # the policy's 3rd

        loaded = await snapshot_at(rig, "big", 3)
        assert rig.compute.calls == ["rebuild_whole"]
        assert encodings == []
        assert (loaded.last_seq, len(loaded.updates)) == (3, 1)
        assert loaded.snapshot_whole  # nothing waits: the next load applies it unscanned
        assert_is_the_room(loaded.updates[0], room, author)


async def test_a_room_growing_past_the_threshold_moves_its_snapshots_to_the_worker(
    tmp_path: Path, encodings: list[int]
) -> None:
    config = lmdb_config(tmp_path, every_updates=1000)  # snapshots follow the bytes
    async with running(config) as rig:
        author: Doc[Any] = Doc()
        room = await rig.registry.acquire("growing")
        await room.post_update(edit(author, "a" * PIECE), None)
        small = await snapshot_at(rig, "growing", 1)
        assert rig.compute.calls == []  # small: encoded in-process, no round trip
        assert encodings == [1]
        assert_is_the_room(small.updates[0], room, author)
        assert len(small.updates[0]) < BIG_ROOM_BYTES

        await room.post_update(edit(author, "b" * (PIECE + 100_000)), None)
        big = await snapshot_at(rig, "growing", 2)
        assert rig.compute.calls == ["rebuild_whole"]
        assert encodings == [1]
        assert_is_the_room(big.updates[0], room, author)


async def test_a_failed_worker_snapshot_is_logged_keeps_the_log_and_is_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(lmdb_config(tmp_path)) as rig:
        author: Doc[Any] = Doc()
        await prefill(rig, "big", author, 2)
        room = await rig.registry.acquire("big")
        rig.compute.failing = True
        with caplog.at_level(logging.ERROR):
            await room.post_update(edit(author, "!"), None)
            async with asyncio.timeout(10):
                while "snapshot failed" not in caplog.text:
                    await asyncio.sleep(0.01)
        loaded = await rig.store.read(rig.store.docs.load, "big")
        assert (loaded.snapshot_seq, loaded.last_seq, len(loaded.updates)) == (0, 3, 3)

        rig.compute.failing = False  # the next commit tries again
        await room.post_update(edit(author, "?"), None)
        loaded = await snapshot_at(rig, "big", 4)
        assert rig.compute.calls == ["rebuild_whole", "rebuild_whole"]
        assert_is_the_room(loaded.updates[0], room, author)


async def test_closing_the_store_waits_for_a_snapshot_still_in_the_worker(
    tmp_path: Path,
) -> None:
    config = lmdb_config(tmp_path)
    author: Doc[Any] = Doc()
    async with running(config) as rig:
        await prefill(rig, "big", author, 2)
        room = await rig.registry.acquire("big")
        await room.post_update(edit(author, "!"), None)  # the snapshot is under way
    assert rig.compute.calls == ["rebuild_whole"]
    docs = open_store(data_dir=config.data_dir)
    try:
        loaded = docs.load("big")
    finally:
        docs.close()
    assert (loaded.snapshot_seq, len(loaded.updates)) == (3, 1)


async def test_a_big_room_on_redis_is_rebuilt_in_the_worker(
    redis_server: RedisProcess, tmp_path: Path, encodings: list[int]
) -> None:
    config = Config(redis_url=redis_server.url, compaction=CompactionPolicy(every_updates=3))
    async with running(config) as rig:
        assert rig.fanout.shared
        author: Doc[Any] = Doc()
        await prefill(rig, "big", author, 2)
        room = await rig.registry.acquire("big")
        await room.post_update(edit(author, "!"), None)

        loaded = await snapshot_at(rig, "big", 3)
        assert rig.compute.calls == ["rebuild_whole"]
        assert encodings == []
        assert (loaded.last_seq, len(loaded.updates)) == (3, 1)
        assert_is_the_room(loaded.updates[0], room, author)


async def test_a_big_room_waiting_for_an_update_keeps_it_waiting_across_its_snapshot(
    tmp_path: Path,
) -> None:
    """One author's first update never reached the log, their second did: it waits for
    the first. The worker's snapshot carries it still waiting, is stored as not whole (so
    a load scans it and keeps tracking it), and once the first update arrives the room reads
    complete."""
    config = lmdb_config(tmp_path)
    author: Doc[Any] = Doc()
    late: Doc[Any] = Doc()
    first_of_late, second_of_late = edit(late, "late-1 "), edit(late, "late-2")
    async with running(config) as rig:
        await prefill(rig, "big", author, 2)
        await rig.store.write(rig.store.docs.append_many, [Append("big", second_of_late)])
        room = await rig.registry.acquire("big")
        await room.post_update(edit(author, "!"), None)
        loaded = await snapshot_at(rig, "big", 4)
        assert rig.compute.calls == ["rebuild_whole"]
        assert not loaded.snapshot_whole
    async with running(config) as rig:  # a restart: the room loads from that snapshot
        room = await rig.registry.acquire("big")
        handed_out: Doc[Any] = Doc()  # the loaded room's whole state, as a syncing client gets it
        handed_out.apply_update(room.doc.encode_snapshot())
        handed_out.apply_update(first_of_late)
        assert str(handed_out.get("t", type=Text)).count("late-") == 2
        await room.post_update(first_of_late, None)
        await room.post_update(edit(author, "?"), None)
        await room.post_update(edit(author, "?"), None)  # seq 7: the next snapshot is due
        loaded = await snapshot_at(rig, "big", 7)
    doc: Doc[Any] = Doc()
    for update in loaded.updates:
        doc.apply_update(update)
    assert str(doc.get("t", type=Text)).count("late-") == 2
