"""Rooms deleted in the server, and the archive's lag, on LMDB and on Redis.

A deleted room stays in the archive, marked with when it was deleted: recovery to a time
before that brings it back, to a later time (or to the end) leaves it out; a room created
again under the name is archived beside it and recovers on its own. A deletion made by
another process (or while no archive ran) is found by the sweep. The lag gauge says how
far behind the archive is, and comes back to 0 once it catches up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, Text

from engine.errors import RoomNotFound
from engine.storage import Append, CompactionPolicy
from engine.storage.archive import DirectoryTarget, generations
from engine.storage.recover import recover
from engine.store import open_store
from harness.wire import edit
from server.archive import ArchiveConsumer
from server.config import Config
from server.metrics import Metrics
from tests.conftest import StartServer
from tests.redis_process import RedisProcess
from tests.server.test_big_snapshots import running


async def _post(http: aiohttp.ClientSession, url: str, room: str, doc: Doc[Any], text: str) -> None:
    reply = await http.post(f"{url}/v1/rooms/{room}/update", data=edit(doc, text))
    assert reply.status == 200, await reply.text()


async def _archived(archive: Path, room: str, last_seq: int, deleted: bool = False) -> None:
    """Wait until the newest archive of `room` holds `last_seq` (and is marked deleted)."""
    async with asyncio.timeout(30):
        while True:
            found = generations(DirectoryTarget(archive), room)
            newest = found[-1] if found else None
            if newest and newest.last_seq >= last_seq and (newest.deleted is not None) == deleted:
                return
            await asyncio.sleep(0.1)


def _recovered(archive: Path, out: Path, **cut: Any) -> dict[str, str]:
    """Each room's text in what `recover` rebuilds (the CLI's own tests run it as a
    command; here it runs in this process)."""
    recover(DirectoryTarget(archive), out, **cut)
    store = open_store(data_dir=out)
    try:
        texts = {}
        for info in store.rooms():
            doc: Doc[Any] = Doc()
            doc.apply_update(store.state_at(info.name, info.last_seq))
            texts[info.name] = str(doc.get("t", type=Text))
        return texts
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["lmdb", "redis"])
async def test_a_deleted_room_recovers_before_its_deletion_and_its_successor_after(
    backend: str, server_factory: StartServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    archive = tmp_path / "archive"
    extra = ["--archive", str(archive)]
    if backend == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        extra += ["--redis", redis.url]
    server = server_factory(*extra)
    first: Doc[Any] = Doc()
    other: Doc[Any] = Doc()
    second: Doc[Any] = Doc()
    async with aiohttp.ClientSession() as http, asyncio.timeout(90):
        for i in range(5):
            await _post(http, server.url, "doomed", first, f"old{i};")
            await _post(http, server.url, "kept", other, f"k{i};")
        await _archived(archive, "doomed", 5)
        before = time.time()
        await asyncio.sleep(0.05)
        deleted = await http.delete(f"{server.url}/v1/rooms/doomed")
        assert deleted.status in (200, 204), await deleted.text()
        await _archived(archive, "doomed", 5, deleted=True)
        between = time.time()
        await asyncio.sleep(0.05)
        for i in range(3):
            await _post(http, server.url, "doomed", second, f"new{i};")
        await _archived(archive, "doomed", 3)
        metrics = await (await http.get(f"{server.url}/metrics")).text()
    assert "performer_archive_lag_seconds 0.0" in metrics
    assert "performer_archive_delay_seconds_count" in metrics
    server.kill()

    old, new = str(first.get("t", type=Text)), str(second.get("t", type=Text))
    kept = str(other.get("t", type=Text))
    assert _recovered(archive, tmp_path / "now") == {"doomed": new, "kept": kept}
    at_before = _recovered(archive, tmp_path / "before", to_time=before)
    assert at_before == {"doomed": old, "kept": kept}
    at_between = _recovered(archive, tmp_path / "between", to_time=between)
    assert at_between == {"kept": kept}, "deleted by then, not created again yet"
    at_seq = _recovered(archive, tmp_path / "seq", to_seq=("doomed", 2))
    assert at_seq == {"doomed": new[: len("new0;new1;")], "kept": kept}


class FlakyTarget(DirectoryTarget):
    """A directory whose writes fail while `failing` (a full or missing disk)."""

    failing = False

    def put(self, path: str, data: bytes) -> None:
        if self.failing:
            raise OSError(28, "No space left on device")
        super().put(path, data)


@pytest.mark.parametrize("backend", ["lmdb", "redis"])
async def test_the_sweep_marks_rooms_deleted_elsewhere_and_the_lag_tracks_the_backlog(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        config = Config(redis_url=redis.url, compaction=CompactionPolicy(every_updates=1000))
    else:
        config = Config(data_dir=tmp_path / "data", compaction=CompactionPolicy(every_updates=1000))
    async with running(config) as rig:
        target = FlakyTarget(tmp_path / "archive")
        consumer = ArchiveConsumer(target, rig.store, Metrics(), rig.fanout)
        docs = rig.store.docs
        author: Doc[Any] = Doc()
        for room in ("gone", "stays"):
            seqs = await rig.store.commit([Append(room, edit(author, "x")) for _ in range(3)])
            assert seqs[-1] == 3
            records = await rig.store.entries(room, 0, 100)
            assert await consumer.deliver(room, records) == 3
        assert consumer.lag() == 0.0

        target.failing = True
        await rig.store.commit([Append("stays", edit(author, "y"))])
        records = await rig.store.entries("stays", 3, 100)
        with pytest.raises(OSError):
            await consumer.deliver("stays", records)
        await asyncio.sleep(0.2)
        assert consumer.lag() >= 0.2, "an entry waits: the lag grows"
        target.failing = False
        assert await consumer.deliver("stays", records) == 4
        assert consumer.lag() == 0.0

        stale = await rig.store.entries("gone", 0, 100)
        await rig.store.write(docs.delete_room, "gone")  # as another process would: no listener
        with pytest.raises(RoomNotFound):  # a batch read just before the deletion
            await consumer.deliver("gone", stale)
        assert consumer.lag() == 0.0, "a deleted room's entries wait for nothing"
        before = time.time()
        assert await consumer.sweep() == ["gone"]
        marked = {m.room: m.deleted for m in generations(target)}
        assert marked["stays"] is None
        assert marked["gone"] is not None and marked["gone"] >= before
        assert await consumer.sweep() == [], "marked once"
