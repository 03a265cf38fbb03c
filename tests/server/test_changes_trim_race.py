"""The change feed's first page when a log trim lands between its snapshot check and its
log read (LMDB and a real redis-server): the page starts from the trim's snapshot, it
never skips entries silently. The trim is forced at that moment through the log store
under the server; everything above it is the real server."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from engine.document import rebuild
from engine.storage import CompactionPolicy, LogStore, Retention
from server import Config, create_app
from server.http.keys import STORE
from tests.redis_process import RedisProcess
from tests.server.test_changes import Events, session, text_from, write

TRIMMING = Retention(keep_log=False, keep_snapshots=1)
NEVER = CompactionPolicy(every_updates=1_000_000)  # the test trims by hand


class TrimBeforeRead:
    """The server's log store, except that its next log `read` first runs `trim`."""

    def __init__(self, log: LogStore) -> None:
        self._log = log
        self.trim: Callable[[], None] | None = None

    def read(self, *args: Any, **kwargs: Any) -> list[tuple[int, bytes]]:
        trim, self.trim = self.trim, None
        if trim is not None:
            trim()
        return self._log.read(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


@pytest.fixture(params=["lmdb", "redis"])
async def trimming_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, Any, TrimBeforeRead]]:
    redis_url = None
    if request.param == "redis":
        redis_url = cast(RedisProcess, request.getfixturevalue("redis_server")).url
    config = Config(data_dir=tmp_path, redis_url=redis_url, compaction=NEVER, retention=TRIMMING)
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
