"""`write` rules on text and xml roots: an edit by someone not allowed is undone whole
(inserted text deleted, deleted text put back with its formatting) and every replica,
pycrdt or stock Yjs in Node, converges on the text as it was; allowed writers edit on."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import pytest
from pycrdt import Doc, Text, XmlElement, XmlFragment, XmlText

from engine.errors import RulesInvalid
from engine.protocol import PermissionDeniedMessage, Update
from engine.rules.enforce import RoomRules, Writer, check_enforceable
from engine.rules.model import parse_rules
from harness.wire import connect
from server import Config
from server.auth import issue_token
from tests.rules.attack_rig import NodeUsers
from tests.rules.in_process import served

RULES = """
[[rule]]
path = "notes"
type = "text"
write = ["ann", "role:editor"]

[[rule]]
path = "page"
type = "xml"
write = "nobody"
"""

Delta = list[tuple[str, dict[str, Any]]]


class Room:
    """The server's document with the rules; replicas are synced by hand."""

    def __init__(self) -> None:
        rules = parse_rules(RULES).rules
        check_enforceable(rules)
        self.doc: Doc[Any] = Doc()
        self.rules = RoomRules(self.doc, rules)
        self.refusals: list[str] = []

    def send(self, user: str, update: bytes, roles: frozenset[str] = frozenset()) -> bytes:
        """Apply a writer's update; what every replica gets (the update with its undo)."""
        self.rules.start(Writer(user, roles), update)
        self.doc.apply_update(update)
        outcome = self.rules.finish()
        if outcome is None:
            return update
        self.refusals.append(outcome[1])
        return self.doc.get_update()


def delta(doc: Doc[Any]) -> Delta:
    return [(str(text), dict(attrs or {})) for text, attrs in doc.get("notes", type=Text).diff()]


def edited(doc: Doc[Any], edit: Any) -> bytes:
    before = doc.get_state()
    edit(doc)
    return doc.get_update(before)


def b64(update: bytes) -> str:
    return base64.b64encode(update).decode()


def unb64(update: str) -> bytes:
    return base64.b64decode(update)


@pytest.fixture(scope="module")
def node() -> Iterator[NodeUsers]:
    users = NodeUsers()
    yield users
    users.close()


def write(at: int, insert: str = "", remove: int = 0, **attrs: Any) -> Any:
    def edit(doc: Doc[Any]) -> None:
        notes = doc.get("notes", type=Text)
        if remove:
            del notes[at : at + remove]
        if insert:
            notes.insert(at, insert, attrs or None)

    return edit


def test_a_forbidden_text_edit_is_undone_with_its_formatting(node: NodeUsers) -> None:
    node.call("reset")
    room = Room()
    ann: Doc[Any] = Doc()
    room.send("ann", edited(ann, write(0, "Plan: ")))
    room.send("ann", edited(ann, write(6, "ship friday", bold=True)))
    expected = delta(room.doc)
    assert expected == [("Plan: ", {}), ("ship friday", {"bold": True})]
    bob: Doc[Any] = Doc()
    bob.apply_update(room.doc.get_update())
    relayed = room.send("bob", edited(bob, write(6, "cancel it", remove=11)))
    assert room.refusals == ["rule: notes is not writable by you"]
    bob.apply_update(relayed)
    ann.apply_update(relayed)
    assert delta(room.doc) == delta(bob) == delta(ann) == expected
    # a stock Yjs user: the same, deleting part of the bold run and typing into it
    node.call("apply", user="yjs", update=b64(room.doc.get_update()))
    updates = node.call("write", user="yjs", root="notes", at=8, remove=4, insert="X")["updates"]
    for update in updates:
        relayed = room.send("yjs", unb64(update))
        node.call("apply", user="yjs", update=b64(relayed))
    assert len(room.refusals) == 2
    node_delta = node.call("delta", user="yjs", root="notes")["delta"]
    assert [(op["insert"], op.get("attributes", {})) for op in node_delta] == expected
    assert delta(room.doc) == expected


