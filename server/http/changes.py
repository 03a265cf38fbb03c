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

Pages here and in `/history`, and an SSE catch-up's events, count against the caller's
`page_bytes_per_second` (server/page_rate.py): just past it a page starts after a pause
of under a second, further past it the request gets 503 with Retry-After, and an SSE
catch-up already answered pauses between its pages instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from engine.storage.records import UpdateRecord
from server.hooks import Grant
from server.http.feed_encoding import (
    page_chunks,
    sse_event,
    sse_update_pieces,
)
from server.http.feed_page import PAGE, JsonPage, check_after, first_records, read_json_page
from server.http.keys import CONFIG, FEEDS, METRICS, PAGE_RATE, PAGES, STORE
from server.http.rest import caller_of, grant_for, int_query, parse_seq
from server.rooms.feeds import Subscriber
from server.rooms.store import RoomStore

MAX_WAIT_SECONDS = 60
CATCH_UP_BYTES = 1024 * 1024  # read at a time for an SSE catch-up (written event by event)


async def _start(request: web.Request) -> tuple[str, int, Grant]:
    """(room, after, grant) for a valid request, or the error the table maps."""
    room, after, grant = await _poll_start(request)
    await request.app[STORE].read(check_after, request.app[STORE].docs, room, after)
    return room, after, grant


async def _poll_start(request: web.Request) -> tuple[str, int, Grant]:
    """`_start` but for the room's counters, which a JSON page's one read checks."""
    room = request.match_info["room"]
    grant = await grant_for(request, room)
    after = int_query(request, "after", 0)
    last_event = request.headers.get("Last-Event-ID")
    if last_event is not None:
        after = parse_seq(last_event, "Last-Event-ID")
    return room, after, grant


async def changes(request: web.Request) -> web.StreamResponse:
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await _stream(request)
    return await _poll(request)


async def _poll(request: web.Request) -> web.StreamResponse:
    room, after, grant = await _poll_start(request)
    store = request.app[STORE]
    wait = min(int_query(request, "wait", 0), MAX_WAIT_SECONDS)
    caller = caller_of(request, grant) or f"room:{room}"
    with request.app[PAGES].admit(caller):  # may be Busy: 503
        await request.app[PAGE_RATE].admit(caller)  # may pause, or be Busy: 503
        page = await _read_page(request, room, after)
        if page.entries or page.snapshot is not None or not wait:
            return await _json_page(request, caller, after, page)
    await store.commits.wait(room, after, wait)  # a long-poll's wait holds no page place
    with request.app[PAGES].admit(caller):
        return await _json_page(request, caller, after, await _read_page(request, room, after))


async def _read_page(request: web.Request, room: str, after: int) -> JsonPage:
    """The page after `after`, read and encoded in one thread hop (server/http/feed_page.py)."""
    store = request.app[STORE]
    page_bytes = request.app[CONFIG].limits.page_bytes
    durable = store.commits.durable(room)
    return await store.read(read_json_page, store.docs, room, after, durable, page_bytes)


async def _json_page(
    request: web.Request, caller: str, after: int, page: JsonPage
) -> web.StreamResponse:
    """The page's head with `"entries": [...]`, written with its Content-Length entry
    by entry (the entries were encoded in the thread; aiohttp joins HTTP chunks, on
    Python before 3.12.9, into one more copy of each on the event loop), and charged
    to `caller`'s bytes per second."""
    room = request.match_info["room"]
    head: dict[str, Any] = {"room": room}
    if page.snapshot is not None:
        head["snapshot"] = page.snapshot
        after = page.snapshot["seq"]
    next_after = page.entries[-1][0] if page.entries else after
    durable = request.app[STORE].commits.durable(room)
    head |= {
        "last_seq": page.last_seq,
        "next_after": next_after,
        "more": next_after < (durable or page.last_seq),
    }
    chunks = page_chunks(head, [entry for _, entry in page.entries])
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = sum(map(len, chunks))
    request.app[PAGE_RATE].charge_page(caller, response.content_length)
    try:
        await response.prepare(request)
        for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        _cut(request)  # the caller left mid-page: nobody to answer, nothing to log
    return response


async def _stream(request: web.Request) -> web.StreamResponse:
    room, after, grant = await _start(request)
    store, hub = request.app[STORE], request.app[FEEDS]
    caller = caller_of(request, grant)
    await request.app[PAGE_RATE].admit(caller or f"room:{room}")  # may be Busy: 503
    subscriber = await hub.subscribe(room, caller)  # may be Busy: 503
    request.app[METRICS].feed_subscribers.inc()
    try:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                     "X-Accel-Buffering": "no"}
        )  # fmt: skip
        await response.prepare(request)
        out = _Out(request, response, grant.expires_at, caller or f"room:{room}")
        page_bytes = min(request.app[CONFIG].limits.page_bytes, CATCH_UP_BYTES)
        durable = store.commits.durable(room)
        snapshot, first = await store.read(
            first_records, store.docs, room, after, durable, page_bytes
        )
        if snapshot is not None:
            await out.send_caught_up(sse_event("snapshot", snapshot))
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
    """The stream's writes: each bounded in time, and none after the token expired;
    the catch-up's charged to `caller`'s bytes per second (server/page_rate.py)."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        expires_at: float | None,
        caller: str,
    ) -> None:
        self.request = request
        self.response = response
        self.expires_at = expires_at
        self.caller = caller
        self.rate = request.app[PAGE_RATE]
        self.write_seconds = request.app[CONFIG].limits.stream_write_seconds

    async def send(self, data: bytes) -> None:
        """Write, or raise TimeoutError when the reader has not taken it in time."""
        async with asyncio.timeout(self.write_seconds):
            await self.response.write(data)

    async def send_caught_up(self, data: bytes) -> None:
        """`send` an event read from the log, charged like a page's bytes."""
        self.rate.charge(self.caller, len(data))
        await self.send(data)

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
                await out.send_caught_up(piece)
            after = record.seq
            del record
        await out.rate.pace(out.caller)  # past its bytes per second: the next page waits
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
