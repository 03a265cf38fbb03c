"""Rules on a map root and on a deeper path, on real servers (LMDB; two processes on one
Redis, the attacker on the other process): the forbidden part is undone in the same
commit, the sender is told why, the watcher never holds the forbidden state, and the
stored state is right on every process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map

from engine.protocol import PermissionDeniedMessage, Update
from harness.wire import WireClient, connect
from server.auth import issue_token
from tests.conftest import ServerProcess, StartServer
from tests.rules.in_process import rules_servers, stored_doc
from tests.rules.rooms import one_update

SECRET = "map-rules-secret-" + "0123456789abcdef" * 4
ROOM = "board"
RULES = """
[[rule]]
path = "profiles"
user_keys = ""

[[rule]]
path = "boards[*].cards"
entries = "author"
author_field = "by"
"""


@pytest.fixture(params=["lmdb", "redis-two-processes"])
async def servers(
    request: pytest.FixtureRequest, server_factory: StartServer, tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    args = ("--auth-secret", SECRET, "--rules", str(rules))
    async with rules_servers(
        request.param, request, server_factory, tmp_path, args, secret=SECRET
    ) as started:
        yield started


def token(user: str) -> str:
    return issue_token(SECRET, ROOM, user=user)


def view(doc: Doc[Any]) -> dict[str, Any]:
    return {
        "profiles": doc.get("profiles", type=Map).to_py(),
        "boards": doc.get("boards", type=Array).to_py(),
    }


async def until(client: WireClient, condition: Callable[[], bool]) -> None:
    while not condition():
        assert await client.recv() is not None, f"closed ({client.close_code})"


async def stored(server: ServerProcess) -> dict[str, Any]:
    return view(await stored_doc(server, ROOM, token("reader")))


def setup(doc: Doc[Any]) -> None:
    doc.get("profiles", type=Map)["ann"] = "hi"
    card = Map({"by": "ann", "text": "a"})
    doc.get("boards", type=Array).append(Map({"cards": Array([card])}))


def attack(doc: Doc[Any]) -> None:
    """Allowed and forbidden parts in one update."""
    doc.get("profiles", type=Map).update({"ann": "pwned", "bo": "me"})
    cards = doc.get("boards", type=Array)[0]["cards"]
    cards.append(Map({"by": "bo", "text": "b"}))
    del cards[0]


async def test_a_map_root_and_a_deeper_path_hold(servers: list[ServerProcess]) -> None:
    a, b = servers
    expected = {
        "profiles": {"ann": "hi", "bo": "me"},
        "boards": [{"cards": [{"by": "ann", "text": "a"}, {"by": "bo", "text": "b"}]}],
    }
    async with connect(a.url, ROOM, token=token("ann"), ack=True) as ann:
        await ann.sync()
        await ann.send(Update(one_update(ann.doc, setup)))
        await ann.wait_saved(1)
        async with connect(b.url, ROOM, token=token("bo"), ack=True) as bo:
            await bo.sync()
            await until(bo, lambda: view(bo.doc)["profiles"] == {"ann": "hi"})
            await bo.send(Update(one_update(bo.doc, attack)))
            denied = await bo.wait_for(PermissionDeniedMessage)
            assert isinstance(denied, PermissionDeniedMessage)
            assert denied.reason in {  # the first refused part, whichever root is judged first
                "rule: only its own user can set profiles['ann']",
                "rule: only the author can delete boards[0].cards[0]",
            }
            await until(bo, lambda: view(bo.doc) == expected)
        while view(ann.doc) != expected:  # after every update she gets, nothing forbidden
            assert await ann.recv() is not None, f"closed ({ann.close_code})"
            assert view(ann.doc)["profiles"].get("ann") == "hi"
            assert view(ann.doc)["boards"][0]["cards"][0] == {"by": "ann", "text": "a"}
    for server in servers:
        assert await stored(server) == expected
