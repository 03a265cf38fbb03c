"""The chat demo's rules on real servers (LMDB; two processes on one Redis): a forbidden
edit is undone in the same commit, the sender is told why, nobody ever holds the
forbidden state, replays refuse nothing, and every replica converges."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Array, Doc, Map, Text

from engine.protocol import PermissionDeniedMessage, SyncStep2, Update
from engine.rules.model import load_rules
from harness.wire import WireClient, connect
from server.auth import issue_token
from tests.conftest import ServerProcess, StartServer
from tests.rules.in_process import rules_servers, stored_doc
from tests.rules.rooms import on_messages, one_update

SECRET = "rules-secret-" + "0123456789abcdef" * 4
ROOM = "chat"
RULES = str(Path(__file__).resolve().parents[2] / "examples" / "chat-rules.toml")


@pytest.fixture(params=["lmdb", "redis-two-processes", "in-process"])
async def servers(
    request: pytest.FixtureRequest, server_factory: StartServer, tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    """One server (twice) or two on one Redis; "in-process" runs the rules inside the
    test process, where the mutation run can see which rule code each test reaches."""
    args = ("--auth-secret", SECRET, "--rules", RULES)
    async with rules_servers(
        request.param, request, server_factory, tmp_path, args,
        secret=SECRET, rules=load_rules(RULES),
    ) as started:  # fmt: skip
        yield started


def token(user: str) -> str:
    return issue_token(SECRET, ROOM, user=user)


def change(doc: Doc[Any], edit: Callable[[Array[Any]], object]) -> bytes:
    return one_update(doc, on_messages(edit))


def messages(client: WireClient) -> Any:
    return client.doc.get("messages", type=Array).to_py()


async def stored_messages(server: ServerProcess) -> Any:
    doc = await stored_doc(server, ROOM, token("reader"))
    return doc.get("messages", type=Array).to_py()


async def until(client: WireClient, condition: Callable[[], bool]) -> None:
    while not condition():
        assert await client.recv() is not None, f"closed ({client.close_code})"


@asynccontextmanager
async def ann_then_bo(
    a: ServerProcess, b: ServerProcess, first: Callable[[Array[Any]], object]
) -> AsyncIterator[tuple[WireClient, WireClient]]:
    """ann (on `a`) makes her `first` edit, saved; then bo (on `b`) joins and holds it."""
    async with connect(a.url, ROOM, token=token("ann"), ack=True) as ann:
        await ann.sync()
        await ann.send(Update(change(ann.doc, first)))
        await ann.wait_saved(1)
        async with connect(b.url, ROOM, token=token("bo"), ack=True) as bo:
            await bo.sync()
            await until(bo, lambda: len(messages(bo)) == 1)
            yield ann, bo


def post(user: str, text: str) -> Callable[[Array[Any]], object]:
    return lambda m: m.append(Map({"user": user, "text": text, "reactions": Map()}))


async def test_deleting_anothers_message_comes_back_and_says_why(
    servers: list[ServerProcess],
) -> None:
    a, b = servers
    async with ann_then_bo(a, b, post("ann", "hello")) as (ann, bo):
        seen: list[int] = []
        ann.doc.get("messages", type=Array).observe(
            lambda _: seen.append(len(ann.doc.get("messages", type=Array)))
        )
        await bo.send(Update(change(bo.doc, lambda m: m.__delitem__(0))))
        assert messages(bo) == []
        denied = await bo.wait_for(PermissionDeniedMessage)
        assert isinstance(denied, PermissionDeniedMessage)
        assert denied.reason == "rule: only the author can delete messages[0]"
        await until(bo, lambda: len(messages(bo)) == 1)
        assert messages(bo)[0]["text"] == "hello"
        # a reaction of his own goes through; one in ann's name is undone
        await bo.send(Update(change(bo.doc, lambda m: m[0]["reactions"].update(
            {"👍\tbo": True, "❤\tann": True}))))  # fmt: skip
        denied = await bo.wait_for(PermissionDeniedMessage)
        assert isinstance(denied, PermissionDeniedMessage)
        assert denied.reason.startswith("rule: only its own user can set")
        await until(bo, lambda: messages(bo)[0]["reactions"] == {"👍\tbo": True})
        # a reconnecting client's step 2 (everything it holds) refuses nothing
        await bo.send(SyncStep2(bytes(bo.doc.get_update())))
        await bo.wait_saved(3)
        await until(ann, lambda: messages(ann)[0]["reactions"] == {"👍\tbo": True})
        assert messages(ann) == [{"user": "ann", "text": "hello", "reactions": {"👍\tbo": True}}]
        assert 0 not in seen  # ann never held a room without her message
        assert not any(isinstance(m, PermissionDeniedMessage) for m in ann.received)
    for server in servers:
        assert await stored_messages(server) == messages(ann)


async def test_posting_as_someone_else_is_undone_and_the_author_still_deletes(
    servers: list[ServerProcess],
) -> None:
    a, b = servers
    async with connect(b.url, ROOM, token=token("bo"), ack=True) as bo:
        await bo.sync()
        await bo.send(Update(change(bo.doc, post("ann", "I am ann"))))
        denied = await bo.wait_for(PermissionDeniedMessage)
        assert isinstance(denied, PermissionDeniedMessage)
        assert denied.reason == "rule: messages[0].user must be your name"
        await until(bo, lambda: messages(bo) == [])
        await bo.send(Update(change(bo.doc, post("bo", "I am bo"))))
        await bo.wait_saved(2)
    async with connect(a.url, ROOM, token=token("bo"), ack=True) as bo:
        await bo.sync()
        await until(bo, lambda: len(messages(bo)) == 1)
        await bo.send(Update(change(bo.doc, lambda m: m.__delitem__(0))))
        await bo.wait_saved(1)
        assert not any(isinstance(m, PermissionDeniedMessage) for m in bo.received)
    for server in servers:
        assert await stored_messages(server) == []


async def test_an_open_server_runs_the_demo_rules_without_names(
    server_factory: StartServer,
) -> None:
    """Writers on an open server are anonymous: rules naming users cannot judge them, so
    the demo keeps working (the server says so at start); the undo path stays off."""
    server = server_factory("--rules", RULES)
    async with connect(server.url, ROOM, ack=True) as anyone:
        await anyone.sync()
        await anyone.send(Update(change(anyone.doc, post("ann", "hi"))))
        await anyone.send(Update(change(anyone.doc, lambda m: m.__delitem__(0))))
        await anyone.wait_saved(2)
        assert not any(isinstance(m, PermissionDeniedMessage) for m in anyone.received)


async def test_the_sdk_reports_a_rejected_edit_and_carries_on(
    server_factory: StartServer,
) -> None:
    from engine.client import connect as sdk_connect

    server = server_factory("--auth-secret", SECRET, "--rules", RULES)
    async with (
        sdk_connect(server.ws_url, ROOM, token=token("ann"), store_path=None) as ann,
        sdk_connect(server.ws_url, ROOM, token=token("bo"), store_path=None) as bo,
    ):
        reasons: list[str] = []
        bo.on_rejected(reasons.append)
        await ann.synced()
        await bo.synced()
        with ann.doc.transaction():
            post("ann", "hello")(ann.doc.get("messages", type=Array))
        await ann.saved()
        bo_messages = bo.doc.get("messages", type=Array)
        async with asyncio.timeout(10):
            while len(bo_messages) != 1:
                await asyncio.sleep(0.02)
            del bo_messages[0]
            await bo.saved()  # the edit was committed (with its undo): no WriteDenied
            while len(bo_messages) != 1 or not reasons:
                await asyncio.sleep(0.02)
        assert reasons == ["rule: only the author can delete messages[0]"]
        assert bo_messages.to_py() == ann.doc.get("messages", type=Array).to_py()
        with bo.doc.transaction():
            post("bo", "mine")(bo_messages)
        await bo.saved()
        assert reasons == ["rule: only the author can delete messages[0]"]


async def test_an_update_waiting_for_a_missing_dependency_is_refused_in_a_rule_room(
    server_factory: StartServer,
) -> None:
    """It would integrate later, inside another writer's apply, and be judged as theirs."""
    server = server_factory("--auth-secret", SECRET, "--rules", RULES)
    doc: Doc[Any] = Doc()
    first = change(doc, post("mallory", "first"))
    second = change(doc, post("ann", "posted as ann once 'first' arrives"))
    async with connect(server.url, ROOM, token=token("mallory")) as mallory:
        await mallory.sync()
        await mallory.send(Update(second))
        assert await mallory.wait_closed() == 4400
        assert "lacks" in mallory.close_reason
    assert first  # never sent: the room must not hold `second` waiting for it
    async with connect(server.url, ROOM, token=token("ann"), ack=True) as ann:
        await ann.sync()
        await ann.send(Update(change(ann.doc, post("ann", "hello"))))
        await ann.wait_saved(1)
    assert [m["text"] for m in await stored_messages(server)] == ["hello"]


