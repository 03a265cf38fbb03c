"""Authorship by bound client id on a real server (in-process, LMDB and Redis): who wrote
a message survives the room being unloaded and loaded again (bindings and the server's
records are in the store), an entry an undo put back stays its author's, a server-side
edit (`rooms.edit`) is its named user's, and another user's client id or a read token
claims nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Array, Doc, Map

from engine.protocol import PermissionDeniedMessage, Update
from engine.rules.model import parse_rules
from engine.yjs import decode_state_vector
from harness.wire import WireClient, connect
from server import Config, Rooms
from server.auth import issue_token
from server.hooks import Edit, Verdict
from tests.redis_process import RedisProcess
from tests.rules.in_process import served

SECRET = "authorship-secret-" + "0123456789abcdef" * 4
ROOM = "team"
RULES = parse_rules('[[rule]]\npath = "messages"\nentries = "author"\n')


@pytest.fixture
def config(store_config: dict[str, Any]) -> Config:
    return Config(auth_secret=SECRET, idle_unload_seconds=0.2, **store_config)


def token(user: str, *, read_only: bool = False) -> str:
    return issue_token(SECRET, ROOM, user=user, read_only=read_only)


def texts(doc: Doc[Any]) -> list[str]:
    return [entry["text"] for entry in doc.get("messages", type=Array)]


def change(doc: Doc[Any], edit: Callable[[Array[Any]], object]) -> bytes:
    before = doc.get_state()
    edit(doc.get("messages", type=Array))
    return doc.get_update(before)


async def until(client: WireClient, condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            assert await client.recv() is not None, f"closed ({client.close_code})"


def post(text: str) -> Callable[[Array[Any]], object]:
    return lambda messages: messages.append(Map({"text": text}))


def delete_first(messages: Array[Any]) -> None:
    del messages[0]


async def ann_posts(url: str, text: str) -> None:
    async with connect(url, ROOM, token=token("ann"), ack=True) as ann:
        await ann.sync()
        await ann.send(Update(change(ann.doc, post(text))))
        await ann.wait_saved(1)


async def refused_delete(url: str, user: str, expected: list[str]) -> None:
    async with connect(url, ROOM, token=token(user), ack=True) as client:
        await client.sync()
        await client.send(Update(change(client.doc, delete_first)))
        denied = await client.wait_for(PermissionDeniedMessage)
        assert isinstance(denied, PermissionDeniedMessage)
        assert denied.reason == "rule: only the author can delete messages[0]"
        await until(client, lambda: texts(client.doc) == expected)


async def unloaded(rooms: Rooms) -> None:
    async with asyncio.timeout(10):
        while ROOM in rooms.registry.rooms:
            await asyncio.sleep(0.05)


async def test_authors_hold_across_unloads_undos_and_server_edits(config: Config) -> None:
    async with served(config, RULES) as (url, rooms):
        await ann_posts(url, "a1")
        async with rooms.edit(ROOM, user="ann") as doc:
            doc.get("messages", type=Array).append(Map({"text": "by the bot, for ann"}))
        await refused_delete(url, "bob", ["a1", "by the bot, for ann"])  # re-inserted
        await unloaded(rooms)
        await refused_delete(url, "bob", ["a1", "by the bot, for ann"])  # the record holds
        await unloaded(rooms)
        async with connect(url, ROOM, token=token("ann"), ack=True) as ann:
            await ann.sync()
            await ann.send(Update(change(ann.doc, delete_first)))
            await ann.wait_saved(1)
            await ann.send(Update(change(ann.doc, delete_first)))  # the bot's, for ann
            await ann.wait_saved(2)
            assert texts(ann.doc) == []
            async with connect(url, ROOM, token=token("bob")) as bob:
                await bob.sync()
                assert texts(bob.doc) == []


async def test_another_users_client_id_or_a_read_token_claims_nothing(config: Config) -> None:
    async with served(config, RULES) as (url, _rooms):
        await ann_posts(url, "a1")
        async with connect(url, ROOM, token=token("bob")) as bob:  # bob writes as ann's id
            await bob.sync()
            ann_id = next(iter(decode_state_vector(bob.doc.get_state())))
            forged: Doc[Any] = Doc(client_id=ann_id)
            forged.apply_update(bob.doc.get_update())
            await bob.send(Update(change(forged, post("as ann"))))
            assert await bob.wait_closed() == 4403
        async with connect(url, ROOM, token=token("eve", read_only=True)) as eve:
            await eve.sync()
            await eve.send(Update(change(eve.doc, delete_first)))
            await eve.wait_for(PermissionDeniedMessage)
        await refused_delete(url, "bob", ["a1"])


def no_shouting(edit: Edit) -> Verdict:
    """A `Hooks.check`: no value in capitals."""
    for change in edit.changes:
        if isinstance(change.value, dict) and str(change.value.get("text", "")).isupper():
            return Verdict.refuse("no shouting")
    return Verdict()


async def test_an_entry_a_check_refusal_puts_back_stays_its_authors(config: Config) -> None:
    async with served(config, RULES, no_shouting) as (url, _rooms):
        await ann_posts(url, "a1")
        async with connect(url, ROOM, token=token("ann"), ack=True) as ann:
            await ann.sync()

            def replace_it(messages: Array[Any]) -> None:
                del messages[0]
                messages.append(Map({"text": "A1!"}))

            await ann.send(Update(change(ann.doc, replace_it)))  # refused whole
            denied = await ann.wait_for(PermissionDeniedMessage)
            assert isinstance(denied, PermissionDeniedMessage)
            assert denied.reason == "rule: no shouting"
            await until(ann, lambda: texts(ann.doc) == ["a1"])
        await refused_delete(url, "bob", ["a1"])
        async with connect(url, ROOM, token=token("ann"), ack=True) as ann:
            await ann.sync()
            await ann.send(Update(change(ann.doc, delete_first)))  # hers: it goes
            await ann.wait_saved(1)
            async with asyncio.timeout(10):
                while texts(ann.doc):
                    assert await ann.recv() is not None
            assert not any(isinstance(m, PermissionDeniedMessage) for m in ann.received)


async def test_two_processes_on_redis_learn_each_others_records(
    redis_server: RedisProcess,
) -> None:
    """An entry process B's undo put back stays its author's on process A, and a moderator
    of neither process is needed for her to delete it there."""
    config = Config(auth_secret=SECRET, redis_url=redis_server.url)
    async with served(config, RULES) as (a, _), served(config, RULES) as (b, _):
        await ann_posts(a, "a1")
        await refused_delete(b, "bob", ["a1"])  # B re-inserts it, records it as ann's
        async with connect(a, ROOM, token=token("ann"), ack=True) as ann:
            await ann.sync()
            await until(ann, lambda: texts(ann.doc) == ["a1"])
            await ann.send(Update(change(ann.doc, delete_first)))
            await ann.wait_saved(1)
            assert not any(isinstance(m, PermissionDeniedMessage) for m in ann.received)
