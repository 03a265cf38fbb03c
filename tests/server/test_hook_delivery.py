"""on_change is called exactly once per change while the process lives, and a change whose
hook call was cut short by kill -9 is delivered again after the restart: the delivery
cursor moves only after the hook returned. On LMDB and on a real Redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from engine.storage.records import UpdateRecord
from harness.wire import edit
from server import Change, Config, Hooks, create_app
from server.change_hooks import ChangeHookConsumer
from server.metrics import Metrics
from tests.conftest import StartServer
from tests.redis_process import RedisProcess
from tests.server.hooks_app import delivered, wait_until

HOOKS = "tests.server.hooks_app"
WAIT = 20.0


class Calls(Hooks):
    """Every on_change call, in the order they were made."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    async def on_change(self, change: Change) -> None:
        self.seqs.append(change.seq)


@pytest.fixture(params=["lmdb", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Config]:
    if request.param == "lmdb":
        return lambda: Config(data_dir=tmp_path / "data")
    redis: RedisProcess = request.getfixturevalue("redis_server")
    return lambda: Config(redis_url=redis.url)


async def post(http: aiohttp.ClientSession, url: str, update: bytes) -> int:
    async with http.post(url, data=update) as response:
        assert response.status == 200, await response.text()
        return int((await response.json())["seq"])


async def test_concurrent_posts_reach_on_change_exactly_once_each(
    backend: Callable[[], Config],
) -> None:
    """Batches of several entries are delivered whole: the cursor lands on the batch's
    last seq, so no entry is handed to the hook twice."""
    hooks = Calls()
    app = create_app(backend(), hooks)
    async with TestServer(app) as test_server:
        url = str(test_server.make_url("/v1/rooms/busy/update"))
        author: Doc[Any] = Doc()
        async with aiohttp.ClientSession() as http:
            for _round in range(3):
                updates = [edit(author, f"{i},") for i in range(10)]
                await asyncio.gather(*(post(http, url, update) for update in updates))
        await wait_until(lambda: len(set(hooks.seqs)) >= 30, "every seq")
        await asyncio.sleep(0.5)  # time for a repeated delivery to show
    assert hooks.seqs == list(range(1, 31))


@pytest.mark.parametrize("redis", [False, True], ids=["lmdb", "redis"])
async def test_a_change_whose_hook_was_cut_short_by_kill_9_is_delivered_after_restart(
    server_factory: StartServer, tmp_path: Path, request: pytest.FixtureRequest, redis: bool
) -> None:
    hold = tmp_path / "hold"
    hold.touch()
    entered, log = tmp_path / "entered", tmp_path / "changes.jsonl"
    env = {"PERFORMER_TEST_CHANGES": str(log), "PERFORMER_TEST_ENTERED": str(entered),
           "PERFORMER_TEST_HOLD": str(hold)}  # fmt: skip
    args = ["--hooks", f"{HOOKS}:Recorder"]
    if redis:
        args += ["--redis", request.getfixturevalue("redis_server").url]
    server = server_factory(*args, env=env)
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        url = f"{server.url}/v1/rooms/held-room/update"
        assert await post(http, url, edit(Doc(), "slow to index")) == 1
    await wait_until(lambda: entered.exists() and entered.read_text() == "1\n", "the hook call")
    await asyncio.sleep(0.3)  # an early cursor write would be on disk by now
    server.kill()  # inside the hook's call
    assert delivered(log) == []
    hold.unlink()
    server.restart()
    lease = 15.0 if redis else 0.0  # on Redis the dead process's room lease runs out first
    await wait_until(lambda: [d["seq"] for d in delivered(log)] == [1], "seq 1", WAIT + lease)
    assert entered.read_text() == "1\n1\n"


class Picky(Hooks):
    """Hangs on seq 2, raises on seq 3, records the rest in full."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    async def on_change(self, change: Change) -> None:
        if change.seq == 2:
            await asyncio.Event().wait()
        if change.seq == 3:
            raise RuntimeError("index unavailable")
        self.changes.append(change)


async def test_a_hung_or_failing_hook_call_is_counted_and_logged_and_delivery_moves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks, metrics = Picky(), Metrics()
    consumer = ChangeHookConsumer(hooks, metrics, timeout=0.2)
    records = [
        UpdateRecord(seq, 1000.0 + seq, f"user-{seq}", (7,), bytes([seq])) for seq in (1, 2, 3, 4)
    ]
    async with asyncio.timeout(WAIT):
        assert await consumer.deliver("notes", records) == 4
    assert [(c.room, c.seq, c.ts, c.user, c.update) for c in hooks.changes] == [
        ("notes", 1, 1001.0, "user-1", b"\x01"),
        ("notes", 4, 1004.0, "user-4", b"\x04"),
    ]
    errors = metrics.registry.get_sample_value(
        "performer_delivery_errors_total", {"consumer": "hooks"}
    )
    assert errors == 2
    failed = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(failed) == 2
    assert "'notes' seq 2" in failed[0] and "TimeoutError" in failed[0]
    assert "'notes' seq 3" in failed[1] and "index unavailable" in failed[1]
