"""Client ids belong to users: structs under a client id another user introduced are
refused (close 4403, nothing applied, stored or relayed), on both backends, across
restarts and across server processes sharing Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Doc, Text

from engine.protocol import AwarenessEntry, AwarenessUpdate, SyncStep2, Update, encode_awareness
from harness.wire import WireClient, connect, edit
from server.auth import issue_token
from tests.conftest import ServerProcess, StartServer
from tests.redis_process import RedisProcess

SECRET = "rules-secret-" + "0123456789abcdef" * 4
ROOM = "ids"

Backend = Callable[..., ServerProcess]


def token(user: str) -> str:
    return issue_token(SECRET, ROOM, user=user)


@pytest.fixture(params=["lmdb", "redis"])
def start(request: pytest.FixtureRequest, server_factory: StartServer, tmp_path: Path) -> Backend:
    """Start a secured server on the backend under test (same store for every call)."""
    if request.param == "lmdb":
        data = tmp_path / "shared-data"
        return lambda: server_factory("--auth-secret", SECRET, data_dir=data)
    redis: RedisProcess = request.getfixturevalue("redis_server")
    return lambda: server_factory("--auth-secret", SECRET, "--redis", redis.url)


async def durable_text(base_url: str, room: str) -> str:
    """The room's text as the server has it on disk (`GET .../state`)."""
    headers = {"Authorization": f"Bearer {token('reader')}"}
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{base_url}/v1/rooms/{room}/state", headers=headers)
        assert response.status == 200, await response.text()
        doc: Doc[Any] = Doc()
        doc.apply_update(await response.read())
        return str(doc.get("t", type=Text))


def forged(client_id: int, state: bytes, text: str) -> bytes:
    """An update under `client_id`, continuing from the room's `state`."""
    doc: Doc[Any] = Doc(client_id=client_id)
    doc.apply_update(state)
    return edit(doc, text)


async def alice_writes(server: ServerProcess, text: str) -> WireClient:
    """Returns alice's (closed) client, whose doc holds what she wrote."""
    async with connect(server.url, ROOM, token=token("alice"), ack=True) as alice:
        await alice.sync()
        await alice.send(Update(edit(alice.doc, text)))
        await alice.wait_saved(1)
    return alice


async def expect_refused(server: ServerProcess, user: str, update: bytes) -> None:
    async with connect(server.url, ROOM, token=token(user)) as mallory:
        await mallory.sync()
        await mallory.send(Update(update))
        assert await mallory.wait_closed() == 4403
        assert "client id" in mallory.close_reason


async def test_structs_under_another_users_client_id_are_refused(start: Backend) -> None:
    server = start()
    alice = await alice_writes(server, "hello")
    state = bytes(alice.doc.get_update())
    async with connect(server.url, ROOM, token=token("bob")) as watcher:
        await watcher.sync()
        await expect_refused(server, "mallory", forged(alice.doc.client_id, state, " forged"))
        # the room carries on: alice's next edit (same client id) goes through and is
        # the first thing the watcher receives; the forged one was never relayed
        async with connect(server.url, ROOM, token=token("alice"), ack=True) as again:
            again.doc = alice.doc
            await again.sync()
            await again.send(Update(edit(again.doc, " again")))
            await again.wait_saved(1)
        await watcher.wait_text("hello again")
    assert await durable_text(server.url, ROOM) == "hello again"


async def test_bindings_survive_a_restart(start: Backend) -> None:
    server = start()
    alice = await alice_writes(server, "hello")
    server.kill()
    server = start()
    state = bytes(alice.doc.get_update())
    await expect_refused(server, "mallory", forged(alice.doc.client_id, state, " forged"))
    assert await durable_text(server.url, ROOM) == "hello"


async def test_old_structs_of_others_replay_without_refusal(start: Backend) -> None:
    """A reconnecting client's step 2 carries structs the room already holds, many by
    other users: they are not new, so they bind and refuse nothing."""
    server = start()
    alice = await alice_writes(server, "hello")
    bob_doc: Doc[Any] = Doc()
    bob_doc.apply_update(alice.doc.get_update())
    edit(bob_doc, " from bob")
    async with connect(server.url, ROOM, token=token("bob"), ack=True) as bob:
        await bob.send(SyncStep2(bytes(bob_doc.get_update())))  # everything bob has
        await bob.wait_saved(1)
    assert await durable_text(server.url, ROOM) == "hello from bob"


async def test_rest_update_under_another_users_client_id_is_403(start: Backend) -> None:
    server = start()
    alice = await alice_writes(server, "hello")
    update = forged(alice.doc.client_id, bytes(alice.doc.get_update()), " forged")
    headers = {"Authorization": f"Bearer {token('mallory')}"}
    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{server.url}/v1/rooms/{ROOM}/update", data=update, headers=headers
        )
        assert response.status == 403
        assert "client id" in await response.text()
    assert await durable_text(server.url, ROOM) == "hello"


async def test_a_fresh_room_binds_its_first_writers(start: Backend) -> None:
    """In a room the store does not hold yet, the binding is made after the first commit,
    and holds from then on (here: after a restart)."""
    server = start()
    bob_doc: Doc[Any] = Doc()
    async with connect(server.url, ROOM, token=token("bob"), ack=True) as bob:
        await bob.sync()
        await bob.send(Update(edit(bob_doc, "first")))
        await bob.wait_saved(1)
    server.kill()
    server = start()
    forgery = forged(bob_doc.client_id, bytes(bob_doc.get_update()), " forged")
    await expect_refused(server, "mallory", forgery)
    assert await durable_text(server.url, ROOM) == "first"


async def test_two_processes_on_redis_share_the_bindings(
    server_factory: StartServer, redis_server: RedisProcess
) -> None:
    a, b = (server_factory("--auth-secret", SECRET, "--redis", redis_server.url) for _ in "ab")
    alice = await alice_writes(a, "hello")
    await expect_refused(
        b, "mallory", forged(alice.doc.client_id, bytes(alice.doc.get_update()), "!")
    )
    assert await durable_text(a.url, ROOM) == "hello"
    assert await durable_text(b.url, ROOM) == "hello"


@pytest.mark.parametrize("room_exists", [True, False])
async def test_a_client_id_announced_in_awareness_is_its_users(
    start: Backend, room_exists: bool
) -> None:
    """Awareness shows a newcomer's client id before it edits: whoever sees it cannot send
    structs under it first and lock its owner out."""
    server = start()
    if room_exists:
        await alice_writes(server, "hello")
    bob_doc: Doc[Any] = Doc(client_id=555)
    async with connect(server.url, ROOM, token=token("bob"), ack=True) as bob:
        await bob.sync()
        bob_doc.apply_update(bob.doc.get_update())
        presence = encode_awareness([AwarenessEntry(555, 1, '{"user":{"name":"bob"}}')])
        async with connect(server.url, ROOM, token=token("mallory")) as mallory:
            await mallory.sync()
            await bob.send(AwarenessUpdate(presence))
            await mallory.wait_for(AwarenessUpdate)  # mallory learns bob's client id
            await mallory.send(Update(forged(555, bytes(mallory.doc.get_update()), "!")))
            assert await mallory.wait_closed() == 4403
            assert "client id" in mallory.close_reason
        await bob.send(Update(edit(bob_doc, " bob")))
        await bob.wait_saved(1)
    expected = "hello bob" if room_exists else " bob"
    assert await durable_text(server.url, ROOM) == expected
