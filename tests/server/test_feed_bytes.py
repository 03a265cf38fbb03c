"""What the change feed and the history send is unchanged by how they read and encode
(views of the store, heads only, encoding in threads), on LMDB and a real redis-server:
every byte of a JSON page, of an SSE catch-up and of live SSE events equals what encoding
the records decoded whole gives; a trimmed room's snapshot too; a history page equals the
page built from whole records; and the live feed encodes off the event loop."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from aiohttp.web import Application
from pycrdt import Doc

from engine.document import rebuild
from engine.storage import CompactionPolicy, Retention
from engine.storage.records import UpdateRecord, unpack
from harness.wire import edit
from server import Config, create_app
from server.http.feed_encoding import entry_json, sse_event, sse_update
from server.http.keys import FEEDS, STORE

WAIT = 20.0
BIG = 200_000  # past several base64 pieces


@pytest.fixture(params=["lmdb", "redis"])
async def served(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, Application]]:
    redis_url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    config = Config(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        compaction=CompactionPolicy(every_updates=1_000_000, min_bytes=1 << 40),  # by hand below
        retention=Retention(keep_log=False, keep_snapshots=1),
    )
    app = create_app(config)
    async with TestServer(app) as server:
        yield str(server.make_url("")).rstrip("/"), app


async def _post(http: aiohttp.ClientSession, base: str, room: str, update: bytes) -> None:
    url = f"{base}/v1/rooms/{room}/update"
    async with http.post(url, data=update) as response:
        assert response.status == 200, await response.text()


async def _fill(base: str, room: str, author: Doc[Any], words: list[str]) -> None:
    """Several posts at once, so commits carry several of the room's updates (runs)."""
    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*[_post(http, base, room, edit(author, word)) for word in words])


def _whole_records(app: Application, room: str, after: int = 0) -> list[UpdateRecord]:
    """The room's log as it was decoded before: each record copied and decoded whole."""
    log = app[STORE].docs.log
    return [UpdateRecord.from_map(unpack(value), seq) for seq, value in log.read(room, after)]


def _trim(app: Application, room: str, seq: int) -> bytes:
    """Snapshot `room` at `seq` and drop the log up to it; the snapshot's state."""
    docs = app[STORE].docs
    state = rebuild([record.update for record in docs.records(room, 0, seq)])
    assert docs.compact(room, state=(seq, state), force=True) is not None
    return state


async def _body(base: str, path: str) -> bytes:
    async with aiohttp.ClientSession() as http, http.get(f"{base}{path}") as response:
        assert response.status == 200, await response.text()
        return await response.read()


async def test_a_json_page_is_the_page_of_whole_records_byte_for_byte(
    served: tuple[str, Application],
) -> None:
    base, app = served
    author: Doc[Any] = Doc()
    await _fill(base, "p", author, ["x" * BIG, "y" * 10, "z" * BIG, "w" * 3])
    state = await asyncio.to_thread(_trim, app, "p", 2)
    await _fill(base, "p", author, ["v" * BIG, "u" * 7, "t" * BIG])
    records = _whole_records(app, "p", 2)  # a run may keep an entry the trim covered
    assert [r.seq for r in records] == list(range(3, 8))
    page = {
        "room": "p",
        "snapshot": {"seq": 2, "state": base64.b64encode(state).decode()},
        "last_seq": 7,
        "next_after": 7,
        "more": False,
        "entries": [entry_json(record) for record in records],
    }
    assert await _body(base, "/v1/rooms/p/changes?after=0") == json.dumps(page).encode()


async def test_sse_catch_up_and_live_events_are_the_events_of_whole_records(
    served: tuple[str, Application],
) -> None:
    base, app = served
    author: Doc[Any] = Doc()
    await _fill(base, "s", author, ["a" * BIG, "b" * 5, "c" * BIG])
    state = await asyncio.to_thread(_trim, app, "s", 1)
    threads: set[str] = set()
    encode = app[FEEDS].encode

    def watched(record: UpdateRecord) -> bytes:
        threads.add(threading.current_thread().name)
        return encode(record)

    app[FEEDS].encode = watched
    loop_thread = threading.current_thread().name
    headers = {"Accept": "text/event-stream"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/v1/rooms/s/changes?after=0", headers=headers) as response:
            assert response.status == 200
            caught_up = _whole_records(app, "s", 1)
            expected = sse_event("snapshot", {"seq": 1, "state": base64.b64encode(state).decode()})
            expected += b"".join(sse_update(record) for record in caught_up)
            got = await _read_exactly(response, len(expected))
            assert got == expected
            await _fill(base, "s", author, ["d" * BIG, "e" * 9])
            live = _whole_records(app, "s", caught_up[-1].seq)
            expected = b"".join(sse_update(record) for record in live)
            assert await _read_events(response, len(live)) == expected
    assert threads and loop_thread not in threads  # the feed encoded in a thread


async def _read_exactly(response: aiohttp.ClientResponse, size: int) -> bytes:
    async with asyncio.timeout(WAIT):
        return await response.content.readexactly(size)


async def _read_events(response: aiohttp.ClientResponse, count: int) -> bytes:
    """The next `count` update events (heartbeat comments between them left out)."""
    out = b""
    async with asyncio.timeout(WAIT):
        while out.count(b"event: update\n") < count or not out.endswith(b"\n\n"):
            line = await response.content.readline()
            if line.startswith(b":") or (line == b"\n" and not out):
                continue
            out += line
    return out


async def test_a_history_page_is_the_page_of_whole_records(
    served: tuple[str, Application],
) -> None:
    base, app = served
    author: Doc[Any] = Doc()
    await _fill(base, "h", author, ["x" * BIG, "y" * 10, "z" * BIG, "w" * 3, "v" * BIG])
    records = _whole_records(app, "h")
    for after, limit in [(0, 100), (1, 2), (4, 1)]:
        chosen = [r for r in records if r.seq > after][:limit]
        page = json.loads(await _body(base, f"/v1/rooms/h/history?after={after}&limit={limit}"))
        assert page["entries"] == [
            {"seq": r.seq, "ts": r.ts, "user": r.user, "bytes": len(r.update),
             "clients": list(r.clients)}
            for r in chosen
        ]  # fmt: skip
        assert page["next_after"] == chosen[-1].seq
        assert page["more"] == (chosen[-1].seq < 5)
