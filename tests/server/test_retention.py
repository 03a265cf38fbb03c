"""History retention in a running server, on LMDB and on Redis: with a window, old
entries are folded in the background; `?at=` inside the window is exact, before it a 409
naming the oldest position; named versions stay restorable; the history carries the
summaries. kill -9 at random moments during folds loses no acknowledged edit."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, Text

from harness.ops_load import Load, room_text, wait_for_edits
from tests.conftest import StartServer
from tests.redis_process import RedisProcess

PERFORMER = [sys.executable, "-m", "server"]
FOLD_FAST = ["--history-bytes", "3000", "--history-fold-every", "0.1"]


async def _post_typing(http: aiohttp.ClientSession, url: str, room: str, count: int) -> str:
    doc: Doc[Any] = Doc()
    text = doc.get("t", type=Text)
    for i in range(count):
        before = doc.get_state()
        text += f"{i % 10}"
        reply = await http.post(f"{url}/v1/rooms/{room}/update", data=doc.get_update(before))
        assert reply.status == 200
        if i + 1 == 20:
            named = await http.post(f"{url}/v1/rooms/{room}/versions", json={"name": "early"})
            assert named.status == 200 and (await named.json())["seq"] == 20
    return str(text)


async def _settled_history(http: aiohttp.ClientSession, url: str, room: str) -> Any:
    """The room's history once folding has caught up with the writes: folded at least
    once, and the oldest position unchanged over several fold rounds (folds go on in the
    background, so a position read while they do can be gone by the next request)."""
    previous = None
    while True:
        history = await (await http.get(f"{url}/v1/rooms/{room}/history")).json()
        oldest = history["entries"][0]["seq"] if history.get("entries") else None
        if history.get("folded") and oldest == previous:
            return history
        previous = oldest
        await asyncio.sleep(0.5)


@pytest.mark.parametrize("backend", ["lmdb", "redis"])
async def test_a_window_folds_old_history_and_time_travel_answers_around_it(
    backend: str, server_factory: StartServer, request: pytest.FixtureRequest
) -> None:
    extra = list(FOLD_FAST)
    if backend == "redis":
        redis: RedisProcess = request.getfixturevalue("redis_server")
        extra += ["--redis", redis.url]
    server = server_factory(*extra)
    async with aiohttp.ClientSession() as http, asyncio.timeout(90):
        full = await _post_typing(http, server.url, "notes", 400)
        history = await _settled_history(http, server.url, "notes")
        summary = history["folded"][0]
        assert summary["from_seq"] == 1 and summary["count"] >= 100
        assert summary["users"] == {"": summary["count"]} and summary["size"] > 0
        oldest = history["entries"][0]["seq"] - 1
        assert oldest >= summary["upto"]

        refused = await http.get(f"{server.url}/v1/rooms/notes/state?at={oldest - 1}")
        body = await refused.json()
        assert refused.status == 409, body
        assert f"oldest position available is seq {oldest}" in body["error"]
    assert await room_text(server.url, "notes", str(oldest)) == full[:oldest]
    assert await room_text(server.url, "notes", str(oldest + 7)) == full[: oldest + 7]
    assert await room_text(server.url, "notes", "early") == full[:20], "named version"
    assert await room_text(server.url, "notes") == full


async def _verify(data_dir: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *PERFORMER, "verify", "--data", str(data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    return int(process.returncode or 0), output.decode()


async def test_kill_9_during_folds_loses_no_acknowledged_edit(
    server_factory: StartServer, tmp_path: Path
) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    window = ["--history-bytes", "1000", "--history-fold-every", "0.05"]
    server = server_factory(*window, data_dir=tmp_path / "live")
    writers = []
    for trial in range(4):
        load = Load(server.url, 3, prefix=f"t{trial}")
        await load.start()
        await wait_for_edits(load, at_least=130)
        await asyncio.sleep(rng.uniform(0.0, 1.0))
        server.kill()
        await load.stop()
        writers += load.writers
        server.restart()
    folds = 0
    async with aiohttp.ClientSession() as http, asyncio.timeout(60):
        for writer in writers:
            text = await room_text(server.url, writer.room)
            lost = [a.token for a in writer.acked if a.token not in text]
            assert lost == [], f"seed {seed}: {writer.room} lost acknowledged edits {lost[:5]}"
            history = await (await http.get(f"{server.url}/v1/rooms/{writer.room}/history")).json()
            folds += len(history.get("folded", []))
    assert folds > 0, f"seed {seed}: no fold happened before the kills"
    server.kill()
    code, output = await _verify(tmp_path / "live")
    assert code == 0, output