def test_allowed_writers_edit_and_a_replay_refuses_nothing() -> None:
    room = Room()
    ann: Doc[Any] = Doc()
    first = edited(ann, write(0, "hello"))
    room.send("ann", first)
    ed: Doc[Any] = Doc()
    ed.apply_update(room.doc.get_update())
    room.send("ed", edited(ed, write(5, " world")), roles=frozenset({"editor"}))
    room.send("bob", first)  # old structs sent again: nothing changes, nothing refused
    room.send("bob", room.doc.get_update())
    assert str(room.doc.get("notes", type=Text)) == "hello world"
    assert room.refusals == []


def test_a_read_only_xml_root_puts_its_nodes_back() -> None:
    room = Room()
    server_page = room.doc.get("page", type=XmlFragment)
    server_page.children.append(XmlElement("p", {"class": "lead"}, [XmlText("intro")]))
    mod: Doc[Any] = Doc()
    mod.apply_update(room.doc.get_update())
    page = mod.get("page", type=XmlFragment)

    def vandalize(doc: Doc[Any]) -> None:
        del page.children[0]
        page.children.append(XmlElement("h1", {}, [XmlText("pwned")]))

    relayed = room.send("mod", edited(mod, vandalize), roles=frozenset({"admin"}))
    mod.apply_update(relayed)
    assert room.refusals == ["rule: page is not writable by you"]
    assert str(server_page) == str(page) == '<p class="lead">intro</p>'


@pytest.mark.parametrize(
    "text",
    [
        "[[rule]]\npath = 'notes'\ntype = 'text'\nappend_only = true\n",
        "[[rule]]\npath = 'page'\ntype = 'xml'\nentries = 'author'\nauthor_field = 'by'\n",
        "[[rule]]\npath = 'notes'\ntype = 'text'\n[[rule]]\npath = 'notes.x'\nwrite = 'nobody'\n",
    ],
)
def test_other_rules_on_text_roots_are_refused_at_start(text: str) -> None:
    with pytest.raises(RulesInvalid, match="only 'write'"):
        check_enforceable(parse_rules(text).rules)


SERVER_SECRET = "text-rules-secret-" + "0123456789abcdef" * 4


async def test_a_text_root_holds_on_a_real_server(store_config: dict[str, Any]) -> None:
    """LMDB and Redis: bob's edit of the minutes is undone for him and never reaches ann;
    ann writes on."""
    config = Config(auth_secret=SERVER_SECRET, **store_config)

    def token(user: str) -> str:
        return issue_token(SERVER_SECRET, "board", user=user)

    def typed(doc: Doc[Any]) -> str:
        return str(doc.get("notes", type=Text))

    async with served(config, parse_rules(RULES)) as (url, _rooms):
        async with connect(url, "board", token=token("ann"), ack=True) as ann:
            await ann.sync()
            await ann.send(Update(edited(ann.doc, write(0, "agenda", bold=True))))
            await ann.wait_saved(1)
            seen: list[str] = []
            ann.doc.get("notes", type=Text).observe(lambda _: seen.append(typed(ann.doc)))
            async with connect(url, "board", token=token("bob"), ack=True) as bob:
                await bob.sync()
                async with asyncio.timeout(10):
                    while typed(bob.doc) != "agenda":
                        assert await bob.recv() is not None
                await bob.send(Update(edited(bob.doc, write(0, "x", remove=3))))
                denied = await bob.wait_for(PermissionDeniedMessage)
                assert isinstance(denied, PermissionDeniedMessage)
                assert denied.reason == "rule: notes is not writable by you"
                async with asyncio.timeout(10):
                    while delta(bob.doc) != [("agenda", {"bold": True})]:
                        assert await bob.recv() is not None
                await ann.send(Update(edited(ann.doc, write(6, "!"))))
                await ann.wait_saved(2)
                async with asyncio.timeout(10):
                    while typed(bob.doc) != "agenda!":
                        assert await bob.recv() is not None
            assert typed(ann.doc) == "agenda!"
            assert not any("x" in text for text in seen)  # she never held bob's edit
