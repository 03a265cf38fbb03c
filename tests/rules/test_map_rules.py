"""Rules on map roots and on deeper paths (`boards[*].cards`), on pycrdt replicas: a
forbidden part of an update is undone exactly (keys put back, entries re-inserted where
they were, deep in the tree), allowed parts stay, and every replica converges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from engine.errors import UpdateRejected
from engine.rules.enforce import check_enforceable
from engine.rules.model import parse_rules
from tests.rules.rooms import RulesRoom

RULES = """
[[rule]]
path = "profiles"
user_keys = ""              # profiles[NAME] is set only by NAME

[[rule]]
path = "settings"
type = "map"
write = ["role:admin"]

[[rule]]
path = "ledger"
type = "map"
append_only = true          # new keys only

[[rule]]
path = "notes"
type = "map"
entries = "author"
author_field = "by"
moderators = ["role:admin"]

[[rule]]
path = "boards[*].cards"
entries = "author"
author_field = "by"

[[rule]]
path = "boards[*].cards[*].votes"
user_keys = ""
"""
ROOTS = {"profiles": Map, "settings": Map, "ledger": Map, "notes": Map, "boards": Array}


class Room(RulesRoom):
    """The rules above on a map root and deeper paths."""

    def __init__(self, text: str = RULES) -> None:
        rules = parse_rules(text).rules
        check_enforceable(rules)
        super().__init__(rules, ROOTS)


def root(name: str) -> Callable[[Doc[Any]], Any]:
    return lambda doc: doc.get(name, type=ROOTS[name])


def test_user_keys_on_a_map_root() -> None:
    room = Room()
    room.edit("ann", lambda d: root("profiles")(d).update({"ann": Map({"bio": "hi"})}))
    room.edit("bo", lambda d: root("profiles")(d).update({"ann": "pwned", "bo": "me"}))
    room.edit("bo", lambda d: root("profiles")(d)["ann"].__setitem__("bio", "pwned"))
    room.edit("bo", lambda d: root("profiles")(d).pop("ann"))
    assert room.refusals == ["rule: only its own user can set profiles['ann']"] * 3
    assert room.converged()["profiles"] == {"ann": {"bio": "hi"}, "bo": "me"}
    room.edit("ann", lambda d: root("profiles")(d).pop("ann"))
    assert room.converged()["profiles"] == {"bo": "me"} and len(room.refusals) == 3


def test_a_map_root_writable_by_a_role_only() -> None:
    room = Room()
    room.edit("mod", lambda d: root("settings")(d).update({"theme": "dark"}))
    room.edit("bo", lambda d: root("settings")(d).update({"theme": "pink", "new": 1}))
    room.edit("bo", lambda d: root("settings")(d).pop("theme"))
    assert room.refusals == ["rule: settings is not writable by you"] * 2
    assert room.converged()["settings"] == {"theme": "dark"}


def test_an_append_only_map_root_takes_new_keys_only() -> None:
    room = Room()
    room.edit("ann", lambda d: root("ledger")(d).update({"1": 10, "2": 20}))
    room.edit("bo", lambda d: root("ledger")(d).update({"1": 0, "3": 30}))  # overwrite + new
    room.edit("ann", lambda d: root("ledger")(d).pop("2"))
    assert room.refusals == ["rule: ledger is append-only"] * 2
    assert room.converged()["ledger"] == {"1": 10, "2": 20, "3": 30}


def test_author_only_entries_of_a_map_root() -> None:
    room = Room()
    note = Map({"by": "ann", "text": Text("mine")})
    room.edit("ann", lambda d: root("notes")(d).update({"n1": note}))
    room.edit("bo", lambda d: root("notes")(d).update({"n1": Map({"by": "bo", "text": "x"})}))
    room.edit("bo", lambda d: root("notes")(d)["n1"]["text"].insert(0, "not "))
    room.edit("bo", lambda d: root("notes")(d).pop("n1"))
    room.edit("bo", lambda d: root("notes")(d).update({"n2": Map({"by": "ann"})}))
    room.edit("ann", lambda d: root("notes")(d)["n1"].__setitem__("by", "bo"))
    assert room.refusals == [
        "rule: only the author can change notes['n1']",
        "rule: only the author can change notes['n1']",
        "rule: only the author can delete notes['n1']",
        "rule: notes['n2'].by must be your name",
        "rule: notes['n1'].by cannot change",
    ]
    assert room.converged()["notes"] == {"n1": {"by": "ann", "text": "mine"}}
    room.edit("mod", lambda d: root("notes")(d).pop("n1"))  # a moderator may
    assert room.converged()["notes"] == {} and len(room.refusals) == 5


def card(by: str, text: str) -> Map[Any]:
    return Map({"by": by, "text": Text(text), "votes": Map()})


def test_deeper_paths_are_judged_where_they_are() -> None:
    room = Room()
    room.edit("ann", lambda d: root("boards")(d).append(Map({"cards": Array([card("ann", "a")])})))
    room.edit("bo", lambda d: root("boards")(d)[0]["cards"].append(card("bo", "b")))
    room.edit("bo", lambda d: root("boards")(d)[0]["cards"][1]["votes"].update({"bo": 1}))
    room.edit("bo", lambda d: root("boards")(d)[0]["cards"][0]["votes"].update({"ann": 1}))
    room.edit("bo", lambda d: root("boards")(d)[0]["cards"][0]["text"].insert(1, "!"))

    def insert_board_and_delete_anns_card(doc: Doc[Any]) -> None:
        boards = root("boards")(doc)
        boards.insert(0, Map({"cards": Array([card("bo", "c")])}))
        del boards[1]["cards"][0]  # ann's card, now in the second board

    room.edit("bo", insert_board_and_delete_anns_card)
    assert room.refusals == [
        "rule: only its own user can set boards[0].cards[0].votes['ann']",
        "rule: only the author can change boards[0].cards[0]",
        "rule: only the author can delete boards[1].cards[0]",
    ]
    assert room.converged()["boards"] == [
        {"cards": [{"by": "bo", "text": "c", "votes": {}}]},
        {"cards": [{"by": "ann", "text": "a", "votes": {}},
                   {"by": "bo", "text": "b", "votes": {"bo": 1.0}}]},
    ]  # fmt: skip
    room.edit("ann", lambda d: root("boards")(d)[1]["cards"].__delitem__(0))
    assert len(room.refusals) == 3
    assert room.converged()["boards"][1]["cards"] == [
        {"by": "bo", "text": "b", "votes": {"bo": 1.0}}
    ]


def test_a_map_root_keeps_its_kind() -> None:
    """A root the rules read as a map (here: `user_keys`, no `type`) refuses an update
    writing it as an array, whole, like an explicit `type`."""
    room = Room()
    attacker: Doc[Any] = Doc()
    attacker.get("profiles", type=Array).append("x")
    with pytest.raises(UpdateRejected, match="profiles must stay a map"):
        room.send("bo", attacker.get_update())
    assert room.view()["profiles"] == {}
