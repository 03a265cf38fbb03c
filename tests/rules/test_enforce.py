"""The judge and the undo on pycrdt replicas: a forbidden part of an update is undone
exactly, allowed parts stay, replays judge nothing, and every replica converges."""

from __future__ import annotations

from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text, XmlFragment

from engine.errors import UpdateRejected
from engine.rules.enforce import RoomRules, Writer, check_enforceable
from engine.rules.model import load_rules, parse_rules
from engine.rules.types import check_types
from tests.rules.rooms import RulesRoom, on_messages
from tests.rules.test_rules_file import ROOT

CHAT = load_rules(ROOT / "examples" / "chat-rules.toml").rules


class Room(RulesRoom):
    """The chat rules; changes and views are of `messages`."""

    def __init__(self) -> None:
        super().__init__(CHAT)

    def edit(self, user: str, change: Any, *, bound: bool = True) -> None:
        super().edit(user, on_messages(change), bound=bound)

    def messages(self, doc: Doc[Any] | None = None) -> Any:
        return self.view(doc)["messages"]

    def converged(self) -> Any:
        return super().converged()["messages"]


def post(user: str, text: str, author: str | None = None) -> Any:
    return lambda messages: messages.append(
        Map({"user": author or user, "text": text, "reactions": Map()})
    )


def test_only_the_author_deletes_or_changes_a_message() -> None:
    room = Room()
    room.edit("ann", post("ann", "hi"))
    room.edit("bo", post("bo", "yo"))
    room.edit("ann", lambda m: m[0]["reactions"].__setitem__("👍\tann", True))
    room.edit("bo", lambda m: m.__delitem__(0))  # bo deletes ann's message
    assert room.refusals == ["rule: only the author can delete messages[0]"]
    assert room.converged() == [
        {"user": "ann", "text": "hi", "reactions": {"👍\tann": True}},
        {"user": "bo", "text": "yo", "reactions": {}},
    ]
    room.edit("bo", lambda m: m[0].__setitem__("text", "pwned"))
    room.edit("bo", lambda m: m[1].__setitem__("user", "ann"))  # his own, but the author field
    assert room.refusals[1:] == [
        "rule: only the author can change messages[0]",
        "rule: messages[1].user cannot change",
    ]
    room.edit("ann", lambda m: m[0].__setitem__("text", "hi!"))
    room.edit("bo", lambda m: m.__delitem__(1))
    assert room.converged() == [{"user": "ann", "text": "hi!", "reactions": {"👍\tann": True}}]
    assert len(room.refusals) == 2 + 1


def test_a_reinserted_message_keeps_its_author() -> None:
    room = Room()
    room.edit("ann", post("ann", "mine"))
    room.edit("bo", lambda m: m.__delitem__(0))
    room.edit("bo", lambda m: m.__delitem__(0))  # again, on the re-inserted copy
    assert len(room.refusals) == 2
    room.edit("ann", lambda m: m.__delitem__(0))  # the author still can
    assert room.converged() == [] and len(room.refusals) == 2


def test_posting_as_someone_else_and_others_reactions_are_undone() -> None:
    room = Room()
    room.edit("ann", post("ann", "hi"))
    room.edit("bo", post("bo", "fake", author="ann"))
    room.edit("bo", lambda m: m[0]["reactions"].__setitem__("👍\tann", True))
    room.edit("bo", lambda m: m[0]["reactions"].__setitem__("👍\tbo", True))
    assert room.refusals == [
        "rule: messages[1].user must be your name",
        "rule: only its own user can set messages[0].reactions['👍\\tann']",
    ]
    assert room.converged() == [{"user": "ann", "text": "hi", "reactions": {"👍\tbo": True}}]
    room.edit("ann", lambda m: m[0]["reactions"].__setitem__("❤\tann", True))
    room.edit("bo", lambda m: m[0]["reactions"].__delitem__("❤\tann"))
    assert room.converged()[0]["reactions"] == {"👍\tbo": True, "❤\tann": True}


def test_a_moderator_may_delete_and_replays_judge_nothing() -> None:
    room = Room()
    room.edit("ann", post("ann", "hi"))
    room.edit("bo", post("bo", "yo"))
    stale: Doc[Any] = Doc()
    stale.apply_update(room.doc.get_update())
    room.edit("mod", lambda m: m.__delitem__(0))
    assert room.refusals == []
    room.send("bo", bytes(stale.get_update()))  # old structs and deletions: nothing new
    room.send("bo", bytes(room.doc.get_update()))
    assert room.refusals == [] and room.converged() == [
        {"user": "bo", "text": "yo", "reactions": {}}
    ]


def test_read_only_and_append_only_roots() -> None:
    rules = parse_rules(
        "[[rule]]\npath = 'messages'\nwrite = ['ann']\n[[rule]]\npath = 'log'\nappend_only = true\n"
    ).rules
    check_enforceable(rules)
    doc: Doc[Any] = Doc()
    room = RoomRules(doc, rules)
    writer: Doc[Any] = Doc()

    def send(user: str, change: Any, root: str) -> str | None:
        updates: list[bytes] = []
        subscription = writer.observe(lambda event: updates.append(bytes(event.update)))
        with writer.transaction():
            change(writer.get(root, type=Array))
        writer.unobserve(subscription)
        room.start(Writer(user))
        for update in updates:
            doc.apply_update(update)
        outcome = room.finish()
        if outcome is None:
            return None
        writer.apply_update(outcome[0])
        return outcome[1]

    assert send("ann", lambda a: a.append("a"), "messages") is None
    assert (
        send("bo", lambda a: a.append("b"), "messages") == "rule: messages is not writable by you"
    )
    assert send("bo", lambda a: a.__delitem__(0), "messages") is not None
    assert send("bo", lambda a: a.extend([1, 2, 3]), "log") is None
    assert send("bo", lambda a: a.__delitem__(slice(0, 2)), "log") == "rule: log is append-only"
    assert doc.get("messages", type=Array).to_py() == ["a"]
    assert doc.get("log", type=Array).to_py() == [1.0, 2.0, 3.0]
    assert writer.get("log", type=Array).to_py() == [1.0, 2.0, 3.0]


def test_the_chat_rules_are_enforceable() -> None:
    check_enforceable(CHAT)


def test_a_root_written_as_another_type_is_refused_naming_the_type_it_keeps() -> None:
    """The close reason a client gets names the root and the type it must stay."""

    def update_of(write: Any) -> bytes:
        doc: Doc[Any] = Doc()
        write(doc)
        return doc.get_update()

    as_map = update_of(lambda doc: doc.get("root", type=Map).__setitem__("k", 1))
    as_text = update_of(lambda doc: doc.get("root", type=Text).insert(0, "hi"))
    for update, kind, reason in [
        (as_map, "text", "rule: root must stay a text"),
        (as_map, "array", "rule: root must stay an array"),
        (as_map, "xml", "rule: root must stay an xml fragment"),
        (as_text, "map", "rule: root must stay a map"),
        (as_text, "array", "rule: root must stay an array"),
        (as_text, "xml", "rule: root must stay an xml fragment"),
    ]:
        with pytest.raises(UpdateRejected) as refused:
            check_types(update, {"root": kind}, {})
        assert str(refused.value).endswith(reason), (kind, str(refused.value))
    assert check_types(as_text, {"root": "text"}, {}) is False  # its own type fits
    fragment = update_of(lambda doc: doc.get("root", type=XmlFragment).children.append("x"))
    assert check_types(fragment, {"root": "xml"}, {}) is False
