"""On Redis, rooms bind their writers' client ids side by side, not one after another on
the store's writer thread: a socket carrying many rooms makes each room's first edit at
the same moment, and "saved" for the last room must not wait for every other room's
round trips to Redis first."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pycrdt import Doc, Text

from engine.rules.owners import stored_owners
from engine.storage import Append, DocStore
from engine.store import open_store
from server.metrics import Metrics
from server.rooms.guard import ClientGuard
from server.rooms.store import RoomStore
from tests.redis_process import RedisProcess

ROOMS = ("first", "second")
MEETING_SECONDS = 10.0


def edit_by(client_id: int) -> bytes:
    doc: Doc[Any] = Doc(client_id=client_id)
    doc.get("t", type=Text).insert(0, "hi")
    return bytes(doc.get_update())


@pytest.fixture
async def redis_store(redis_server: RedisProcess) -> AsyncIterator[RoomStore]:
    store = RoomStore(open_store(redis_url=redis_server.url), Metrics(), shared=True)
    await store.start()
    yield store
    await store.close()


def meet_before_binding(docs: DocStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each binding waits until the other room's binding has started too: bindings run
    one after another would never meet, and the first would give up."""
    meeting = threading.Barrier(len(ROOMS), timeout=MEETING_SECONDS)
    set_meta = docs.set_meta

    def set_meta_once_met(
        room: str, name: str, value: bytes | None, *, only_new: bool = False
    ) -> bool:
        meeting.wait()
        return set_meta(room, name, value, only_new=only_new)

    monkeypatch.setattr(docs, "set_meta", set_meta_once_met)


async def test_rooms_on_redis_bind_their_new_writers_side_by_side(
    redis_store: RoomStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for room in ROOMS:  # both rooms exist in the store, with no bindings yet
        await redis_store.commit([Append(room, edit_by(1), "server")])
    meet_before_binding(redis_store.docs, monkeypatch)
    guards = {room: ClientGuard(room, redis_store) for room in ROOMS}
    writers = {room: (f"user-{room}", 100 + index) for index, room in enumerate(ROOMS)}
    async with asyncio.timeout(2 * MEETING_SECONDS):
        await asyncio.gather(
            *(
                guards[room].prepare([(user, edit_by(client))], {})
                for room, (user, client) in writers.items()
            )
        )
    for room, (user, client) in writers.items():
        assert stored_owners(redis_store.docs, room) == {client: user}
        assert guards[room].owners.known == {client: user}
