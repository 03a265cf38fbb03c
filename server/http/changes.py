"""`GET /v1/rooms/{room}/changes`: every log entry of a room, in order, resumable.

With `Accept: text/event-stream`, Server-Sent Events: the stored entries after `after`
(or `Last-Event-ID`, which wins: an EventSource reconnects to the same URL), then new ones
as they are committed, never before. One event per entry::

    id: SEQ
    event: update
    data: {"seq": SEQ, "ts": ..., "user": ..., "update": BASE64}

Where retention trimmed the log past the position, one `snapshot` event comes first
(`{"seq", "state"}`: the room's state at seq, from which the entries continue). A comment
line every 15 s keeps proxies from closing an idle stream. A subscriber that falls too far
behind (more queued than `--send-buffer-bytes`, or a write blocked for
`stream_write_seconds`) gets an `overflow` event if it can still take one, and the stream
ends (resume with Last-Event-ID), and so does one whose next entries a trim took before
they were sent (its resume starts with the `snapshot` event); a room deleted meanwhile
ends the stream with a `deleted` event, and the caller's token expiring (JWT `exp`, a
Grant's `expires_at`) with an `expired` event. One user or token may hold
`streams_per_caller` streams; the next gets 503 with Retry-After. The catch-up from the
log is read about 1 MiB at a time and written event by event, so a slow reader holds no
more than that.

Without that header: JSON `{"room", "last_seq", "entries": [...], "next_after", "more"}`
(and `snapshot` when trimmed), and `&wait=SECONDS` long-polls until there is an entry. A
page ends after 1000 entries or about `page_bytes` of them (at least one entry), with
`"more": true`: ask again with `after=next_after`. One caller may be reading
`page_reads_per_caller` pages (here and in `/history`) at once; the next gets 503 with
Retry-After (server/page_reads.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp import web

from engine.errors import ProtocolError
from engine.storage.records import UpdateRecord
from server.hooks import Grant
from server.http.feed_encoding import (
    ENCODE_BYTES,
    base64_text,
    encode_entries,
    entries_size,
    groups,
    sse_event,
    sse_update_pieces,
)
from server.http.keys import CONFIG, FEEDS, METRICS, PAGES, STORE
from server.http.rest import caller_of, grant_for, int_query, parse_seq
from server.rooms.feeds import Subscriber
from server.rooms.store import RoomStore

MAX_WAIT_SECONDS = 60
PAGE = 1000
CATCH_UP_BYTES = 1024 * 1024  # read at a time for an SSE catch-up (written event by event)
TRIM_RETRIES = 8  # first pages read again because a trim landed between snapshot and log


async def _start(request: web.Request) -> tuple[str, int, Grant]:
    """(room, after, grant) for a valid request, or the error the table maps."""
    room = request.match_info["room"]
    grant = await grant_for(request, room)
    info = await request.app[STORE].require(room)
    after = int_query(request, "after", 0)
    last_event = request.headers.get("Last-Event-ID")
    if last_event is not None:
        after = parse_seq(last_event, "Last-Event-ID")
    if after > info.last_seq:
        raise ProtocolError(0, f"after={after} is beyond the room's last seq {info.last_seq}")
    return room, after, grant


async def _snapshot_if_trimmed(store: RoomStore, room: str, after: int) -> dict[str, Any] | None:
    """The snapshot to start from when the log no longer holds the entry after `after`."""
    first = await store.read(store.docs.log.first_seq, room)
    if first is not None and first <= after + 1:
        return None
    loaded = await store.read(store.docs.load, room)
    if loaded.snapshot_seq <= after:
        return None
    state = await asyncio.to_thread(base64_text, loaded.updates[0])
    return {"seq": loaded.snapshot_seq, "state": state}


async def changes(request: web.Request) -> web.StreamResponse:
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await _stream(request)
    return await _poll(request)


async def _poll(request: web.Request) -> web.StreamResponse:
    room, after, grant = await _start(request)
    store = request.app[STORE]
    wait = min(int_query(request, "wait", 0), MAX_WAIT_SECONDS)
    caller = caller_of(request, grant) or f"room:{room}"
    with request.app[PAGES].admit(caller):  # may be Busy: 503
        page = await _read_page(request, room, after)
        if page is not None or not wait:
            return await _json_page(request, page or await _empty_page(store, room, after))
    await store.commits.wait(room, after, wait)  # a long-poll's wait holds no page place
    with request.app[PAGES].admit(caller):
        page = await _read_page(request, room, after)
        return await _json_page(request, page or await _empty_page(store, room, after))


_Page = tuple[dict[str, Any], list[UpdateRecord]]


async def _read_page(request: web.Request, room: str, after: int) -> _Page | None:
    """(head, entries) of the page after `after`, or None when there is nothing to send."""
    store = request.app[STORE]
    head: dict[str, Any] = {"room": room}
    page_bytes = request.app[CONFIG].limits.page_bytes
    snapshot, entries = await _first_page(store, room, after, page_bytes)
    if snapshot is not None:
        head["snapshot"] = snapshot
        after = snapshot["seq"]
    if not entries and snapshot is None:
        return None
    return await _with_position(store, head, after, entries), entries


async def _first_page(
    store: RoomStore, room: str, after: int, max_bytes: int
) -> tuple[dict[str, Any] | None, list[UpdateRecord]]:
    """The snapshot to start from (None: the log still continues `after`) and the
    entries that follow it. A trim landing between the two reads leaves the entries
    starting past it; they are read again, from the snapshot that trim wrote."""
    for _ in range(TRIM_RETRIES):
        snapshot = await _snapshot_if_trimmed(store, room, after)
        start = snapshot["seq"] if snapshot is not None else after
        entries = await store.entries(room, start, PAGE, max_bytes=max_bytes)
        if not entries or entries[0].seq == start + 1:
            break
    return snapshot, entries


async def _empty_page(store: RoomStore, room: str, after: int) -> _Page:
    return await _with_position(store, {"room": room}, after, []), []


async def _with_position(
    store: RoomStore, head: dict[str, Any], after: int, entries: list[UpdateRecord]
) -> dict[str, Any]:
    info = await store.require(head["room"])
    next_after = entries[-1].seq if entries else after
    return head | {
        "last_seq": info.last_seq,
        "next_after": next_after,
        "more": next_after < (store.commits.durable(head["room"]) or info.last_seq),
    }


async def _json_page(request: web.Request, page: _Page) -> web.StreamResponse:
    """The page's head with `"entries": [...]`, encoded in a thread about
    `ENCODE_BYTES` of entries at a time and written as it goes: a page of megabytes never
    exists as one string, nor holds the event loop while it is encoded."""
    head, entries = page
    opening = json.dumps(head)[:-1].encode() + b', "entries": ['
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(opening) + await asyncio.to_thread(entries_size, entries) + 2
    try:
        await response.prepare(request)
        await response.write(opening)
        for index, group in enumerate(groups(entries, ENCODE_BYTES)):
            await response.write(await asyncio.to_thread(encode_entries, group, not index))
        await response.write(b"]}")
        await response.write_eof()
    except ConnectionResetError:
        _cut(request)  # the caller left mid-page: nobody to answer, nothing to log
    return response


async def _stream(request: web.Request) -> web.StreamResponse:
    room, after, grant = await _start(request)
    store, hub = request.app[STORE], request.app[FEEDS]
    subscriber = await hub.subscribe(room, caller_of(request, grant))  # may be Busy: 503
    request.app[METRICS].feed_subscribers.inc()
    try:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                     "X-Accel-Buffering": "no"}
        )  # fmt: skip
        await response.prepare(request)
        out = _Out(request, response, grant.expires_at)
        page_bytes = min(request.app[CONFIG].limits.page_bytes, CATCH_UP_BYTES)
        snapshot, first = await _first_page(store, room, after, page_bytes)
        if snapshot is not None:
            await out.send(sse_event("snapshot", snapshot))
            after = snapshot["seq"]
        caught_up = await _catch_up(out, store, room, after, first)
        if caught_up is not None:
            heartbeat = request.app[CONFIG].feed_heartbeat_seconds
            await _follow(out, subscriber, caught_up, heartbeat)
    except (ConnectionResetError, ConnectionError, TimeoutError):
        _cut(request)  # gone or stalled; it resumes by Last-Event-ID
    finally:
        hub.unsubscribe(subscriber)
        request.app[METRICS].feed_subscribers.dec()
    return response


class _Out:
    """The stream's writes: each bounded in time, and none after the token expired."""

    def __init__(
        self, request: web.Request, response: web.StreamResponse, expires_at: float | None
    ) -> None:
        self.request = request
        self.response = response
        self.expires_at = expires_at
        self.write_seconds = request.app[CONFIG].limits.stream_write_seconds

    async def send(self, data: bytes) -> None:
        """Write, or raise TimeoutError when the reader has not taken it in time."""
        async with asyncio.timeout(self.write_seconds):
            await self.response.write(data)

    def expires_in(self) -> float | None:
        return None if self.expires_at is None else self.expires_at - time.time()

    async def expired(self, after: int) -> bool:
        """True (and the `expired` event sent) once the caller's token has expired."""
        left = self.expires_in()
        if left is None or left > 0:
            return False
        await self.send(sse_event("expired", {"resume_after": after}))
        return True


