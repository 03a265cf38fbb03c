"""REST routes: health, metrics, rooms, state (and time travel), updates, history.

One middleware maps the engine's exception tree onto HTTP statuses, so handlers raise
and never build error responses themselves.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from engine.errors import (
    Busy,
    EngineError,
    PermissionDenied,
    ProtocolError,
    RoomNotFound,
    meaning_of,
)
from engine.names import validate_room_name
from server.auth import Authorizer, bearer_token, room_matches
from server.hooks import Grant
from server.http.deliveries import consumers
from server.http.guard import auth_request, check_origin, require_content_type
from server.http.history import history_page
from server.http.keys import AUTHORIZER, CONFIG, METRICS, PAGE_RATE, PAGES, REGISTRY, STORE
from server.http.room_stats import add_details

log = logging.getLogger(__name__)

MAX_HISTORY_LIMIT = 1000
LABEL_PREFIX = "label:"


@web.middleware
async def engine_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every EngineError becomes the status the one error table gives it (a `Busy` one
    also says when to come back, in `Retry-After`); a client that left mid-request is
    logged at INFO, not as a server error."""
    try:
        return await handler(request)
    except Busy as exc:
        log.info("%s %s: busy: %s", request.method, request.path, exc)
        headers = {"Retry-After": str(exc.retry_after)}
        return web.json_response({"error": str(exc)}, status=503, headers=headers)
    except EngineError as exc:
        status = meaning_of(exc).http or 500
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc)
        return web.json_response({"error": str(exc)}, status=status)
    except ConnectionResetError as exc:
        # The client left mid-request (its body half sent): nothing was applied and
        # nobody is there to answer. Not a server error, so no traceback at ERROR.
        log.info("%s %s: the client left: %s", request.method, request.path, exc)
        raise web.HTTPBadRequest(text="the connection closed before the request was read") from None


async def grant_for(request: web.Request, room: str, *, write: bool = False) -> Grant:
    """The caller's grant for `room` (token from Authorization: Bearer or ?token=). A
    write from a browser page must come from an allowed origin (server/http/guard.py)."""
    validate_room_name(room)
    if write:
        check_origin(request, request.app[CONFIG].allowed_origins)
    token = bearer_token(request.headers.get("Authorization"), request.query.get("token"))
    grant = await request.app[AUTHORIZER].check(token, room, auth_request(request, token, room))
    if write and not grant.can_write:
        raise PermissionDenied("read-only token")
    return grant


MAX_SEQ_DIGITS = 19  # every seq fits in a signed 64-bit integer


def parse_seq(raw: str, what: str) -> int:
    """A non-negative integer written in ASCII digits (`²` and `٣` are digits to
    `str.isdigit`, not to `int`), short enough to be a seq.

    Raises:
        ProtocolError: naming `what` (e.g. "at=", "Last-Event-ID") and the rule.
    """
    if not raw.isascii() or not raw.isdigit():
        raise ProtocolError(0, f"{what} {_shown(raw)} is not a seq (an integer >= 0)")
    if len(raw) > MAX_SEQ_DIGITS:
        raise ProtocolError(0, f"{what} has {len(raw)} digits; a seq has at most {MAX_SEQ_DIGITS}")
    return int(raw)


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:40] + "...")


def caller_of(request: web.Request, grant: Grant) -> str | None:
    """Who the caller is, for per-caller limits: its user, else its token. None for an
    anonymous caller of an open server: addresses would not do (behind a proxy every
    caller has the proxy's), so there only the per-room and queue limits apply."""
    if grant.user:
        return f"user:{grant.user}"
    token = bearer_token(request.headers.get("Authorization"), request.query.get("token"))
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return None


def int_query(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    return parse_seq(raw, f"query parameter {name}=")


async def healthz(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "status": "ok",
            "rooms_loaded": len(registry.rooms),
            "connections": sum(len(actor.peers) for actor in registry.rooms.values()),
            "auth": "open" if request.app[AUTHORIZER].open else "token",
        }
    )


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})


