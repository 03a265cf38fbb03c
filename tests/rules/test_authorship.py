"""`entries = "author"` without `author_field`: an entry of an array root is its author's,
the user its item's client id is bound to. On pycrdt replicas against the rules alone:
deleting or changing another user's entry is undone, one's own goes through, an entry an
undo re-inserts stays its author's, and an entry of an unbound client id is the
moderators' alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Array, Map, Text

from engine.errors import RulesInvalid
from engine.rules.enforce import check_enforceable
from engine.rules.model import parse_rules
from tests.rules.rooms import RulesRoom, on_messages

RULES = """
[[rule]]
path = "messages"
entries = "author"
moderators = ["role:admin"]
"""

Edit = Callable[[Array[Any]], object]


class Room(RulesRoom):
    """The rule above; users send changes of `messages`."""

    def __init__(self) -> None:
        rules = parse_rules(RULES).rules
        check_enforceable(rules)
        super().__init__(rules)

    def post(self, user: str, edit: Edit, *, bound: bool = True) -> None:
        self.edit(user, on_messages(edit), bound=bound)

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
        room.post(user, post(text))
    return room


def test_deleting_anothers_entry_is_undone_and_ones_own_goes() -> None:
    room = room_with(("ann", "a1"), ("bob", "b1"))
    room.post("bob", delete(0))
    assert room.texts() == ["a1", "b1"]
    assert room.refusals == ["rule: only the author can delete messages[0]"]
    room.post("bob", delete(1))
    assert room.texts() == ["a1"] == room.texts("bob") == room.texts("ann")
    assert len(room.refusals) == 1


def test_changing_inside_anothers_entry_is_undone() -> None:
    room = room_with(("ann", "a1"))
    room.post("bob", lambda messages: messages[0]["text"].insert(0, "pwned "))
    room.post("bob", lambda messages: messages[0]["seen"].__setitem__("bob", True))
    assert room.texts() == ["a1"] == room.texts("bob")
    assert room.doc.get("messages", type=Array)[0]["seen"].to_py() == {}
    assert room.refusals == ["rule: only the author can change messages[0]"] * 2
    room.post("ann", lambda messages: messages[0]["text"].insert(2, "!"))
    assert room.texts() == ["a1!"] == room.texts("bob")


def test_an_entry_put_back_by_an_undo_stays_its_authors() -> None:
    room = room_with(("ann", "a1"))
    room.post("bob", delete(0))  # undone: the server re-inserts it under its own id
    assert room.texts() == ["a1"]
    assert room.authorship.ranges, "the re-insertion is recorded for ann"
    room.post("bob", lambda messages: messages[0]["text"].insert(0, "x"))
    room.post("bob", delete(0))
    assert room.texts() == ["a1"]
    room.post("ann", lambda messages: messages[0]["text"].insert(2, "?"))
    room.post("ann", delete(0))
    assert room.texts() == [] == room.texts("bob")
    assert len(room.refusals) == 3


def test_an_entry_of_an_unbound_client_id_is_the_moderators_alone() -> None:
    room = Room()
    room.post("legacy", post("old"), bound=False)
    room.post("legacy", delete(0), bound=False)  # not even its unbound writer
    room.post("ann", delete(0))
    assert room.texts() == ["old"]
    room.post("mod", delete(0))
    assert room.texts() == [] == room.texts("ann")


def test_one_update_deleting_entries_of_several_authors_undoes_only_theirs() -> None:
    room = room_with(("ann", "a1"), ("bob", "b1"), ("ann", "a2"))
    room.post("ann", lambda messages: messages[1]["seen"].__setitem__("ann", True))
    assert room.texts() == ["a1", "b1", "a2"]  # inside bob's: undone
    room.post("bob", lambda messages: messages[0]["seen"].__setitem__("bob", True))
    room.post("ann", lambda messages: [delete(2)(messages), delete(1)(messages)])
    assert room.texts() == ["a1", "b1"] == room.texts("ann")
    # b1 is now the server's re-insertion, recorded as bob's: he deletes it
    room.post("bob", delete(1))
    assert room.texts() == ["a1"]


def test_deleting_ones_own_entry_holding_anothers_items() -> None:
    room = room_with(("bob", "b1"))
    room.post("mod", lambda messages: messages[0]["seen"].__setitem__("mod", True))
    assert room.doc.get("messages", type=Array)[0]["seen"].to_py() == {"mod": True}
    room.post("bob", delete(0))  # removes mod's item too: two authors, bob's entry
    assert room.texts() == [] == room.texts("mod")
    assert len(room.refusals) == 0


@pytest.mark.parametrize(
    "text",
    [
        '[[rule]]\npath = "boards[*].cards"\nentries = "author"\n',
        '[[rule]]\npath = "notes.pinned"\nentries = "author"\n',
        '[[rule]]\npath = "minutes"\ntype = "text"\nentries = "author"\n',
    ],
)
def test_authorship_by_client_id_is_refused_where_it_is_not_enforced(text: str) -> None:
    with pytest.raises(RulesInvalid, match="array or map root|text root"):
        check_enforceable(parse_rules(text).rules)


def test_an_offline_delete_replayed_is_undone_once() -> None:
    room = room_with(("ann", "a1"))
    bob = room.replica("bob")
    before = bob.get_state()
    delete(0)(bob.get("messages", type=Array))  # offline: the server has not seen it
    offline = bob.get_update(before)
    for _ in range(3):  # each reconnect sends it again (sync step 2)
        room.send("bob", offline)
    assert room.texts() == ["a1"] == room.texts("bob")
    assert room.refusals == ["rule: only the author can delete messages[0]"]
    room.post("bob", post("b1"))  # a later allowed edit goes through
    assert room.texts() == ["a1", "b1"]