def _cut(request: web.Request) -> None:
    """Drop the connection now: a stalled reader must not hold the end of the response
    (aiohttp would wait for it to drain) or its buffers."""
    transport = request.transport
    if transport is not None and not transport.is_closing():
        transport.abort()


async def _catch_up(
    out: _Out, store: RoomStore, room: str, after: int, entries: list[UpdateRecord]
) -> int | None:
    """`entries` (the first page) and the stored entries after them, read a page of
    about `page_bytes` at a time and written one by one; the new position, or None when
    the stream ends here: the token expired, or a trim took the entries that came next
    (then an `overflow` event tells the client to resume, which starts from the snapshot)."""
    page_bytes = min(out.request.app[CONFIG].limits.page_bytes, CATCH_UP_BYTES)
    while entries:
        entries.reverse()
        while entries:  # each record let go once written: a stalled reader holds one
            record = entries.pop()
            if await out.expired(after):
                return None
            for piece in sse_update_pieces(record):
                await out.send(piece)
            after = record.seq
            del record
        entries = await store.entries(room, after, PAGE, max_bytes=page_bytes)
        if entries and entries[0].seq != after + 1:
            await out.send(sse_event("overflow", {"resume_after": after}))
            return None
    return after


async def _write_entries(out: _Out, entries: list[tuple[int, bytes]], after: int) -> int:
    """Write entries past `after` (skipping ones already sent); returns the new position."""
    for seq, event in entries:
        if seq > after:
            await out.send(event)
            after = seq
    return after


async def _follow(out: _Out, subscriber: Subscriber, after: int, heartbeat: float) -> None:
    while True:
        left = out.expires_in()
        try:
            async with asyncio.timeout(heartbeat if left is None else min(heartbeat, left)):
                await subscriber.wakeup.wait()
        except TimeoutError:
            if await out.expired(after):
                return
            await out.send(b": heartbeat\n\n")
            continue
        if subscriber.deleted:
            await out.send(sse_event("deleted", {"room": subscriber.room}))
            return
        if await out.expired(after):
            return
        after = await _write_entries(out, subscriber.take(), after)
        if subscriber.overflowed:
            await out.send(sse_event("overflow", {"resume_after": after}))
            return


def add_change_routes(app: web.Application) -> None:
    app.router.add_get("/v1/rooms/{room}/changes", changes)
