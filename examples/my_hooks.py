"""Hooks that plug an application in: its own sessions instead of JWTs, and its own index.

performer serve --hooks examples.my_hooks:MyHooks
"""

from __future__ import annotations

# --8<-- [start:hooks]
from server import AuthRequest, Change, Grant, Hooks, Rooms

SESSIONS = {"7f3a-session-of-alice": "alice"}  # your application's session store


class MyHooks(Hooks):
    def __init__(self) -> None:
        self.index: list[tuple[str, int, str | None]] = []  # your search index, say

    async def authenticate(self, request: AuthRequest) -> Grant | None:  # replaces the JWT check
        user = SESSIONS.get(request.cookies.get("session") or request.token or "")
        return Grant(user=user, mode="write") if user else None  # None -> 4401 / 401

    async def on_start(self, rooms: Rooms) -> None:  # rooms.edit() works from here on
        self.rooms = rooms

    async def on_change(self, change: Change) -> None:  # room, seq, ts, user, update (bytes)
        self.index.append((change.room, change.seq, change.user))


# --8<-- [end:hooks]
