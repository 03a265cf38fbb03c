"""`GET /v1/rooms?detail=1`: what an operator looks at beside the counters.

Who is connected (user and mode per connection) and the last edit (time and user) of
each room. Opt-in, because the last edit is one store read per room: a script that
only wants names pays nothing for it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.rules.refusals import refusal_count
from server.http.keys import REGISTRY, STORE
from server.rooms.actor import RoomActor


def client_kind(user_agent: str) -> str:
    """What a y-websocket connection most likely is, from its User-Agent (a guess: any
    client may send any header): the Python SDK (aiohttp), a browser, or another client."""
    if "aiohttp" in user_agent:
        return "python-sdk"
    if user_agent.startswith("Mozilla/"):
        return "browser"
    return "y-websocket"


def connections_of(actor: RoomActor | None) -> list[dict[str, Any]]:
    """One entry per open connection of a loaded room: user (None when anonymous),
    mode (read/write), kind (see `client_kind`; other routes set their own)."""
    if actor is None:
        return []
    return [
        {
            "user": peer.user,
            "mode": "write" if peer.can_write else "read",
            "kind": getattr(peer, "client_kind", "y-websocket"),
        }
        for peer in list(actor.peers.values())
        if not peer.closed
    ]


async def add_details(
    app: web.Application, rooms: list[dict[str, Any]], consumers: list[str]
) -> None:
    """Adds `users` (connected user names, sorted, anonymous ones left out), `last_ts`
    and `last_user` (None for a room without edits), `parked` (the consumers among
    `consumers` whose deliveries for the room are parked) and `refusals` (how many of its
    edits a rule or `Hooks.check` partly undid) to each room of a listing."""
    loaded = app[REGISTRY].rooms
    store = app[STORE]
    for room in rooms:
        room["parked"] = [
            name
            for name in consumers
            if await store.read(store.docs.get_meta, room["name"], f"parked:{name}") is not None
        ]
        name = room["name"]
        room["refusals"] = await store.read(refusal_count, store.docs, name)
        people = connections_of(loaded.get(name))
        room["users"] = sorted({p["user"] for p in people if p["user"]})
        room["last_ts"] = None
        room["last_user"] = None
        last_seq = int(room["last_seq"])
        if last_seq > 0:
            entries = await store.history(name, last_seq - 1, 1)
            if entries:
                room["last_ts"] = entries[-1].ts
                room["last_user"] = entries[-1].user
