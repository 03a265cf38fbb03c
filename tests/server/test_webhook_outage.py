"""Webhooks through a real outage: the retry schedule spans about a day, so a receiver
down for 90 s loses nothing and parks nothing; one down past the whole schedule is
parked and resumed by itself once a probe gets through (LMDB and Redis). URLs in logs
and parked records carry no credentials. The delivery scan costs what the rooms with
work cost, not what every room costs.

The schedule is shortened with `--webhook-retry` (the first delay; the others keep their
proportions), and the outage with it: 90 s of the real schedule is 90 * 0.05 = 4.5 s of
the schedule scaled by 0.05.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from harness.wire import edit
from server import Change, Config, Hooks, create_app
from server.delivery import RETRY_SCHEDULE, Parked
from server.http.keys import STORE
from tests.conftest import ServerProcess, StartServer
from tests.redis_process import RedisProcess
from tests.server.receiver import Receiver
from tests.server.test_webhooks import SECRET, assert_gap_free, performer, write

REAL_FIRST_DELAY = RETRY_SCHEDULE[0]


async def parked_lines(store_args: list[str]) -> list[str]:
    listed = await performer("webhooks", *store_args)
    assert listed.returncode == 0, listed.stderr
    return [line for line in listed.stdout.splitlines() if "parked at seq" in line]


async def test_a_90_second_outage_loses_nothing_and_parks_nothing(
    server_factory: StartServer, receiver: Receiver
) -> None:
    scale = 0.05
    server = server_factory("--webhook", receiver.url, "--webhook-secret", SECRET,
                            "--webhook-retry", str(REAL_FIRST_DELAY * scale))  # fmt: skip
    await write(server, "steady", 2)
    await receiver.wait_for(lambda r: r.acknowledged_upto("steady") == 2)
    port = receiver.port
    await receiver.stop()  # the receiver's deploy: nothing listens on its port
    outage = 90 * scale
    loop = asyncio.get_running_loop()
    began = loop.time()
    for _ in range(4):  # changes keep coming in while it is down
        await write(server, "steady", 1)
        await asyncio.sleep(outage / 5)
    await asyncio.sleep(max(0.0, outage - (loop.time() - began)))
    await receiver.start(port)
    await receiver.wait_for(lambda r: r.acknowledged_upto("steady") == 6, timeout=60)
    assert_gap_free(receiver, "steady", 6)
    assert await parked_lines(["--data", str(server.data_dir)]) == []
    await write(server, "steady", 1)
    await receiver.wait_for(lambda r: r.acknowledged_upto("steady") == 7, timeout=30)


@pytest.mark.parametrize("backend", ["lmdb", "redis"])
async def test_a_receiver_dead_past_the_schedule_is_parked_then_resumed_by_a_probe(
    server_factory: StartServer, receiver: Receiver, request: pytest.FixtureRequest, backend: str
) -> None:
    redis: RedisProcess | None = None
    extra: list[str] = []
    if backend == "redis":
        redis = request.getfixturevalue("redis_server")
        extra = ["--redis", redis.url]
    scale = 0.0001  # the whole schedule (about a day) in about 8 s
    server = server_factory("--webhook", receiver.url, "--webhook-secret", SECRET,
                            "--webhook-retry", str(REAL_FIRST_DELAY * scale),
                            "--webhook-probe", "0.5", *extra)  # fmt: skip
    store_args = ["--redis", redis.url] if redis else ["--data", str(server.data_dir)]
    port = receiver.port
    await receiver.stop()
    await write(server, "gone", 2)
    lines: list[str] = []
    async with asyncio.timeout(60):
        while not lines:
            await asyncio.sleep(0.5)
            lines = await parked_lines(store_args)
    assert f"after {len(RETRY_SCHEDULE) + 1} attempts" in lines[0], lines
    await receiver.start(port)
    await receiver.wait_for(lambda r: r.acknowledged_upto("gone") == 2, timeout=30)
    async with asyncio.timeout(30):
        while await parked_lines(store_args):
            await asyncio.sleep(0.2)
    await write(server, "gone", 1)  # the room delivers as before, with no one running the CLI
    await receiver.wait_for(lambda r: r.acknowledged_upto("gone") == 3, timeout=30)
    assert_gap_free(receiver, "gone", 3)


@pytest.mark.parametrize("backend", ["lmdb", "redis"])
async def test_webhook_urls_in_logs_and_parked_records_carry_no_credentials(
    tmp_path: Path,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    backend: str,
) -> None:
    redis_url = request.getfixturevalue("redis_server").url if backend == "redis" else None
    receiver.status = 500
    url = receiver.url.replace("http://", "http://hookuser:hookpass@") + "?apikey=k-123"
    config = Config(data_dir=tmp_path, redis_url=redis_url, webhook_url=url,
                    webhook_secret=SECRET, webhook_retry_seconds=0.00001)  # fmt: skip
    app = create_app(config)
    server = TestServer(app)
    with caplog.at_level(logging.INFO):
        await server.start_server()
        try:
            base = str(server.make_url("")).rstrip("/")
            await write(ServerProcess(tmp_path, url=base), "secretive", 1)
            store = app[STORE]
            raw = None
            async with asyncio.timeout(30):
                while raw is None:
                    await asyncio.sleep(0.1)
                    raw = await store.read(store.docs.get_meta, "secretive", "parked:webhook")
        finally:
            await server.close()
    parked = Parked.decode("secretive", raw)
    assert receiver.received and receiver.received[0].headers.get("Authorization")
    ours = [r for r in caplog.records if r.name.startswith("server")]  # not the receiver's
    assert any("attempt 1 failed" in r.getMessage() for r in ours)
    text = " ".join(r.getMessage() for r in ours) + parked.error
    assert "500" in parked.error and "127.0.0.1" in parked.error
    for secret in ("hookpass", "hookuser", "k-123", "apikey"):
        assert secret not in text, secret


class Quiet(Hooks):
    """on_change that records and returns at once."""

    def __init__(self) -> None:
        self.changes: list[Change] = []

    async def on_change(self, change: Change) -> None:
        self.changes.append(change)


async def test_the_delivery_scan_reads_only_rooms_with_work(tmp_path: Path) -> None:
    hooks = Quiet()
    app = create_app(Config(data_dir=tmp_path, fsync=False), hooks=hooks)
    server = TestServer(app)
    await server.start_server()
    try:
        base = str(server.make_url("")).rstrip("/")
        rooms = 150
        async with aiohttp.ClientSession() as http:
            for i in range(rooms):
                async with http.post(
                    f"{base}/v1/rooms/idle-{i}/update", data=edit(Doc(), "x")
                ) as r:
                    assert r.status == 200
        async with asyncio.timeout(30):
            while len(hooks.changes) < rooms:
                await asyncio.sleep(0.05)
        await asyncio.sleep(6.0)  # every room's delivery task idles out
        store = app[STORE]
        calls: list[str] = []
        original: Callable[..., Any] = store.read

        async def counting(func: Callable[..., Any], *args: Any) -> Any:
            calls.append(getattr(func, "__name__", "?"))
            return await original(func, *args)

        store.read = counting  # type: ignore[method-assign]
        await asyncio.sleep(4.5)  # two scans at the default 2 s
        store.read = original  # type: ignore[method-assign]
        assert len(calls) < 10, f"{len(calls)} reads for {rooms} idle rooms: {calls[:12]}"
        async with aiohttp.ClientSession() as http:  # a room with work is still found
            async with http.post(f"{base}/v1/rooms/idle-7/update", data=edit(Doc(), "y")) as r:
                assert r.status == 200
        async with asyncio.timeout(10):
            while len(hooks.changes) < rooms + 1:
                await asyncio.sleep(0.05)
    finally:
        await server.close()