async def list_rooms(request: web.Request) -> web.Response:
    """Rooms and stats; with auth on, only the rooms the token's pattern covers.
    `?detail=1` adds who is connected and the last edit."""
    authorizer: Authorizer = request.app[AUTHORIZER]
    pattern = "*"
    if not authorizer.open:
        token = bearer_token(request.headers.get("Authorization"), request.query.get("token"))
        if authorizer.hooks is not None:  # the application decides who may list
            await authorizer.check(token, "*", auth_request(request, token, "*"))
        pattern = authorizer.pattern(token)
    loaded = request.app[REGISTRY].rooms
    metas = await request.app[STORE].rooms()
    rooms = [
        {
            "name": m.name,
            "last_seq": m.last_seq,
            "log_bytes": m.log_bytes,
            "created": m.created,
            "loaded": m.name in loaded,
            "connections": len(loaded[m.name].peers) if m.name in loaded else 0,
        }
        for m in metas
        if room_matches(pattern, m.name)
    ]
    if request.query.get("detail") == "1":  # connected users, last edit (server/http/room_stats.py)
        await add_details(request.app, rooms, consumers(request.app))
    return web.json_response({"rooms": rooms})


async def resolve_at(request: web.Request, room: str, last_seq: int) -> int:
    """`?at=SEQ` or `?at=NAME` (a named version) -> a seq (default: the last one)."""
    raw = request.query.get("at")
    if raw is None:
        return last_seq
    if raw.isdigit():
        return min(parse_seq(raw, "at="), last_seq)
    if not raw or raw.lstrip("-+").replace(".", "", 1).isdigit():
        raise ProtocolError(
            0, f"at={_shown(raw)} is neither a seq (an integer >= 0) nor a version name"
        )
    store = request.app[STORE]
    seq = await store.read(store.docs.get_meta, room, LABEL_PREFIX + raw)
    if seq is None:
        raise RoomNotFound(f"room {room!r} has no version named {raw!r}")
    return int(seq)


async def state_for(request: web.Request) -> tuple[str, int, bytes]:
    """(room, seq, state as one Yjs update) for a read request with an optional `at=`."""
    room = request.match_info["room"]
    await grant_for(request, room)
    store = request.app[STORE]
    info = await store.require(room)
    at = await resolve_at(request, room, info.last_seq)
    return room, at, await store.state_at(room, at)


async def room_state(request: web.Request) -> web.Response:
    """The durable state as one Yjs update; `?at=SEQ|NAME` rewinds to that log position."""
    _, at, state = await state_for(request)
    return web.Response(
        body=state,
        content_type="application/octet-stream",
        headers={"X-Performer-Seq": str(at)},
    )


async def post_update(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    grant = await grant_for(request, room, write=True)
    require_content_type(request, "application/octet-stream")
    body = await request.read()
    actor = await request.app[REGISTRY].acquire(room)
    seq, rejected = await actor.post_update_judged(body, grant.user)
    if rejected is not None:  # committed with the undo of its forbidden part: still 200
        return web.json_response({"seq": seq, "rejected": rejected})
    return web.json_response({"seq": seq})


async def history(request: web.Request) -> web.Response:
    """The audit trail, a page at a time. Counted against the caller's page reads
    (server/page_reads.py) and bytes per second (server/page_rate.py), and read and
    encoded in one hop off the event loop (server/http/history.py)."""
    room = request.match_info["room"]
    grant = await grant_for(request, room)
    after = int_query(request, "after", 0)
    limit = min(int_query(request, "limit", 100), MAX_HISTORY_LIMIT)
    store, rate = request.app[STORE], request.app[PAGE_RATE]
    page_bytes = request.app[CONFIG].limits.page_bytes
    caller = caller_of(request, grant) or f"room:{room}"
    with request.app[PAGES].admit(caller):
        await rate.admit(caller)  # may pause, or be Busy: 503
        body = await store.read(history_page, store.docs, room, after, limit, page_bytes)
    rate.charge_page(caller, len(body))
    return web.Response(body=body, content_type="application/json")


async def delete_room(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    await grant_for(request, room, write=True)
    if not await request.app[REGISTRY].delete(room):
        raise RoomNotFound(f"room {room!r} does not exist")
    return web.json_response({"deleted": room})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/rooms", list_rooms)
    app.router.add_get("/v1/rooms/{room}/state", room_state)
    app.router.add_post("/v1/rooms/{room}/update", post_update)
    app.router.add_get("/v1/rooms/{room}/history", history)
    app.router.add_delete("/v1/rooms/{room}", delete_room)
