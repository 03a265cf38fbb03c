"""`client.restore(seq)` and `client.to_json()` against a real server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pycrdt import Map, Text

from engine.client import connect
from engine.client.rest import rest_base
from engine.errors import PermissionDenied, ProtocolError, RoomNotFound
from tests.client.conftest import LiveServer, StartServer, make_token
from tests.client.helpers import DEADLINE, wait_for_doc

SECRET = "a-secret-of-at-least-thirty-two-bytes!"


async def test_restore_comes_back_to_every_replica_and_to_json_shows_it(
    live_server: LiveServer, tmp_path: Path
) -> None:
    url = live_server.ws_url
    async with (
        connect(url, "notes", store_path=None) as alice,
        connect(url, "notes", store_path=tmp_path / "bob") as bob,
    ):
        await asyncio.wait_for(asyncio.gather(alice.synced(), bob.synced()), DEADLINE)
        text = alice.doc.get("body", type=Text)
        text.insert(0, "first draft")
        await asyncio.wait_for(alice.saved(), DEADLINE)
        text.insert(len(text), " with a mistake")
        alice.doc.get("meta", type=Map)["title"] = "Notes"
        await asyncio.wait_for(alice.saved(), DEADLINE)
        seq = await alice.restore(1)
        assert seq >= 3
        await wait_for_doc(bob.doc, lambda: bob.to_json().get("body") == "first draft")
        await wait_for_doc(alice.doc, lambda: alice.to_json() == {"body": "first draft"})
        assert bob.to_json() == {"body": "first draft"}
        assert bob.to_json(types={"meta": "map"}) == {"body": "first draft", "meta": {}}
        with pytest.raises(ProtocolError):
            await alice.restore(10_000)
        with pytest.raises(ValueError):
            bob.to_json(types={"body": "tree"})


async def test_restore_needs_write_access_and_an_existing_room(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server("--auth-secret", SECRET)
    writer = make_token(SECRET, "r*")
    reader = make_token(SECRET, "r*", "--read-only")
    async with connect(server.ws_url, "r1", token=writer, store_path=None) as client:
        await asyncio.wait_for(client.synced(), DEADLINE)
        client.doc.get("t", type=Text).insert(0, "x")
        await asyncio.wait_for(client.saved(), DEADLINE)
    async with connect(server.ws_url, "r1", token=reader, store_path=None) as client:
        with pytest.raises(PermissionDenied):
            await client.restore(0)
    async with connect(server.ws_url, "r2", token=writer, store_path=None) as client:
        with pytest.raises(RoomNotFound):
            await client.restore(0)


def test_the_rest_base_comes_from_the_websocket_url() -> None:
    assert str(rest_base("ws://h:1/rooms")) == "http://h:1/"
    assert str(rest_base("wss://h/sync/rooms/")) == "https://h/sync"
