"""Authorship by bound client id on a map root, on a real server (in-process, LMDB and
Redis): another user's overwrite or delete of a key is undone and converges, the author
holds across an unload (bindings and the server's records are in the store, the keys'
items are read again from the stored state), a moderator may change anything, and a
forged client id or a read token claims nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Doc, Map

from engine.protocol import PermissionDeniedMessage, Update
from engine.rules.model import parse_rules
from engine.yjs import decode_state_vector
from harness.wire import connect
from server import Config
from server.auth import issue_token
from tests.redis_process import RedisProcess
from tests.rules.in_process import served
from tests.rules.test_authorship_server import ROOM, SECRET, token, unloaded, until

RULES = parse_rules(
    '[[rule]]\npath = "notes"\ntype = "map"\nentries = "author"\nmoderators = ["role:admin"]\n'
)


@pytest.fixture
def config(store_config: dict[str, Any]) -> Config:
    return Config(auth_secret=SECRET, idle_unload_seconds=0.2, **store_config)


def notes(doc: Doc[Any]) -> dict[str, Any]:
    return dict(doc.get("notes", type=Map).to_py())


def change(doc: Doc[Any], edit: Callable[[Map[Any]], object]) -> bytes:
    before = doc.get_state()
    edit(doc.get("notes", type=Map))
    return doc.get_update(before)


async def allowed(url: str, user_token: str, edit: Callable[[Map[Any]], object]) -> None:
    async with connect(url, ROOM, token=user_token, ack=True) as client:
        await client.sync()
        await client.send(Update(change(client.doc, edit)))
        await client.wait_saved(1)
        assert not any(isinstance(m, PermissionDeniedMessage) for m in client.received)


async def refused(
    url: str, user: str, edit: Callable[[Map[Any]], object], reason: str, kept: dict[str, Any]
) -> None:
    async with connect(url, ROOM, token=token(user), ack=True) as client:
        await client.sync()
        await client.send(Update(change(client.doc, edit)))
        denied = await client.wait_for(PermissionDeniedMessage)
        assert isinstance(denied, PermissionDeniedMessage)
        assert denied.reason == f"rule: {reason}"
        await until(client, lambda: notes(client.doc) == kept)


async def test_a_keys_author_holds_across_unloads_and_moderators_may_change_it(
    config: Config,
) -> None:
    async with served(config, RULES) as (url, _rooms):
        await allowed(url, token("ann"), lambda n: n.__setitem__("a", "ann's"))
        overwrite = "only the author can change notes['a']"
        await refused(url, "bob", lambda n: n.__setitem__("a", "bob's"), overwrite, {"a": "ann's"})
        await unloaded(_rooms)
        delete = "only the author can delete notes['a']"
        await refused(url, "bob", lambda n: n.pop("a"), delete, {"a": "ann's"})  # put back
        await unloaded(_rooms)
        await refused(url, "bob", lambda n: n.pop("a"), delete, {"a": "ann's"})  # recorded
        await allowed(url, token("ann"), lambda n: n.__setitem__("a", "ann's, edited"))
        moderator = issue_token(SECRET, ROOM, user="mod", admin=True)
        await allowed(url, moderator, lambda n: n.__setitem__("a", "moderated"))
        await refused(url, "ann", lambda n: n.pop("a"), delete, {"a": "moderated"})
        await allowed(url, moderator, lambda n: n.pop("a"))


async def test_a_forged_client_id_or_a_read_token_claims_no_key(config: Config) -> None:
    async with served(config, RULES) as (url, _rooms):
        await allowed(url, token("ann"), lambda n: n.__setitem__("a", "ann's"))
        async with connect(url, ROOM, token=token("bob")) as bob:  # bob writes as ann's id
            await bob.sync()
            ann_id = next(iter(decode_state_vector(bob.doc.get_state())))
            forged: Doc[Any] = Doc(client_id=ann_id)
            forged.apply_update(bob.doc.get_update())
            await bob.send(Update(change(forged, lambda n: n.__setitem__("a", "as ann"))))
            assert await bob.wait_closed() == 4403
        async with connect(url, ROOM, token=token("eve", read_only=True)) as eve:
            await eve.sync()
            await eve.send(Update(change(eve.doc, lambda n: n.pop("a"))))
            await eve.wait_for(PermissionDeniedMessage)
        overwrite = "only the author can change notes['a']"
        await refused(url, "bob", lambda n: n.__setitem__("a", "bob's"), overwrite, {"a": "ann's"})


async def test_two_processes_on_redis_judge_each_others_keys(redis_server: RedisProcess) -> None:
    """A key set through process A is its author's on process B; the value B's undo puts
    back stays hers on A."""
    config = Config(auth_secret=SECRET, redis_url=redis_server.url)
    async with served(config, RULES) as (a, _), served(config, RULES) as (b, _):
        await allowed(a, token("ann"), lambda n: n.__setitem__("a", "ann's"))
        delete = "only the author can delete notes['a']"
        await refused(b, "bob", lambda n: n.pop("a"), delete, {"a": "ann's"})
        await allowed(b, token("bob"), lambda n: n.__setitem__("b", "bob's"))
        async with connect(a, ROOM, token=token("ann"), ack=True) as ann:
            await ann.sync()
            await until(ann, lambda: notes(ann.doc) == {"a": "ann's", "b": "bob's"})
            await ann.send(Update(change(ann.doc, lambda n: n.pop("a"))))
            await ann.wait_saved(1)
            await ann.send(Update(change(ann.doc, lambda n: n.pop("b"))))
            denied = await ann.wait_for(PermissionDeniedMessage)
            assert isinstance(denied, PermissionDeniedMessage)
            assert denied.reason == "rule: only the author can delete notes['b']"
            await until(ann, lambda: notes(ann.doc) == {"b": "bob's"})
