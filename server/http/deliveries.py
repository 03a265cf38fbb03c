"""A room's deliveries as operators see them, and the retry the console's button sends.

    GET  /v1/rooms/{room}/deliveries        each consumer (webhook, hooks): cursor, lag, parked
    POST /v1/rooms/{room}/deliveries/retry  unpark the room; delivery resumes from its cursor

Both read and write the same stored keys as server/delivery.py and `performer webhooks`,
so a running server's scan resumes an unparked room within seconds, on any process
sharing the store. Admin only (server/http/admin.py): a parked record's reason describes
the receiver.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from engine.names import validate_room_name
from server.change_hooks import ChangeHookConsumer
from server.delivery import Parked, unpark
from server.http.admin import console_grant
from server.http.guard import check_origin, require_content_type
from server.http.keys import CONFIG, HOOKS, STORE
from server.webhooks import WebhookConsumer


def consumers(app: web.Application) -> list[str]:
    """The consumers this server runs (their names key the stored cursors)."""
    names = []
    if app[CONFIG].webhook_url:
        names.append(WebhookConsumer.name)
    if app[HOOKS].watches_changes:
        names.append(ChangeHookConsumer.name)
    return names


async def room_deliveries(request: web.Request) -> web.Response:
    await console_grant(request)
    room = request.match_info["room"]
    validate_room_name(room)
    store = request.app[STORE]
    info = await store.require(room)
    states: list[dict[str, Any]] = []
    for name in consumers(request.app):
        stored = await store.read(store.docs.get_meta, room, f"cursor:{name}")
        cursor = int(stored or b"0")
        raw = await store.read(store.docs.get_meta, room, f"parked:{name}")
        parked = None if raw is None else Parked.decode(room, raw)
        states.append(
            {
                "consumer": name,
                "cursor": cursor,
                "lag": max(0, info.last_seq - cursor),
                "parked": None
                if parked is None
                else {
                    "from_seq": parked.from_seq,
                    "to_seq": parked.to_seq,
                    "attempts": parked.attempts,
                    "error": parked.error,
                },
            }
        )
    return web.json_response(
        {"room": room, "last_seq": info.last_seq, "deliveries": states}, dumps=json.dumps
    )


async def retry_deliveries(request: web.Request) -> web.Response:
    """Unpark the room for every consumer; `retried` names those that were parked."""
    check_origin(request, request.app[CONFIG].allowed_origins)
    await console_grant(request)
    require_content_type(request, "application/json")
    room = request.match_info["room"]
    validate_room_name(room)
    store = request.app[STORE]
    await store.require(room)
    retried = [
        name for name in consumers(request.app) if await store.write(unpark, store.docs, name, room)
    ]
    return web.json_response({"room": room, "retried": retried})


def add_delivery_routes(app: web.Application) -> None:
    app.router.add_get("/v1/rooms/{room}/deliveries", room_deliveries)
    app.router.add_post("/v1/rooms/{room}/deliveries/retry", retry_deliveries)
