"""The change feed's first page when a log trim lands between its snapshot check and its
log read (LMDB and a real redis-server): the page starts from the trim's snapshot, it
never skips entries silently. The trim is forced at that moment through the log store
under the server; everything above it is the real server."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from engine.document import rebuild
from engine.storage import CompactionPolicy, LogStore, Retention
from server import Config, create_app
from server.config import Limits
from server.http.keys import STORE
from tests.redis_process import RedisProcess
from tests.server.test_changes import WAIT, Events, open_stream, session, text_from, write

TRIMMING = Retention(keep_log=False, keep_snapshots=1)
NEVER = CompactionPolicy(every_updates=1_000_000)  # the test trims by hand


class TrimBeforeRead:
    """The server's log store, except that its next log read (`read`, or `read_views`
    as the feed's pages read) first runs `trim`."""

    def __init__(self, log: LogStore) -> None:
        self._log = log
        self.trim: Callable[[], None] | None = None
        self.reads_first = 0  # reads that go through before the trim runs

    def read(self, *args: Any, **kwargs: Any) -> list[tuple[int, bytes]]:
        self._before_read()
        return self._log.read(*args, **kwargs)

    def read_views(self, *args: Any, **kwargs: Any) -> list[tuple[int, int, Any]]:
        self._before_read()
        return self._log.read_views(*args, **kwargs)

    def _before_read(self) -> None:
        if self.trim is not None and self.reads_first > 0:
            self.reads_first -= 1
        else:
            trim, self.trim = self.trim, None
            if trim is not None:
                trim()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


@pytest.fixture(params=["lmdb", "redis"])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """None for LMDB, or a real redis-server's URL."""
    if request.param == "lmdb":
        return None
    return cast(RedisProcess, request.getfixturevalue("redis_server")).url


@pytest.fixture
async def trimming_server(
    backend_url: str | None, tmp_path: Path
) -> AsyncIterator[tuple[str, Any, TrimBeforeRead]]:
    async for served in serve(backend_url, tmp_path, Limits()):
        yield served


@pytest.fixture
async def one_entry_pages(
    backend_url: str | None, tmp_path: Path
) -> AsyncIterator[tuple[str, Any, TrimBeforeRead]]:
    """A trimming server whose feed pages hold one entry each."""
    async for served in serve(backend_url, tmp_path, Limits(page_bytes=1)):
        yield served


async def serve(
    redis_url: str | None, tmp_path: Path, limits: Limits
) -> AsyncIterator[tuple[str, Any, TrimBeforeRead]]:
    config = Config(
        data_dir=tmp_path, redis_url=redis_url, compaction=NEVER, retention=TRIMMING, limits=limits
    )
    app = create_app(config)
    async with TestServer(app) as test_server:
        docs = app[STORE].docs
        hook = TrimBeforeRead(docs.log)
        docs.log = cast(LogStore, hook)
        yield str(test_server.make_url("")).rstrip("/"), app, hook


def snapshot_at(app: Any, room: str, seq: int) -> Callable[[], None]:
    """A compaction that snapshots `room` at `seq` and trims the log up to it."""
    docs = app[STORE].docs

    def trim() -> None:
        state = rebuild([record.update for record in docs.records(room, 0, seq)])
        assert docs.compact(room, state=(seq, state), force=True) is not None

    return trim


async def test_a_json_page_overtaken_by_a_trim_starts_from_its_snapshot(
    trimming_server: tuple[str, Any, TrimBeforeRead],
) -> None:
    base, app, hook = trimming_server
    await write(base, "race", ["a", "b", "c", "d", "e"], Doc())
    hook.trim = snapshot_at(app, "race", 3)  # after the feed saw the log start at 1
    async with session() as http:
        async with http.get(f"{base}/v1/rooms/race/changes?after=0") as response:
            body = await response.json()
    assert body["snapshot"]["seq"] == 3
    assert [entry["seq"] for entry in body["entries"]] == [4, 5]
    state = base64.b64decode(body["snapshot"]["state"])
    updates = [base64.b64decode(entry["update"]) for entry in body["entries"]]
    assert text_from([state, *updates]) == "abcde"


