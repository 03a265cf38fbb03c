"""Bounded compute for JSON views and restores, with real worker processes: per-caller
and per-room limits, a bounded queue answering Busy, work dropped when its caller
leaves, a time budget that replaces the worker, a cache, and snapshots on their own
pool; then the flood of the report against a real server on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pycrdt import Doc, Map

from engine.errors import Busy, Unavailable
from engine.update_scan import UpdateShape, scan_update
from server import Config, create_app
from server.auth import issue_token
from server.compute_lane import CallerGone, ComputeLane
from server.config import ComputeLimits
from server.http.keys import COMPUTE, LANE
from server.http.versions import json_text_at

SECRET = "a-secret-of-at-least-thirty-two-bytes!"
WAIT = 30.0


@pytest.fixture
async def lane() -> Any:
    lane = ComputeLane(ComputeLimits(workers=1, queue=1, per_caller=1, per_room=2,
                                     budget_seconds=60.0))  # fmt: skip
    assert await lane.run(pow, 2, 10, caller="warm", room="w") == 1024  # worker started
    yield lane
    lane.close()


async def _started(lane: ComputeLane, running: int = 1) -> None:
    async with asyncio.timeout(WAIT):
        while lane.running < running:
            await asyncio.sleep(0.02)


async def test_limits_per_caller_per_room_and_queue_answer_busy(lane: ComputeLane) -> None:
    slow = asyncio.create_task(lane.run(time.sleep, 1.5, caller="ann", room="a"))
    await _started(lane)
    with pytest.raises(Busy, match="per caller") as per_caller:
        await lane.run(pow, 2, 2, caller="ann", room="b")
    assert per_caller.value.retry_after >= 1
    queued = asyncio.create_task(lane.run(pow, 3, 3, caller="bob", room="a"))
    await asyncio.sleep(0.3)
    with pytest.raises(Busy, match="per room"):
        await lane.run(pow, 2, 2, caller="cy", room="a")
    with pytest.raises(Busy, match="queue is full"):
        await lane.run(pow, 2, 2, caller="cy", room="c")
    assert await asyncio.wait_for(queued, WAIT) == 27  # admitted work is done, in order
    await asyncio.wait_for(slow, WAIT)
    assert await lane.run(pow, 2, 2, caller="cy", room="c") == 4  # and room again after


async def test_anonymous_callers_of_an_open_server_are_limited_per_room_only(
    lane: ComputeLane,
) -> None:
    """Behind a proxy every anonymous caller has the same address: not a caller."""
    jobs = [asyncio.create_task(lane.run(time.sleep, 0.5, caller=None, room=f"r{i}"))
            for i in range(2)]  # fmt: skip
    await asyncio.wait_for(asyncio.gather(*jobs), WAIT)  # one ran, one waited: no Busy


async def test_a_job_past_its_budget_has_its_worker_replaced() -> None:
    lane = ComputeLane(ComputeLimits(budget_seconds=1.0))
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable, match="longer than 1 s"):
            await lane.run(time.sleep, 60, caller="ann", room="a")
        assert time.monotonic() - started < WAIT
        assert lane.restarts == 1
        assert await lane.run(pow, 2, 5, caller="ann", room="a") == 32  # a fresh worker
    finally:
        lane.close()


async def test_work_is_dropped_when_its_caller_leaves(lane: ComputeLane, tmp_path: Path) -> None:
    left = {"bob": False, "ann": False}
    running = asyncio.create_task(
        lane.run(time.sleep, 60, caller="ann", room="a", gone=lambda: left["ann"])
    )
    await _started(lane)
    marker = tmp_path / "ran"
    queued = asyncio.create_task(
        lane.run(os.mkdir, str(marker), caller="bob", room="b", gone=lambda: left["bob"])
    )
    await asyncio.sleep(0.3)
    left["bob"] = True  # leaves while waiting: its job never starts
    with pytest.raises(CallerGone):
        await asyncio.wait_for(queued, WAIT)
    left["ann"] = True  # leaves while running: the worker is killed, not left to finish
    with pytest.raises(CallerGone):
        await asyncio.wait_for(running, WAIT)
    assert lane.restarts == 1 and lane.running == 0 and lane.waiting == 0
    assert not marker.exists()
    assert await lane.run(pow, 3, 2, caller="bob", room="b") == 9


async def test_snapshots_do_not_wait_behind_the_lane(tmp_path: Path) -> None:
    app = create_app(Config(data_dir=tmp_path))
    async with TestServer(app):
        lane = app[LANE]
        assert await app[COMPUTE].run(pow, 2, 2) == 4  # both pools started
        assert await lane.run(pow, 2, 2, caller="warm", room="w") == 4
        busy = [asyncio.create_task(lane.run(time.sleep, 3, caller=f"c{i}", room=f"r{i}"))
                for i in range(3)]  # fmt: skip
        await _started(lane)
        started = time.monotonic()
        assert await app[COMPUTE].run(pow, 2, 3) == 8  # the snapshots' own pool
        assert time.monotonic() - started < 2.5  # behind the lane it would wait out a 3 s job
        await asyncio.gather(*busy)


@pytest.fixture(params=["lmdb", "redis"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    redis_url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    return Config(data_dir=tmp_path / "data", redis_url=redis_url, auth_secret=SECRET)


def _room_update(entries: int) -> bytes:
    doc: Doc[Any] = Doc()
    items = doc.get("items", type=Map)
    with doc.transaction():
        for i in range(entries):
            items[f"k{i}"] = Map({"n": i, "text": "x" * 20})
    return doc.get_update()


async def test_one_read_token_cannot_starve_other_rooms_views(config: Config) -> None:
    """The report's attack: 20 concurrent `GET /json?at=` from one read-only token.
    Most are refused with 503 + Retry-After at once; another room's view is answered;
    a repeated view comes from the cache."""
    app = create_app(config)
    async with TestServer(app) as server:
        base = str(server.make_url("")).rstrip("/")
        writer = issue_token(SECRET, "*")
        async with aiohttp.ClientSession() as http:
            for room, entries in (("big", 3000), ("small", 3)):
                for _ in range(2):
                    async with http.post(f"{base}/v1/rooms/{room}/update?token={writer}",
                                         data=_room_update(entries)) as r:  # fmt: skip
                        assert r.status == 200
            reader = issue_token(SECRET, "big", read_only=True)

            async def view(at: int) -> tuple[int, str | None]:
                url = f"{base}/v1/rooms/big/json?at={at}&token={reader}"
                async with http.get(url) as response:
                    await response.read()
                    return response.status, response.headers.get("Retry-After")

            flood = [asyncio.create_task(view(at % 2 + 1)) for at in range(20)]
            await asyncio.sleep(0.2)
            other = issue_token(SECRET, "small", read_only=True)
            async with http.get(f"{base}/v1/rooms/small/json?token={other}") as small:
                assert small.status == 200
                assert len((await small.json())["doc"]["items"]) == 3
            answers = await asyncio.wait_for(asyncio.gather(*flood), 120)
            refused = [retry for status, retry in answers if status == 503]
            assert len(refused) >= 10, answers
            assert all(retry is not None and int(retry) >= 1 for retry in refused)
            assert {status for status, _ in answers} <= {200, 503}
            jobs = app[LANE].jobs
            assert (await view(1))[0] == 200 and (await view(1))[0] == 200
            assert app[LANE].jobs <= jobs + 1  # at most once more: then from the cache


def slow_view(updates: list[bytes], types: dict[str, str] | None) -> bytes:
    """A JSON view that takes a minute (the worker imports it from this module)."""
    time.sleep(60)
    return b"{}"


@pytest.mark.parametrize("cancelled", [False, True], ids=["served", "handler-cancelled"])
async def test_a_view_whose_caller_disconnects_stops_its_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cancelled: bool
) -> None:
    """`performer serve` leaves a handler running when its client leaves (the lane sees
    the closed transport); an embedding application may cancel it instead."""
    from server.http import versions

    monkeypatch.setattr(versions, "json_text_at", slow_view)
    app = create_app(Config(data_dir=tmp_path))
    runner = web.AppRunner(app, handler_cancellation=cancelled)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        lane = app[LANE]
        assert await lane.run(pow, 2, 2, caller=None, room="warm") == 4  # worker up
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/v1/rooms/r/update", data=_room_update(3)) as posted:
                assert posted.status == 200
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(3.0):
                    async with http.get(f"{base}/v1/rooms/r/json") as response:
                        await response.read()
        assert lane.jobs == 2  # the view had started
        async with asyncio.timeout(WAIT):  # the caller is gone: its minute of work is not
            while lane.restarts < 1 or lane.running:
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


async def test_the_lane_is_seen_in_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued and running jobs, refusals by the limit reached, and jobs past their budget
    are Prometheus metrics, as an operator alerting on a flood needs them."""
    from server.http import versions

    monkeypatch.setattr(versions, "json_text_at", slow_view)
    limits = ComputeLimits(workers=1, queue=0, per_room=1, budget_seconds=2.0)
    app = create_app(Config(data_dir=tmp_path, compute=limits))
    async with TestServer(app) as server:
        base = str(server.make_url("")).rstrip("/")
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> tuple[int, str]:
                async with http.get(base + path) as response:
                    return response.status, await response.text()

            for room in ("r", "q"):
                async with http.post(f"{base}/v1/rooms/{room}/update",
                                     data=_room_update(3)) as posted:  # fmt: skip
                    assert posted.status == 200
            slow = asyncio.create_task(get("/v1/rooms/r/json"))
            await _started(app[LANE])
            metrics = (await get("/metrics"))[1]
            assert _metric(metrics, "performer_compute_running") == 1
            assert _metric(metrics, "performer_compute_queued") == 0
            assert (await get("/v1/rooms/r/json"))[0] == 503  # per room
            assert (await get("/v1/rooms/q/json"))[0] == 503  # the queue (of 0) is full
            assert (await asyncio.wait_for(slow, WAIT))[0] == 503  # past its budget
            metrics = (await get("/metrics"))[1]
        assert _metric(metrics, 'performer_compute_refused_total{reason="room"}') == 1
        assert _metric(metrics, 'performer_compute_refused_total{reason="queue"}') == 1
        assert _metric(metrics, 'performer_compute_refused_total{reason="caller"}') == 0
        assert _metric(metrics, "performer_compute_timed_out_total") == 1
        assert _metric(metrics, "performer_compute_running") == 0


