"""The change feed's promises at their edges, on a real server (in-process) over real
storage, LMDB and Redis: entries are served only once durable, a commit made while the
feed was reading is served at once, and a stream opened while a writer commits has no gap
and no duplicate.

The one stand-in is a gate around the DocStore's `append_many` and `entries_as`: it lets the
real call run, then holds its return, so a test can stop time at "written and readable,
not yet acknowledged durable" or "read done, result not yet handed back".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from engine.storage import DocStore
from engine.store import open_store
from server import Config, create_app
from tests.redis_process import RedisProcess
from tests.server.test_changes import open_stream, session, write

WAIT = 20.0


class Gate:
    """Holds the return of the next gated call until `release` (the call itself ran)."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.released = threading.Event()

    def wrap(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def gated(*args: Any, **kwargs: Any) -> Any:
            result = call(*args, **kwargs)
            if self.armed:
                self.armed = False
                self.entered.set()
                self.released.wait(WAIT)
            return result

        return gated

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, WAIT), "the gated call never came"

    def release(self) -> None:
        self.released.set()


class Gates:
    def __init__(self) -> None:
        self.append = Gate()
        self.read = Gate()


@pytest.fixture(params=["lmdb", "redis"])
def config_for(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Config]:
    """A Config for the parametrized backend (a fresh redis-server for "redis")."""
    if request.param == "lmdb":
        return lambda: Config(data_dir=tmp_path / "data")
    redis: RedisProcess = request.getfixturevalue("redis_server")
    return lambda: Config(redis_url=redis.url)


@asynccontextmanager
async def gated_server(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[str, Gates]]:
    gates = Gates()

    def open_gated(**kwargs: Any) -> DocStore:
        docs = open_store(**kwargs)
        docs.append_many = gates.append.wrap(docs.append_many)  # type: ignore[method-assign]
        # every feed read goes through it (`entries` too, and a JSON page's one read)
        docs.entries_as = gates.read.wrap(docs.entries_as)  # type: ignore[method-assign]
        return docs

    with monkeypatch.context() as patched:
        patched.setattr("server.app.open_store", open_gated)
        app = create_app(config)
        try:
            async with TestServer(app) as test_server:
                yield str(test_server.make_url("")).rstrip("/"), gates
        finally:
            gates.append.release()
            gates.read.release()


async def seqs_of(http: aiohttp.ClientSession, url: str) -> list[int]:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return [entry["seq"] for entry in (await response.json())["entries"]]


async def test_an_entry_written_but_not_yet_durable_is_never_served(
    config_for: Callable[[], Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with gated_server(config_for(), monkeypatch) as (base, gates), session() as http:
        author: Doc[Any] = Doc()
        await write(base, "held", ["durable "], author)
        response, events = await open_stream(http, f"{base}/v1/rooms/held/changes?after=0")
        first = await events.next()
        assert first and first["id"] == 1
        gates.append.armed = True
        second = asyncio.create_task(write(base, "held", ["held"], author))
        await gates.append.wait_entered()  # stored and readable; the commit has not returned
        assert await seqs_of(http, f"{base}/v1/rooms/held/changes?after=0") == [1]
        with pytest.raises(TimeoutError):
            await events.next(timeout=0.5)  # the live stream does not serve it either
        gates.append.release()
        await asyncio.wait_for(second, WAIT)
        assert await seqs_of(http, f"{base}/v1/rooms/held/changes?after=0") == [1, 2]
        event = await events.next()
        assert event and event["id"] == 2
        response.close()


async def test_a_commit_made_while_the_feed_was_reading_is_served_at_once(
    config_for: Callable[[], Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first long-poll after a restart reads the log (no commit seen yet to bound the
    read); a commit landing during that read must end the wait at once, not at its end."""
    config = config_for()
    author: Doc[Any] = Doc()
    async with gated_server(config, monkeypatch) as (base, _):
        await write(base, "poll", ["before restart "], author)
    async with gated_server(config, monkeypatch) as (base, gates), session() as http:
        gates.read.armed = True
        poll = asyncio.create_task(seqs_of(http, f"{base}/v1/rooms/poll/changes?after=1&wait=30"))
        await gates.read.wait_entered()  # the poll's read found nothing after seq 1
        await write(base, "poll", ["during the read"], author)
        committed = time.monotonic()
        gates.read.release()
        assert await asyncio.wait_for(poll, WAIT) == [2]
        assert time.monotonic() - committed < 5.0  # not after the 30 s wait


async def test_streams_opened_while_a_writer_commits_have_no_gap_and_no_duplicate(
    config_for: Callable[[], Config], monkeypatch: pytest.MonkeyPatch
) -> None:
    total = 40
    async with gated_server(config_for(), monkeypatch) as (base, _), session() as http:
        author: Doc[Any] = Doc()
        await write(base, "busy", ["0,"], author)

        async def writer() -> None:
            for i in range(1, total):
                await write(base, "busy", [f"{i},"], author)

        async def reader(delay: float) -> list[int]:
            await asyncio.sleep(delay)
            response, events = await open_stream(http, f"{base}/v1/rooms/busy/changes?after=0")
            ids: list[int] = []
            while not ids or ids[-1] < total:
                event = await events.next()
                assert event is not None and event["event"] == "update"
                ids.append(event["id"])
            with pytest.raises(TimeoutError):
                await events.next(timeout=0.3)  # nothing after the last one either
            response.close()
            return ids

        readers = [asyncio.create_task(reader(i * 0.02)) for i in range(16)]
        await asyncio.wait_for(writer(), WAIT * 2)
        for ids in await asyncio.wait_for(asyncio.gather(*readers), WAIT * 2):
            assert ids == list(range(1, total + 1))