async def test_a_moderator_by_role_deletes_anothers_message(server_factory: StartServer) -> None:
    """`moderators = ["role:admin"]`: the role comes from the token (performer token --admin)."""
    server = server_factory("--auth-secret", SECRET, "--rules", RULES)
    async with connect(server.url, ROOM, token=token("ann"), ack=True) as ann:
        await ann.sync()
        await ann.send(Update(change(ann.doc, post("ann", "spam"))))
        await ann.wait_saved(1)
    admin_token = issue_token(SECRET, ROOM, user="mod", admin=True)
    async with connect(server.url, ROOM, token=admin_token, ack=True) as mod:
        await mod.sync()
        await until(mod, lambda: len(messages(mod)) == 1)
        await mod.send(Update(change(mod.doc, lambda m: m.__delitem__(0))))
        await mod.wait_saved(1)
        assert not any(isinstance(m, PermissionDeniedMessage) for m in mod.received)
    assert await stored_messages(server) == []


@pytest.mark.parametrize("as_type", ["map", "text"])
async def test_turning_messages_into_another_type_is_refused_whole(
    servers: list[ServerProcess], as_type: str
) -> None:
    """`type = "array"`: an update writing `messages` as a map or a text (here: a text
    with a formatted run, whose structs name their parent only through their origin)
    closes its sender with 4400; nothing of it is applied, stored or relayed."""
    a, b = servers
    attacker: Doc[Any] = Doc()
    if as_type == "map":
        attacker.get("messages", type=Map)["x"] = "boom"
    else:
        text = attacker.get("messages", type=Text)
        text.insert(0, "ab")
        text.insert(2, "cd", {"bold": True})
    forged = attacker.get_update()
    async with connect(b.url, ROOM, token=token("bo")) as bo:
        await bo.sync()
        await bo.send(Update(forged))
        assert await bo.wait_closed() == 4400
        assert bo.close_reason.endswith("rule: messages must stay an array")
    async with connect(a.url, ROOM, token=token("ann"), ack=True) as ann:
        await ann.sync()
        await ann.send(Update(change(ann.doc, post("ann", "still here"))))
        await ann.wait_saved(1)
        assert [m["text"] for m in messages(ann)] == ["still here"]
        assert ann.doc.get_update() == ann.doc.get_update(Doc().get_state())
    for server in servers:
        assert [m["text"] for m in await stored_messages(server)] == ["still here"]