def view_slow_when_typed(updates: list[bytes], types: dict[str, str] | None) -> bytes:
    """The JSON view, taking a minute when asked for with `types` (imported by the worker)."""
    if types:
        time.sleep(60)
    return json_text_at(updates, types)


async def test_a_cached_view_counts_against_its_caller(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached view costs no worker but is event-loop time all the same: a caller whose
    views or restores already fill its place gets 503 + Retry-After for a cached one too,
    while other callers (even of the same room) get theirs, and so does it once done."""
    from server.http import versions

    monkeypatch.setattr(versions, "json_text_at", view_slow_when_typed)
    limits = ComputeLimits(per_caller=1, budget_seconds=3.0)
    app = create_app(dataclasses.replace(config, compute=limits))
    async with TestServer(app) as server:
        base = str(server.make_url("")).rstrip("/")
        ann = issue_token(SECRET, "r", read_only=True, user="ann")
        bob = issue_token(SECRET, "r", read_only=True, user="bob")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{base}/v1/rooms/r/update?token={issue_token(SECRET, 'r')}",
                                 data=_room_update(3)) as posted:  # fmt: skip
                assert posted.status == 200

            async def view(token: str, query: str = "") -> tuple[int, str | None]:
                async with http.get(f"{base}/v1/rooms/r/json?token={token}{query}") as response:
                    await response.read()
                    return response.status, response.headers.get("Retry-After")

            assert await view(ann) == (200, None)  # computed once, then cached
            jobs = app[LANE].jobs
            slow = asyncio.create_task(view(ann, "&types=items:map"))
            await _started(app[LANE])
            status, retry_after = await view(ann)
            assert status == 503 and retry_after is not None and int(retry_after) >= 1
            assert await view(bob) == (200, None)  # same room, another caller: answered
            assert (await asyncio.wait_for(slow, WAIT))[0] == 503  # stopped past its budget
            assert await view(ann) == (200, None)
            assert app[LANE].jobs == jobs + 1  # only the slow one was computed again
            assert app[LANE].refused["caller"] == 1


async def test_a_restore_is_not_walked_again_on_the_event_loop(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restore's update is scanned in the worker with the diff; the room applies it
    with that scan (a big restore's walk in the room held every room's edits)."""
    from engine import document

    walked: list[int] = []

    def counting_scan(update: bytes) -> UpdateShape:
        walked.append(len(update))
        return scan_update(update)

    monkeypatch.setattr(document, "scan_update", counting_scan)  # this process only
    app = create_app(config)
    async with TestServer(app) as server:
        base = str(server.make_url("")).rstrip("/")
        writer = issue_token(SECRET, "r")
        async with aiohttp.ClientSession() as http:
            for entries in (5, 200):
                async with http.post(f"{base}/v1/rooms/r/update?token={writer}",
                                     data=_room_update(entries)) as posted:  # fmt: skip
                    assert posted.status == 200
            walked.clear()
            async with http.post(f"{base}/v1/rooms/r/restore?token={writer}",
                                 json={"seq": 1}) as restored:  # fmt: skip
                assert restored.status == 200
                assert await restored.json() == {"seq": 3, "restore_of": 1, "changed": True}
            assert walked == []
            async with http.get(f"{base}/v1/rooms/r/json?token={writer}") as now:
                assert len((await now.json())["doc"]["items"]) == 5
