"""REST routes: health, metrics, rooms, state (and time travel), updates, history.

One middleware maps the engine's exception tree onto HTTP statuses, so handlers raise
and never build error responses themselves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from engine.errors import (
    EngineError,
    ProtocolError,
    QuotaExceeded,
    RoomNameError,
    RoomNotFound,
    StorageError,
    UpdateRejected,
)
from engine.names import validate_room_name
from server.auth import AuthError, Authorizer, Grant, RoomForbidden, bearer_token, room_matches
from server.http.keys import AUTHORIZER, METRICS, REGISTRY, STORE
from server.rooms.actor import RoomClosed
from server.rooms.registry import RoomUnavailable

log = logging.getLogger(__name__)

MAX_HISTORY_LIMIT = 1000
_STATUS: list[tuple[type[EngineError], int]] = [
    (AuthError, 401),
    (RoomForbidden, 403),
    (RoomNotFound, 404),
    (QuotaExceeded, 413),
    (RoomNameError, 400),
    (ProtocolError, 400),
    (UpdateRejected, 400),
    (RoomUnavailable, 503),
    (RoomClosed, 503),
    (StorageError, 503),
]


def status_for(exc: EngineError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


@web.middleware
async def engine_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except EngineError as exc:
        status = status_for(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc)
        return web.json_response({"error": str(exc)}, status=status)


def _grant(request: web.Request, room: str, *, write: bool = False) -> Grant:
    validate_room_name(room)
    token = bearer_token(request.headers.get("Authorization"), request.query.get("token"))
    grant = request.app[AUTHORIZER].grant(token, room)
    if write and not grant.can_write:
        raise RoomForbidden("read-only token")
    return grant


def _int_query(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ProtocolError(0, f"query parameter {name}={raw!r} is not an integer") from exc
    if value < 0:
        raise ProtocolError(0, f"query parameter {name} must be >= 0")
    return value


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
    """Rooms and stats; with auth on, only the rooms the token's pattern covers."""
    authorizer: Authorizer = request.app[AUTHORIZER]
    pattern = "*"
    if not authorizer.open:
        token = bearer_token(request.headers.get("Authorization"), request.query.get("token"))
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
    return web.json_response({"rooms": rooms})


async def room_state(request: web.Request) -> web.Response:
    """The durable state as one Yjs update; `?at=SEQ` rewinds to that log position."""
    room = request.match_info["room"]
    _grant(request, room)
    store = request.app[STORE]
    meta = await store.info(room)
    if meta is None:
        raise RoomNotFound(f"room {room!r} does not exist")
    at = _int_query(request, "at", meta.last_seq)
    state = await store.state_at(room, at)
    return web.Response(
        body=state,
        content_type="application/octet-stream",
        headers={"X-Performer-Seq": str(min(at, meta.last_seq))},
    )


async def post_update(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    grant = _grant(request, room, write=True)
    body = await request.read()
    actor = await request.app[REGISTRY].acquire(room)
    seq = await actor.post_update(body, grant.user)
    return web.json_response({"seq": seq})


async def history(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    _grant(request, room)
    after = _int_query(request, "after", 0)
    limit = min(_int_query(request, "limit", 100), MAX_HISTORY_LIMIT)
    store = request.app[STORE]
    entries = await store.history(room, after, limit)
    meta = await store.info(room)
    return web.json_response(
        {
            "room": room,
            "last_seq": meta.last_seq if meta else 0,
            "entries": [
                {
                    "seq": e.seq,
                    "ts": e.ts,
                    "user": e.user,
                    "bytes": e.bytes,
                    "clients": list(e.clients),
                    **({"restore_of": e.restore_of} if e.restore_of is not None else {}),
                }
                for e in entries
            ],
        },
        dumps=json.dumps,
    )


async def delete_room(request: web.Request) -> web.Response:
    room = request.match_info["room"]
    _grant(request, room, write=True)
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
