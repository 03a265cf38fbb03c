"""`connect_many`: many rooms over one socket (the Hocuspocus dialect) against a real
server process; each room has its own replica and status, and "saved" means on disk."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from pycrdt import Array, Text

from engine import hocuspocus_protocol as hp
from engine.client import AuthError, Client, connect, connect_many
from tests.client.conftest import LiveServer, StartServer, make_token
from tests.client.helpers import DEADLINE, items, server_doc
from tests.engine.helpers import recording_doc

SECRET = "multiplex-secret-long-enough-for-hs256-keys"


def ws_base(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://")


async def test_fifty_rooms_over_one_socket_sync_save_and_meet_other_clients(
    live_server: LiveServer,
) -> None:
    names = [f"mx-{i}" for i in range(50)]
    async with connect(live_server.ws_url, "mx-7", store_path=None) as other:
        other.doc.get("items", type=Array).append("from y-websocket")
        await asyncio.wait_for(other.saved(), DEADLINE)
        async with connect_many(ws_base(live_server), names, store_path=None) as rooms:
            async with asyncio.timeout(DEADLINE):
                await asyncio.gather(*(rooms[name].synced() for name in names))
            assert items(rooms["mx-7"].doc) == ["from y-websocket"]
            for name in names:
                rooms[name].doc.get("items", type=Array).append(f"in {name}")
            async with asyncio.timeout(DEADLINE):
                await asyncio.gather(*(rooms[name].saved() for name in names))
            assert {rooms[name].status for name in names} == {"saved"}
            await wait_items(other, ["from y-websocket", "in mx-7"])
    for name in ("mx-0", "mx-49"):
        assert items(await server_doc(live_server.url, name)) == [f"in {name}"]


async def test_each_room_has_its_own_auth(start_server: StartServer) -> None:
    server = start_server("--auth-secret", SECRET)
    token = make_token(SECRET, "team-*")
    async with connect_many(ws_base(server), ["team-a", "private"], token=token,
                            store_path=None) as rooms:  # fmt: skip
        await asyncio.wait_for(rooms["team-a"].synced(), DEADLINE)
        with pytest.raises(AuthError):
            await asyncio.wait_for(rooms["private"].synced(), DEADLINE)
        rooms["team-a"].doc.get("items", type=Array).append(1)
        await asyncio.wait_for(rooms["team-a"].saved(), DEADLINE)


async def wait_items(client: Client, expected: list[str]) -> None:
    async with asyncio.timeout(DEADLINE):
        while sorted(items(client.doc)) != sorted(expected):
            await asyncio.sleep(0.05)


async def test_a_room_that_missed_an_update_resyncs_over_the_shared_socket(
    live_server: LiveServer,
) -> None:
    author, made = recording_doc(client_id=78)
    author.get("t", type=Text).insert(0, "lost")
    author.get("t", type=Text).insert(4, " and found")
    async with connect_many(ws_base(live_server), ["gap", "calm"], store_path=None) as rooms:
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(rooms["gap"].synced(), rooms["calm"].synced())
        room = rooms["gap"]
        receive = room.receive
        dropped: list[hp.Envelope] = []

        def drop_first_update(envelope: hp.Envelope) -> list[bytes]:
            if not dropped and envelope.kind == hp.SYNC:
                dropped.append(envelope)
                return []
            return receive(envelope)

        room.receive = drop_first_update  # type: ignore[method-assign]
        async with aiohttp.ClientSession() as http:
            for update in made:
                async with http.post(f"{live_server.url}/v1/rooms/gap/update", data=update) as r:
                    assert r.status == 200
        async with asyncio.timeout(DEADLINE):
            while str(room.doc.get("t", type=Text)) != "lost and found":
                await asyncio.sleep(0.05)
        assert dropped and room.status in ("synced", "saved")
