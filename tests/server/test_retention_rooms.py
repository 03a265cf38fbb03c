"""Retention per room pattern in a running server, and a big room's fold built in the
compute worker while other rooms keep editing; on LMDB and on Redis."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, Text

from engine.storage import Append, CompactionPolicy, Retention
from harness.ops_load import room_text
from harness.wire import edit
from server.config import Config
from server.metrics import Metrics
from server.retention import HistoryFolder, Windows
from tests.conftest import StartServer
from tests.redis_process import RedisProcess
from tests.server.test_big_snapshots import PIECE, Rig, prefill, running


async def _post_typing(http: aiohttp.ClientSession, url: str, room: str, count: int) -> str:
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    for i in range(count):
        before = doc.get_state()
        text += f"{i % 10}"
        reply = await http.post(f"{url}/v1/rooms/{room}/update", data=doc.get_update(before))
        assert reply.status == 200
    return str(text)


async def _history(http: aiohttp.ClientSession, url: str, room: str) -> Any:
    return await (await http.get(f"{url}/v1/rooms/{room}/history")).json()


@pytest.mark.parametrize(
    "backend", ["lmdb", pytest.param("redis", marks=pytest.mark.slow)]
)  # which window a room gets is the same code on both; the engine tests cover Redis's part
async def test_each_room_gets_its_most_specific_patterns_window(
    backend: str, server_factory: StartServer, request: pytest.FixtureRequest
) -> None:
    """No server-wide window: rooms under `scratch-*` fold, the exact name `scratch-keep`
    keeps everything, and a room no pattern names keeps everything."""
    extra = ["--history-room", "scratch-*:bytes=2000", "--history-room", "scratch-keep:all",
             "--history-fold-every", "0.1"]  # fmt: skip
    if backend == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        extra += ["--redis", redis.url]
    server = server_factory(*extra)
    rooms = ("scratch-1", "scratch-keep", "notes")
    async with aiohttp.ClientSession() as http, asyncio.timeout(120):
        texts = await asyncio.gather(*(_post_typing(http, server.url, r, 180) for r in rooms))
        while not (await _history(http, server.url, "scratch-1")).get("folded"):
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # several more fold rounds: the others stay whole
        for room in ("scratch-keep", "notes"):
            history = await _history(http, server.url, room)
            assert "folded" not in history, room
            assert history["entries"][0]["seq"] == 1, room
        refused = await http.get(f"{server.url}/v1/rooms/scratch-1/state?at=1")
        assert refused.status == 409
    for room, text in zip(rooms, texts, strict=True):
        assert await room_text(server.url, room) == text
    assert await room_text(server.url, "notes", "1") == texts[2][:1]


def _config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Config:
    common: dict[str, Any] = {
        "retention": Retention(history_bytes=500),
        "history_fold_min_entries": 10,
        "compaction": CompactionPolicy(every_updates=1_000_000, min_bytes=1 << 40),
    }
    if backend == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        return Config(redis_url=redis.url, **common)
    return Config(data_dir=tmp_path / "data", **common)


async def _probe_edits(rig: Rig, stop: asyncio.Event) -> list[float]:
    """Edits to another room, one after another; the time each took, acknowledged."""
    room = await rig.registry.acquire("probe")
    author: Doc[Any] = Doc()
    took = []
    while not stop.is_set():
        began = time.monotonic()
        await room.post_update(edit(author, "p"), "probe")
        took.append(time.monotonic() - began)
        await asyncio.sleep(0.005)
    return took


async def _loop_gaps(stop: asyncio.Event) -> float:
    """The longest the event loop went without running this task (10 ms naps)."""
    longest = 0.0
    while not stop.is_set():
        began = time.monotonic()
        await asyncio.sleep(0.01)
        longest = max(longest, time.monotonic() - began - 0.01)
    return longest


@pytest.mark.parametrize("backend", ["lmdb", "redis"])
async def test_a_big_rooms_fold_is_built_in_the_worker_while_other_rooms_edit(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    config = _config(backend, tmp_path, request)
    async with running(config) as rig:
        author: Doc[Any] = Doc()
        await prefill(rig, "big", author, 2)  # two pieces: past BIG_ROOM_BYTES
        small: Doc[Any] = Doc()
        for room, doc in (("big", author), ("small", small)):
            appends = [Append(room, edit(doc, f"{i % 10}")) for i in range(40)]
            await rig.store.write(rig.store.docs.append_many, appends)
        windows = Windows.of(config)
        assert windows is not None
        folder = HistoryFolder(windows, rig.store, rig.fanout, Metrics(), every=3600.0)

        assert await folder.fold("small")
        assert rig.compute.calls == [], "a small room's states are built in-process"

        stop = asyncio.Event()
        probe = asyncio.create_task(_probe_edits(rig, stop))
        gaps = asyncio.create_task(_loop_gaps(stop))
        await asyncio.sleep(0.1)
        try:
            async with asyncio.timeout(120):
                folded = await folder.fold("big")
        finally:
            stop.set()
        took, longest = await probe, await gaps
        assert folded
        assert rig.compute.calls == ["fold_states"]
        assert took, "the probe room's edits went on"
        assert max(took) < 5.0 and longest < 5.0, (max(took), longest)  # generous: no stall

        docs = rig.store.docs
        oldest = await rig.store.read(docs.oldest_position, "big")
        assert oldest > 2, "the big pieces were folded into the edge snapshot"
        state = await rig.store.read(docs.state_at, "big", oldest)
        at_edge: Doc[Any] = Doc()
        at_edge.apply_update(state)
        expected = str(author.get("t", type=Text))
        assert str(at_edge.get("t", type=Text)) == expected[: 2 * PIECE + oldest - 2]
        loaded = await rig.store.read(docs.load, "big")
        whole: Doc[Any] = Doc()
        for update in loaded.updates:
            whole.apply_update(update)
        assert str(whole.get("t", type=Text)) == expected
