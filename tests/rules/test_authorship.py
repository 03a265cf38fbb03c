"""`entries = "author"` without `author_field`: an entry of an array root is its author's,
the user its item's client id is bound to. On pycrdt replicas against the rules alone:
deleting or changing another user's entry is undone, one's own goes through, an entry an
undo re-inserts stays its author's, and an entry of an unbound client id is the
moderators' alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from engine.errors import RulesInvalid
from engine.rules.authorship import Authorship
from engine.rules.enforce import RoomRules, Writer, check_enforceable
from engine.rules.model import parse_rules
from engine.rules.owners import SERVER
from engine.yjs import decode_state_vector

RULES = """
[[rule]]
path = "messages"
entries = "author"
moderators = ["role:admin"]
"""

Edit = Callable[[Array[Any]], object]


class Room:
    """A server document with the rules, its bindings, and one replica per user."""

    def __init__(self) -> None:
        rules = parse_rules(RULES).rules
        check_enforceable(rules)
        self.doc: Doc[Any] = Doc()
        self.bindings: dict[int, str] = {self.doc.client_id: SERVER}
        self.authorship = Authorship(self.bindings)
        self.rules = RoomRules(self.doc, rules, self.authorship)
        self.replicas: dict[str, Doc[Any]] = {}
        self.refusals: list[str] = []

    def replica(self, user: str, *, bound: bool = True) -> Doc[Any]:
        if user not in self.replicas:
            doc: Doc[Any] = Doc()
            doc.apply_update(self.doc.get_update())
            self.replicas[user] = doc
            if bound:
                self.bindings[doc.client_id] = user
        return self.replicas[user]

    def send(self, user: str, edit: Edit, *, bound: bool = True) -> None:
        doc = self.replica(user, bound=bound)
        edit(doc.get("messages", type=Array))
        update = doc.get_update(self.doc.get_state())
        clocks = decode_state_vector(self.doc.get_state())
        roles = frozenset({"admin"}) if user == "mod" else frozenset()
        self.rules.start(Writer(user, roles), update, clocks)
        self.doc.apply_update(update)
        outcome = self.rules.finish()
        if outcome is not None:
            self.refusals.append(outcome[1])
        for replica in self.replicas.values():
            replica.apply_update(self.doc.get_update(replica.get_state()))

    def texts(self, user: str | None = None) -> list[str]:
        doc = self.doc if user is None else self.replicas[user]
        return [str(entry["text"]) for entry in doc.get("messages", type=Array)]


def post(text: str) -> Edit:
    return lambda messages: messages.append(Map({"text": Text(text), "seen": Map()}))


def delete(at: int) -> Edit:
    def edit(messages: Array[Any]) -> None:
        del messages[at]

    return edit


def room_with(*posts: tuple[str, str]) -> Room:
    room = Room()
    for user, text in posts:
        room.send(user, post(text))
    return room


def test_deleting_anothers_entry_is_undone_and_ones_own_goes() -> None:
    room = room_with(("ann", "a1"), ("bob", "b1"))
    room.send("bob", delete(0))
    assert room.texts() == ["a1", "b1"]
    assert room.refusals == ["rule: only the author can delete messages[0]"]
    room.send("bob", delete(1))
    assert room.texts() == ["a1"] == room.texts("bob") == room.texts("ann")
    assert len(room.refusals) == 1


def test_changing_inside_anothers_entry_is_undone() -> None:
    room = room_with(("ann", "a1"))
    room.send("bob", lambda messages: messages[0]["text"].insert(0, "pwned "))
    room.send("bob", lambda messages: messages[0]["seen"].__setitem__("bob", True))
    assert room.texts() == ["a1"] == room.texts("bob")
    assert room.doc.get("messages", type=Array)[0]["seen"].to_py() == {}
    assert room.refusals == ["rule: only the author can change messages[0]"] * 2
    room.send("ann", lambda messages: messages[0]["text"].insert(2, "!"))
    assert room.texts() == ["a1!"] == room.texts("bob")


def test_an_entry_put_back_by_an_undo_stays_its_authors() -> None:
    room = room_with(("ann", "a1"))
    room.send("bob", delete(0))  # undone: the server re-inserts it under its own id
    assert room.texts() == ["a1"]
    assert room.authorship.ranges, "the re-insertion is recorded for ann"
    room.send("bob", lambda messages: messages[0]["text"].insert(0, "x"))
    room.send("bob", delete(0))
    assert room.texts() == ["a1"]
    room.send("ann", lambda messages: messages[0]["text"].insert(2, "?"))
    room.send("ann", delete(0))
    assert room.texts() == [] == room.texts("bob")
    assert len(room.refusals) == 3


def test_an_entry_of_an_unbound_client_id_is_the_moderators_alone() -> None:
    room = Room()
    room.send("legacy", post("old"), bound=False)
    room.send("legacy", delete(0), bound=False)  # not even its unbound writer
    room.send("ann", delete(0))
    assert room.texts() == ["old"]
    room.send("mod", delete(0))
    assert room.texts() == [] == room.texts("ann")


def test_one_update_deleting_entries_of_several_authors_undoes_only_theirs() -> None:
    room = room_with(("ann", "a1"), ("bob", "b1"), ("ann", "a2"))
    room.send("ann", lambda messages: messages[1]["seen"].__setitem__("ann", True))
    assert room.texts() == ["a1", "b1", "a2"]  # inside bob's: undone
    room.send("bob", lambda messages: messages[0]["seen"].__setitem__("bob", True))
    room.send("ann", lambda messages: [delete(2)(messages), delete(1)(messages)])
    assert room.texts() == ["a1", "b1"] == room.texts("ann")
    # b1 is now the server's re-insertion, recorded as bob's: he deletes it
    room.send("bob", delete(1))
    assert room.texts() == ["a1"]


def test_deleting_ones_own_entry_holding_anothers_items() -> None:
    room = room_with(("bob", "b1"))
    room.send("mod", lambda messages: messages[0]["seen"].__setitem__("mod", True))
    assert room.doc.get("messages", type=Array)[0]["seen"].to_py() == {"mod": True}
    room.send("bob", delete(0))  # removes mod's item too: two authors, bob's entry
    assert room.texts() == [] == room.texts("mod")
    assert len(room.refusals) == 0


@pytest.mark.parametrize(
    "text",
    [
        '[[rule]]\npath = "boards[*].cards"\nentries = "author"\n',
        '[[rule]]\npath = "notes"\ntype = "map"\nentries = "author"\n',
    ],
)
def test_authorship_by_client_id_is_refused_where_it_is_not_enforced(text: str) -> None:
    with pytest.raises(RulesInvalid, match="array root"):
        check_enforceable(parse_rules(text).rules)


def test_an_offline_delete_replayed_is_undone_once() -> None:
    room = room_with(("ann", "a1"))
    bob = room.replica("bob")
    before = bob.get_state()
    delete(0)(bob.get("messages", type=Array))  # offline: the server has not seen it
    offline = bob.get_update(before)
    for _ in range(3):  # each reconnect sends it again (sync step 2)
        clocks = decode_state_vector(room.doc.get_state())
        room.rules.start(Writer("bob"), offline, clocks)
        room.doc.apply_update(offline)
        outcome = room.rules.finish()
        if outcome is not None:
            room.refusals.append(outcome[1])
        bob.apply_update(room.doc.get_update(bob.get_state()))
    assert room.texts() == ["a1"] == room.texts("bob")
    assert room.refusals == ["rule: only the author can delete messages[0]"]
    room.send("bob", post("b1"))  # a later allowed edit goes through
    assert room.texts() == ["a1", "b1"]
