"""`Hooks.check` on real servers (LMDB; two processes on one Redis): a refused update is
undone whole in the same commit, its sender is told why, the watcher never holds it, a
hook that raises or overruns its budget refuses (and is counted), and allowed edits pay
nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pycrdt import Array, Map, Text

from engine.protocol import PermissionDeniedMessage, Update
from harness.wire import connect
from server.auth import issue_token
from tests.conftest import ServerProcess, StartServer
from tests.rules.check_hooks import Faulty
from tests.rules.in_process import rules_servers
from tests.rules.test_rules_server import (
    ann_then_bo,
    change,
    messages,
    stored_messages,
    until,
)

SECRET = "rules-secret-" + "0123456789abcdef" * 4
ROOM = "chat"


@pytest.fixture(params=["lmdb", "redis-two-processes", "in-process"])
async def servers(
    request: pytest.FixtureRequest, server_factory: StartServer, tmp_path: Path
) -> AsyncIterator[list[ServerProcess]]:
    args = ("--auth-secret", SECRET, "--hooks", "tests.rules.check_hooks:Faulty")
    async with rules_servers(
        request.param, request, server_factory, tmp_path, args, secret=SECRET, hooks=Faulty()
    ) as started:
        yield started


def token(user: str) -> str:
    return issue_token(SECRET, ROOM, user=user)


def post(user: str, text: str) -> Any:
    return lambda m: m.append(Map({"user": user, "text": Text(text)}))


async def refused_count(server: ServerProcess, reason: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        body = await response.text()
    found = re.search(rf'performer_rejected_messages_total{{reason="{reason}"}} (\S+)', body)
    return float(found.group(1)) if found else 0.0


async def test_a_refused_update_is_undone_whole_and_its_sender_told(
    servers: list[ServerProcess],
) -> None:
    a, b = servers
    async with ann_then_bo(a, b, post("ann", "hello")) as (ann, bo):
        seen: list[Any] = []
        ann.doc.get("messages", type=Array).observe(lambda _: seen.append(messages(ann)))

        # one update: a delete of ann's message (`authors` names her) and a post
        def delete_and_post(entries: Array[Any]) -> None:
            del entries[0]
            post("bo", "hi")(entries)

        await bo.send(Update(change(bo.doc, delete_and_post)))
        denied = await bo.wait_for(PermissionDeniedMessage)
        assert isinstance(denied, PermissionDeniedMessage)
        assert denied.reason == "rule: bo deletes only what they wrote, not ann's"
        denied_first = denied.reason
        await until(bo, lambda: messages(bo) == [{"user": "ann", "text": "hello"}])
        # a post that is too long (the README's example)
        await bo.send(Update(change(bo.doc, post("bo", "x" * 501))))
        denied = await bo.wait_for(PermissionDeniedMessage)
        assert isinstance(denied, PermissionDeniedMessage)
        assert denied.reason == "rule: a message has a text of at most 500 characters"
        await until(bo, lambda: len(messages(bo)) == 1)
        # the hook raises, then overruns its budget: both refuse, both counted
        for text in ("raise", "slow"):
            await bo.send(Update(change(bo.doc, post("bo", text))))
            denied = await bo.wait_for(PermissionDeniedMessage)
            assert isinstance(denied, PermissionDeniedMessage)
            assert denied.reason.startswith("rule: the server could not check this edit")
            await until(bo, lambda: len(messages(bo)) == 1)
        # an allowed edit goes through untouched
        await bo.send(Update(change(bo.doc, post("bo", "fine"))))
        await bo.send(Update(change(bo.doc, post("bo", "mine to delete"))))
        await bo.send(Update(change(bo.doc, lambda m: m.__delitem__(2))))  # his own
        await bo.wait_saved(7)
        await until(ann, lambda: len(messages(ann)) == 2)
        assert messages(ann) == [{"user": "ann", "text": "hello"}, {"user": "bo", "text": "fine"}]
        assert all(state[0] == {"user": "ann", "text": "hello"} for state in seen)
        assert all(len(state) <= 3 and "x" * 501 not in str(state) for state in seen)
    for server in servers:
        assert await stored_messages(server) == messages(ann)
    assert await refused_count(b, "check") == 2
    assert await refused_count(b, "check_failed") == 2
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {token('ann')}"}
        response = await http.get(f"{a.url}/v1/rooms/{ROOM}/history", headers=headers)
        refusals = [entry.get("rejected") for entry in (await response.json())["entries"]]
    assert [(r or {}).get("by") for r in refusals] == [
        None, "check", "check", "check_failed", "check_failed", None, None, None
    ]  # fmt: skip
    assert refusals[1] == {"user": "bo", "by": "check", "reason": denied_first}


def test_the_check_hook_sees_paths_kinds_and_values() -> None:
    """What an edit says, on a live document (no server): paths from the root, kinds,
    new values; an update that changes nothing is not checked."""
    from pycrdt import Doc

    from engine.rules.edits import EditChange, EditRecorder
    from server import Edit, Verdict

    seen: list[Edit] = []
    room: Doc[Any] = Doc()
    room.get("messages", type=Array).append(Map({"user": "ann", "text": Text("hi")}))

    def check(edit: Edit) -> Verdict:
        seen.append(edit)
        return Verdict()

    recorder = EditRecorder(room, ROOM, check, 1.0)
    writer: Doc[Any] = Doc()
    writer.apply_update(room.get_update())
    before = writer.get_state()
    with writer.transaction():
        entries = writer.get("messages", type=Array)
        entries[0]["text"].insert(2, "!")
        entries[0]["text"].format(0, 1, {"bold": True})
        entries[0]["user"] = "bo"
        writer.get("notes", type=Map)["k"] = "v"
    update = writer.get_update(before)
    recorder.start(update)
    room.apply_update(update)
    assert recorder.finish("bo") is None
    assert sorted(seen[0].changes, key=lambda c: c.path) == [
        EditChange("messages[0].text[0]", "format", {"bold": True}),
        EditChange("messages[0].text[2]", "insert", "!"),
        EditChange("messages[0].user", "set", "bo"),
        EditChange("notes.k", "set", "v"),
    ]
    assert (seen[0].user, seen[0].room) == ("bo", ROOM)
    recorder.start(update)
    room.apply_update(update)  # a replay changes nothing: not checked
    assert recorder.finish("bo") is None and len(seen) == 1


async def test_rules_and_the_check_hook_together(server_factory: StartServer) -> None:
    """With both: a hook's refusal undoes the whole update (the rules' own undo is then
    dropped, nothing is put back twice); an update the hook allows is still judged by
    the rules."""
    from tests.rules.test_rules_server import RULES

    server = server_factory(
        "--auth-secret", SECRET, "--hooks", "tests.rules.check_hooks:Faulty", "--rules", RULES
    )
    async with connect(server.url, ROOM, token=token("ann"), ack=True) as ann:
        await ann.sync()
        await ann.send(Update(change(ann.doc, post("ann", "hello"))))
        await ann.wait_saved(1)
        async with connect(server.url, ROOM, token=token("bo"), ack=True) as bo:
            await bo.sync()
            await until(bo, lambda: len(messages(bo)) == 1)
            await bo.send(Update(change(bo.doc, lambda m: m.__delitem__(0))))  # both refuse
            denied = await bo.wait_for(PermissionDeniedMessage)
            assert isinstance(denied, PermissionDeniedMessage)
            assert denied.reason == "rule: bo deletes only what they wrote, not ann's"
            await until(bo, lambda: messages(bo) == [{"user": "ann", "text": "hello"}])
            await bo.send(Update(change(bo.doc, post("ann", "as ann"))))  # the rules refuse
            denied = await bo.wait_for(PermissionDeniedMessage)
            assert isinstance(denied, PermissionDeniedMessage)
            assert denied.reason == "rule: messages[1].user must be your name"
            await until(bo, lambda: len(messages(bo)) == 1)
            await bo.send(Update(change(bo.doc, post("bo", "fine"))))
            await bo.wait_saved(3)
        await until(ann, lambda: len(messages(ann)) == 2)
    assert await stored_messages(server) == [
        {"user": "ann", "text": "hello"},
        {"user": "bo", "text": "fine"},
    ]
