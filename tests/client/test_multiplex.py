"""`connect_many`: many rooms over one socket (the Hocuspocus dialect) against a real
server process; each room has its own replica and status, and "saved" means on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from pycrdt import Array, Text

from engine import hocuspocus_protocol as hp
from engine.client import AuthError, Client, connect, connect_many
from tests.client.conftest import LiveServer, StartServer, make_token
from tests.client.helpers import DEADLINE, items, server_doc
from tests.engine.helpers import recording_doc
from tests.redis_process import RedisProcess

SECRET = "multiplex-secret-long-enough-for-hs256-keys"


def ws_base(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://")


async def test_fifty_rooms_over_one_socket_sync_save_and_meet_other_clients(
    live_server: LiveServer,
) -> None:
    names = [f"mx-{i}" for i in range(50)]
    await rooms_meet_a_client(ws_base(live_server), live_server.ws_url, names, "mx-7")
    for name in ("mx-0", "mx-49"):
        assert items(await server_doc(live_server.url, name)) == [f"in {name}"]


async def test_rooms_over_one_socket_meet_clients_of_another_process_through_redis(
    redis_server: RedisProcess, start_server: StartServer, tmp_path: Path
) -> None:
    """The multiplexed socket on process A, a y-websocket client on process B: every
    room converges both ways, and "saved" on A means B's reads see it. (The two
    processes start side by side: starting is most of this test's time.)"""
    a, b = await asyncio.gather(
        *(
            asyncio.to_thread(start_server, "--redis", redis_server.url, data_dir=tmp_path / node)
            for node in ("a", "b")
        )
    )
    names = [f"rx-{i}" for i in range(20)]
    await rooms_meet_a_client(ws_base(a), b.ws_url, names, "rx-3")
    for name in ("rx-0", "rx-19"):
        assert items(await server_doc(b.url, name)) == [f"in {name}"]


async def rooms_meet_a_client(many_url: str, other_url: str, names: list[str], met: str) -> None:
    """A y-websocket client at `other_url` writes to room `met`; then one socket at
    `many_url` carries every room of `names`: all sync (`met` with the client's edit),
    each gets an edit, all are saved, and the client sees the edit made in `met`."""
    async with connect(other_url, met, store_path=None) as other:
        other.doc.get("items", type=Array).append("from y-websocket")
        await asyncio.wait_for(other.saved(), DEADLINE)
        async with connect_many(many_url, names, store_path=None) as rooms:
            async with asyncio.timeout(DEADLINE):
                await asyncio.gather(*(rooms[name].synced() for name in names))
            assert items(rooms[met].doc) == ["from y-websocket"]
            for name in names:
                rooms[name].doc.get("items", type=Array).append(f"in {name}")
            async with asyncio.timeout(DEADLINE):
                await asyncio.gather(*(rooms[name].saved() for name in names))
            assert {rooms[name].status for name in names} == {"saved"}
            await wait_items(other, ["from y-websocket", f"in {met}"])


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
