"""`entries = "author"` without `author_field` on a map root: a key's value is the user's
its item's client id is bound to. On pycrdt replicas against the rules alone: overwriting,
deleting or changing inside another user's entry is undone, one's own goes through, an
entry an undo puts back stays its author's, an entry of an unbound client id is the
moderators' alone, and hand-crafted or replayed updates change nothing of that."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Doc, Map, Text

from engine.rules.authors import encode_delete_set
from engine.rules.enforce import check_enforceable
from engine.rules.map_entries import Placements, current_entries
from engine.rules.model import parse_rules
from engine.update_scan import StructHead, read_delete_set
from tests.rules.rooms import RulesRoom

RULES = """
[[rule]]
path = "notes"
type = "map"
entries = "author"
moderators = ["role:admin"]
"""

Edit = Callable[[Map[Any]], object]


class Room(RulesRoom):
    """The rule above; users send changes of the `notes` map."""

    def __init__(self) -> None:
        rules = parse_rules(RULES).rules
        check_enforceable(rules)
        super().__init__(rules, {"notes": Map})

    def post(self, user: str, edit: Edit, *, bound: bool = True) -> None:
        self.edit(user, lambda doc: edit(doc.get("notes", type=Map)), bound=bound)

    def notes(self, user: str | None = None) -> dict[str, Any]:
        doc = self.doc if user is None else self.replicas[user]
        return dict(doc.get("notes", type=Map).to_py())


def put(key: str, value: Any) -> Edit:
    return lambda notes: notes.__setitem__(key, value)


def delete(key: str) -> Edit:
    return lambda notes: notes.pop(key)


def note(text: str) -> Map[Any]:
    return Map({"text": Text(text), "seen": Map()})


def test_overwriting_or_deleting_anothers_entry_is_undone_and_ones_own_goes() -> None:
    room = Room()
    room.post("ann", put("a", "ann's"))
    room.post("bob", put("a", "bob's"))
    room.post("bob", delete("a"))
    assert room.notes() == {"a": "ann's"} == room.notes("bob")
    assert room.refusals == [
        "rule: only the author can change notes['a']",
        "rule: only the author can delete notes['a']",
    ]
    room.post("bob", put("b", "bob's"))  # a new key: anyone
    room.post("ann", put("a", "ann's, again"))
    room.post("bob", delete("b"))
    assert room.converged() == {"notes": {"a": "ann's, again"}}
    assert len(room.refusals) == 2


def test_changing_inside_anothers_entry_is_undone() -> None:
    room = Room()
    room.post("ann", put("a", note("hello")))
    room.post("bob", lambda notes: notes["a"]["text"].insert(0, "pwned "))
    room.post("bob", lambda notes: notes["a"]["seen"].__setitem__("bob", True))
    room.post("bob", lambda notes: notes["a"].__setitem__("text", "gone"))
    assert room.converged() == {"notes": {"a": {"text": "hello", "seen": {}}}}
    assert room.refusals == ["rule: only the author can change notes['a']"] * 3
    room.post("ann", lambda notes: notes["a"]["text"].insert(5, "!"))
    room.post("ann", lambda notes: notes["a"]["seen"].__setitem__("ann", True))
    assert room.converged() == {"notes": {"a": {"text": "hello!", "seen": {"ann": True}}}}
    assert len(room.refusals) == 3


def test_an_entry_put_back_by_an_undo_stays_its_authors() -> None:
    room = Room()
    room.post("ann", put("a", note("hello")))
    room.post("bob", lambda notes: notes["a"]["text"].insert(0, "x"))  # the whole text back
    room.post("bob", delete("a"))  # put back under the server's id
    assert room.authorship.ranges, "the puts back are recorded for ann"
    room.post("bob", put("a", "bob's"))
    room.post("bob", lambda notes: notes["a"]["seen"].__setitem__("bob", True))
    assert room.converged() == {"notes": {"a": {"text": "hello", "seen": {}}}}
    assert len(room.refusals) == 4
    room.post("ann", lambda notes: notes["a"]["seen"].__setitem__("ann", True))
    room.post("ann", put("a", "ann's"))
    assert room.converged() == {"notes": {"a": "ann's"}}
    room.post("ann", delete("a"))
    assert room.converged() == {"notes": {}}
    assert len(room.refusals) == 4


def test_an_entry_of_an_unbound_client_id_is_the_moderators_alone() -> None:
    room = Room()
    room.post("legacy", put("old", "x"), bound=False)
    room.post("legacy", put("old", "y"), bound=False)  # not even its unbound writer
    room.post("ann", delete("old"))
    assert room.notes() == {"old": "x"}
    room.post("mod", put("old", "moderated"))
    room.post("mod", delete("old"))
    assert room.converged() == {"notes": {}}


def test_a_moderator_changes_anyones_entry_and_it_stays_the_moderators() -> None:
    room = Room()
    room.post("ann", put("a", note("hello")))
    room.post("mod", lambda notes: notes["a"]["text"].insert(0, "[ok] "))
    room.post("mod", put("a", "replaced"))
    room.post("ann", delete("a"))  # the value is the moderator's now
    assert room.converged() == {"notes": {"a": "replaced"}}
    assert room.refusals == ["rule: only the author can delete notes['a']"]


def bobs_offline_overwrite(room: Room) -> bytes:
    """Ann sets `a`; bob overwrites it on his replica (the server has not seen it yet)."""
    room.post("ann", put("a", "ann's"))
    bob = room.replica("bob")
    before = bob.get_state()
    bob.get("notes", type=Map)["a"] = "bob's"
    return bob.get_update(before)


def test_an_overwrite_that_does_not_name_the_old_value_is_still_judged() -> None:
    room = Room()
    update = bobs_offline_overwrite(room)
    at, ranges = read_delete_set(update)
    assert ranges, "a plain overwrite names the old value"
    room.send("bob", update[:at] + b"\x00")  # the same struct, no delete set
    assert room.converged() == {"notes": {"a": "ann's"}}
    assert room.refusals == ["rule: only the author can change notes['a']"]


def test_a_delete_set_aimed_at_anothers_entry_is_undone() -> None:
    room = Room()
    room.post("ann", put("a", "ann's"))
    room.post("bob", put("b", "bob's"))
    client, clock = current_entries(room.doc.get_update(), "notes")["a"]
    room.send("bob", encode_delete_set([(client, clock, 1)]))
    assert room.converged() == {"notes": {"a": "ann's", "b": "bob's"}}
    assert room.refusals == ["rule: only the author can delete notes['a']"]


def test_an_offline_overwrite_replayed_is_undone_once() -> None:
    room = Room()
    offline = bobs_offline_overwrite(room)
    for _ in range(3):  # each reconnect sends it again (sync step 2)
        room.send("bob", offline)
    assert room.converged() == {"notes": {"a": "ann's"}}
    assert room.refusals == ["rule: only the author can change notes['a']"]
    room.post("bob", put("b", "bob's"))  # a later allowed edit goes through
    assert room.converged() == {"notes": {"a": "ann's", "b": "bob's"}}


USERS = ("ann", "bob", "mod")
KEYS = ("a", "b", "c")
step = st.tuples(
    st.sampled_from(USERS),
    st.sampled_from(("put", "delete", "inside")),
    st.sampled_from(KEYS),
    st.booleans(),  # the user's replica first takes in what it missed (else: concurrent)
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=1, max_size=12))
def test_each_keys_item_and_author_follow_any_edits(steps: list[Any]) -> None:
    """After every update (concurrent ones too, and each refusal's undo): the item the
    rules hold for a key is the one the state says (or the key waits to be read again),
    every value is still its writer's (`by`), only its writer or the moderator marked it
    `seen`, and every replica converges."""
    room = Room()
    entries = room.rules.parts[0].entries
    assert entries is not None
    for user, kind, key, catch_up in steps:
        replica = room.replica(user)
        if catch_up:
            replica.apply_update(room.doc.get_update(replica.get_state()))
        if kind == "inside" and key not in replica.get("notes", type=Map):
            continue
        prior = room.notes().get(key)
        room.post(user, _edit(kind, key, user))
        if catch_up:  # not concurrent: the model says what the key holds now
            assert room.notes().get(key) == _model(kind, user, prior)
        found = current_entries(bytes(room.doc.get_update()), "notes")
        stale = set(found) if entries.stale is None else entries.stale  # None: no writer yet
        assert set(entries.items) <= set(found)
        for name, item in found.items():
            assert name in stale or entries.items[name] == item
            value = room.doc.get("notes", type=Map)[name].to_py()
            assert room.authorship.author(*item) == value["by"]
            assert set(value["seen"]) <= {value["by"], "mod"}
    for user in USERS:
        replica = room.replica(user)
        replica.apply_update(room.doc.get_update(replica.get_state()))
    room.converged()


def _model(kind: str, user: str, prior: dict[str, Any] | None) -> dict[str, Any] | None:
    """What a key holding `prior` holds after `user`'s edit of its current value: only
    its writer (`by`) or the moderator may overwrite, delete or change it; anyone may
    set a key that holds nothing."""
    if prior is not None and user not in (prior["by"], "mod"):
        return prior
    if kind == "put":
        return {"by": user, "seen": {}}
    if kind == "delete" or prior is None:
        return None
    return {**prior, "seen": {**prior["seen"], user: True}}


def _edit(kind: str, key: str, user: str) -> Edit:
    if kind == "put":
        return put(key, Map({"by": user, "seen": Map()}))
    if kind == "delete":
        return lambda notes: notes.pop(key, None)
    return lambda notes: notes[key]["seen"].__setitem__(user, True)


def test_the_entries_are_read_from_a_stored_state() -> None:
    doc: Doc[Any] = Doc()
    notes = doc.get("notes", type=Map)
    for round_ in range(50):  # a long chain of sets of one key
        notes["k"] = round_
    notes["gone"] = 1
    del notes["gone"]
    found = current_entries(doc.get_update(), "notes")
    assert list(found) == ["k"]
    assert found["k"][0] == doc.client_id


def test_a_refusal_leaves_no_key_to_read_again() -> None:
    """What an undo puts back is read from the undo itself: a flood of refused edits does
    not make the next edit read the whole room."""
    room = Room()
    room.post("ann", put("a", note("hello")))
    room.post("ann", put("b", "ann's"))
    entries = room.rules.parts[0].entries
    assert entries is not None
    for edit in (put("a", "bob's"), delete("b"), lambda n: n["a"]["text"].insert(0, "x")):
        room.post("bob", edit)
        assert entries.stale == set()
        assert entries.items == current_entries(room.doc.get_update(), "notes")
    assert len(room.refusals) == 3


def test_structs_whose_origins_loop_have_no_place() -> None:
    """No integrated state has such a loop; reading one must still end."""
    looped = [StructHead(1, 0, 1, 4, origin=(2, 0)), StructHead(2, 0, 1, 4, origin=(1, 0))]
    placements = Placements(looped)
    assert [placements.of(head) for head in looped] == [(None, None), (None, None)]
