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
behind gets an `overflow` event and the stream ends (resume with Last-Event-ID); a room
deleted meanwhile ends the stream with a `deleted` event.

Without that header: JSON `{"room", "last_seq", "entries": [...]}` (same fields, and
`snapshot` when trimmed), and `&wait=SECONDS` long-polls until there is an entry.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from aiohttp import web

from engine.errors import ProtocolError
from engine.storage.records import UpdateRecord
from server.http.keys import CONFIG, FEEDS, METRICS, STORE
from server.http.rest import grant_for, int_query, parse_seq
from server.rooms.feeds import Subscriber
from server.rooms.store import RoomStore

MAX_WAIT_SECONDS = 60
PAGE = 1000


def entry_json(record: UpdateRecord) -> dict[str, Any]:
    return {
        "seq": record.seq,
        "ts": record.ts,
        "user": record.user,
        "update": base64.b64encode(record.update).decode(),
    }


async def _start(request: web.Request) -> tuple[str, int, int]:
    """(room, after, last_seq) for a valid request, or the error the table maps."""
    room = request.match_info["room"]
    await grant_for(request, room)
    info = await request.app[STORE].require(room)
    after = int_query(request, "after", 0)
    last_event = request.headers.get("Last-Event-ID")
    if last_event is not None:
        after = parse_seq(last_event, "Last-Event-ID")
    if after > info.last_seq:
        raise ProtocolError(0, f"after={after} is beyond the room's last seq {info.last_seq}")
    return room, after, info.last_seq


async def _snapshot_if_trimmed(store: RoomStore, room: str, after: int) -> dict[str, Any] | None:
    """The snapshot to start from when the log no longer holds the entry after `after`."""
    first = await store.read(store.docs.log.first_seq, room)
    if first is not None and first <= after + 1:
        return None
    loaded = await store.read(store.docs.load, room)
    if loaded.snapshot_seq <= after:
        return None
    state = loaded.updates[0]
    return {"seq": loaded.snapshot_seq, "state": base64.b64encode(state).decode()}


async def changes(request: web.Request) -> web.StreamResponse:
    if "text/event-stream" in request.headers.get("Accept", ""):
        return await _stream(request)
    return await _poll(request)


async def _poll(request: web.Request) -> web.Response:
    room, after, _ = await _start(request)
    store = request.app[STORE]
    wait = min(int_query(request, "wait", 0), MAX_WAIT_SECONDS)
    body: dict[str, Any] = {"room": room}
    snapshot = await _snapshot_if_trimmed(store, room, after)
    if snapshot is not None:
        body["snapshot"] = snapshot
        after = snapshot["seq"]
    entries = await store.entries(room, after, PAGE)
    if not entries and wait and snapshot is None:
        await store.commits.wait(room, after, wait)
        entries = await store.entries(room, after, PAGE)
    info = await store.require(room)
    body |= {"last_seq": info.last_seq, "entries": [entry_json(e) for e in entries]}
    return web.json_response(body)


def _event(kind: str, data: dict[str, Any], event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


async def _stream(request: web.Request) -> web.StreamResponse:
    room, after, _ = await _start(request)
    store, hub = request.app[STORE], request.app[FEEDS]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                 "X-Accel-Buffering": "no"}
    )  # fmt: skip
    await response.prepare(request)
    subscriber = await hub.subscribe(room)
    request.app[METRICS].feed_subscribers.inc()
    try:
        snapshot = await _snapshot_if_trimmed(store, room, after)
        if snapshot is not None:
            await response.write(_event("snapshot", snapshot))
            after = snapshot["seq"]
        while entries := await store.entries(room, after, PAGE):  # catch up from the log
            encoded = [(record.seq, sse_update(record)) for record in entries]
            after = await _write_entries(response, encoded, after)
        heartbeat = request.app[CONFIG].feed_heartbeat_seconds
        await _follow(response, subscriber, after, heartbeat)
    except (ConnectionResetError, ConnectionError):
        pass  # the subscriber went away; it resumes by Last-Event-ID
    finally:
        hub.unsubscribe(subscriber)
        request.app[METRICS].feed_subscribers.dec()
    return response


def sse_update(record: UpdateRecord) -> bytes:
    """One log entry as the SSE event every subscriber of the room receives."""
    return _event("update", entry_json(record), record.seq)


async def _write_entries(
    response: web.StreamResponse, entries: list[tuple[int, bytes]], after: int
) -> int:
    """Write entries past `after` (skipping ones already sent); returns the new position."""
    fresh = [event for seq, event in entries if seq > after]
    if fresh:
        await response.write(b"".join(fresh))
        after = max(seq for seq, _ in entries)
    return after


async def _follow(
    response: web.StreamResponse, subscriber: Subscriber, after: int, heartbeat: float
) -> None:
    while True:
        try:
            async with asyncio.timeout(heartbeat):
                await subscriber.wakeup.wait()
        except TimeoutError:
            await response.write(b": heartbeat\n\n")
            continue
        if subscriber.deleted:
            await response.write(_event("deleted", {"room": subscriber.room}))
            return
        after = await _write_entries(response, subscriber.take(), after)
        if subscriber.overflowed:
            await response.write(_event("overflow", {"resume_after": after}))
            return


def add_change_routes(app: web.Application) -> None:
    app.router.add_get("/v1/rooms/{room}/changes", changes)