async def test_a_stream_overtaken_by_a_trim_starts_from_its_snapshot(
    trimming_server: tuple[str, Any, TrimBeforeRead],
) -> None:
    base, app, hook = trimming_server
    await write(base, "race", ["a", "b", "c", "d", "e"], Doc())
    hook.trim = snapshot_at(app, "race", 3)
    async with session() as http:
        response = await http.get(
            f"{base}/v1/rooms/race/changes?after=0", headers={"Accept": "text/event-stream"}
        )
        events = Events(response)
        first = await events.next()
        assert first and first["event"] == "snapshot" and first["data"]["seq"] == 3
        updates = [base64.b64decode(first["data"]["state"])]
        for seq in (4, 5):
            event = await events.next()
            assert event and event["event"] == "update" and event["id"] == seq
            updates.append(base64.b64decode(event["data"]["update"]))
        assert text_from(updates) == "abcde"
        response.close()


def snapshot_at_last(app: Any, room: str) -> Callable[[], None]:
    """A compaction that snapshots `room` at its last entry and trims the whole log."""

    def trim() -> None:
        info = app[STORE].docs.info(room)
        snapshot_at(app, room, info.last_seq)()

    return trim


async def test_a_live_subscriber_whose_entries_were_trimmed_resumes_from_the_snapshot(
    trimming_server: tuple[str, Any, TrimBeforeRead],
) -> None:
    base, app, hook = trimming_server
    author: Doc[Any] = Doc()
    await write(base, "race", ["a", "b", "c", "d", "e"], author)
    url = f"{base}/v1/rooms/race/changes?after=0"
    async with session() as http:
        response, events = await open_stream(http, url)
        for seq in range(1, 6):
            event = await events.next()
            assert event and event["id"] == seq
        hook.trim = snapshot_at_last(app, "race")  # runs as the feed reads entry 6
        await write(base, "race", ["f"], author)
        deadline = time.monotonic() + WAIT
        while hook.trim is not None:
            assert time.monotonic() < deadline, "the feed never read the log"
            await asyncio.sleep(0.01)
        await write(base, "race", ["g"], author)  # the feed reads 7: 6 is gone
        cut = await events.next()
        assert cut and cut["event"] == "overflow" and cut["data"]["resume_after"] == 5
        response.close()
        response, events = await open_stream(http, url, **{"Last-Event-ID": "5"})
        first = await events.next()
        assert first and first["event"] == "snapshot" and first["data"]["seq"] == 6
        update = await events.next()
        assert update and update["event"] == "update" and update["id"] == 7
        state = base64.b64decode(first["data"]["state"])
        assert text_from([state, base64.b64decode(update["data"]["update"])]) == "abcdefg"
        response.close()


async def test_a_catch_up_whose_next_page_was_trimmed_resumes_from_the_snapshot(
    one_entry_pages: tuple[str, Any, TrimBeforeRead],
) -> None:
    base, app, hook = one_entry_pages
    await write(base, "race", ["a", "b", "c", "d", "e"], Doc())
    hook.trim, hook.reads_first = snapshot_at(app, "race", 3), 1  # after the first page
    url = f"{base}/v1/rooms/race/changes?after=0"
    async with session() as http:
        response, events = await open_stream(http, url)
        first = await events.next()
        assert first and first["event"] == "update" and first["id"] == 1
        cut = await events.next()
        assert cut and cut["event"] == "overflow" and cut["data"]["resume_after"] == 1
        response.close()
        response, events = await open_stream(http, url, **{"Last-Event-ID": "1"})
        snapshot = await events.next()
        assert snapshot and snapshot["event"] == "snapshot" and snapshot["data"]["seq"] == 3
        updates = [base64.b64decode(snapshot["data"]["state"])]
        for seq in (4, 5):
            event = await events.next()
            assert event and event["event"] == "update" and event["id"] == seq
            updates.append(base64.b64decode(event["data"]["update"]))
        assert text_from(updates) == "abcde"
        response.close()