async def test_characters_put_next_to_a_message_are_undone(
    servers: list[ServerProcess],
) -> None:
    """Characters inserted into `messages` beside an existing message carry no parent of
    their own (Yjs takes it from the neighbour): the server undoes them like any refused
    edit, so the watcher never sees them and every replica converges."""
    a, b = servers
    async with ann_then_bo(a, b, post("ann", "hello")) as (ann, bo):
        seen: list[int] = []
        ann.doc.get("messages", type=Array).observe(
            lambda _: seen.append(len(ann.doc.get("messages", type=Array)))
        )
        before = bo.doc.get_state()
        text = bo.doc.get("messages", type=Text)
        text.insert(0, "xy")
        await bo.send(Update(bo.doc.get_update(before)))
        denied = await bo.wait_for(PermissionDeniedMessage)
        assert isinstance(denied, PermissionDeniedMessage)
        assert denied.reason == "rule: messages must stay an array"
        await until(bo, lambda: str(bo.doc.get("messages", type=Text)) == "")
        await until(ann, lambda: ann.doc.get_state() == bo.doc.get_state())
        assert all(length == 1 for length in seen)  # she never held a character in it
        await ann.send(Update(change(ann.doc, post("ann", "again"))))
        await ann.wait_saved(2)
        assert [m["text"] for m in messages(ann)] == ["hello", "again"]
    for server in servers:
        assert [m["text"] for m in await stored_messages(server)] == ["hello", "again"]


async def test_rest_update_says_what_a_rule_undid(servers: list[ServerProcess]) -> None:
    """POST /update: a forbidden part is undone and committed (200) with `rejected`
    naming the rule; an allowed update's answer has no `rejected`."""
    a, b = servers

    async def post_update(user: str, update: bytes) -> tuple[int, dict[str, Any]]:
        headers = {
            "Authorization": f"Bearer {token(user)}",
            "Content-Type": "application/octet-stream",
        }
        async with aiohttp.ClientSession() as http:
            url = f"{b.url}/v1/rooms/{ROOM}/update"
            async with http.post(url, data=update, headers=headers) as response:
                return response.status, await response.json()

    doc: Doc[Any] = Doc()
    status, answer = await post_update("ann", change(doc, post("ann", "hello")))
    assert status == 200 and set(answer) == {"seq"}
    attacker: Doc[Any] = Doc()
    attacker.apply_update(doc.get_update())
    status, answer = await post_update("bo", change(attacker, lambda m: m.__delitem__(0)))
    assert status == 200
    assert answer == {"seq": 2, "rejected": "rule: only the author can delete messages[0]"}
    for server in (a, b):
        assert [m["text"] for m in await stored_messages(server)] == ["hello"]
    # the history records the refusal on the entry; time travel shows no forbidden state
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {token('reader')}"}
        for server in (a, b):
            response = await http.get(f"{server.url}/v1/rooms/{ROOM}/history", headers=headers)
            entries = (await response.json())["entries"]
            assert [entry.get("rejected") for entry in entries] == [
                None,
                {"user": "bo", "by": "rule", "reason": answer["rejected"]},
            ]
            url = f"{server.url}/v1/rooms/{ROOM}/json?at=2"
            async with http.get(url, headers=headers) as response:
                doc = (await response.json())["doc"]
                assert [m["text"] for m in doc["messages"]] == ["hello"]
