"""Random rule sets and random edits by several users on pycrdt replicas: after every
step all replicas converge, and the protected root holds exactly what a reference model
of the rules allows (deletes aimed at others' entries, overwrites, posts in another's
name, reactions set for others, stale replays of old structs and deletions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc

from engine.rules.enforce import check_enforceable
from engine.rules.model import PartRule, parse_rules
from tests.rules.attack_rig import message
from tests.rules.models import MessagesModel
from tests.rules.rooms import RulesRoom, on_messages

USERS = ("u0", "u1", "u2")


@dataclass(frozen=True)
class RuleSet:
    writers: tuple[str, ...] | None  # None: anyone
    append_only: bool
    by_author: bool
    moderator: bool  # u2 moderates (with by_author)
    own_reactions: bool
    by_client_id: bool = False  # (with by_author) the poster is the author, not `user`

    def toml(self) -> str:
        lines = []
        if self.writers is not None or self.append_only or self.by_author:
            lines = ["[[rule]]", "path = 'messages'"]
        if self.writers is not None:
            lines.append(f"write = {list(self.writers)!r}")
        if self.append_only:
            lines.append("append_only = true")
        if self.by_author:
            lines.append("entries = 'author'")
            if not self.by_client_id:
                lines.append("author_field = 'user'")
            if self.moderator:
                lines.append("moderators = ['u2']")
        if self.own_reactions:
            lines += ["[[rule]]", "path = 'messages[*].reactions'", 'user_keys = "\\t"']
        return "\n".join(lines) + "\n"

    def parsed(self) -> tuple[PartRule, ...]:
        return parse_rules(self.toml()).rules


rule_sets = st.builds(
    RuleSet,
    writers=st.one_of(st.none(), st.sampled_from([("u0", "u1"), ("u0",)])),
    append_only=st.booleans(),
    by_author=st.booleans(),
    moderator=st.booleans(),
    own_reactions=st.booleans(),
    by_client_id=st.booleans(),
)
actions = st.lists(
    st.tuples(
        st.sampled_from(["post", "delete", "text", "react", "replay"]),
        st.integers(0, 2),  # who
        st.integers(0, 2),  # claimed author / reaction user
        st.integers(0, 5),  # which message
        st.booleans(),  # reaction on/off
    ),
    min_size=1,
    max_size=12,
)


class Room(RulesRoom):
    """Every user's replica from the start; each state of the room kept for replays."""

    def __init__(self, rules: tuple[PartRule, ...]) -> None:
        super().__init__(rules)
        for user in USERS:
            self.replica(user)
        self.history: list[bytes] = [bytes(self.doc.get_update())]

    def send(self, user: str, update: bytes) -> bytes | None:
        undo = super().send(user, update)
        self.history.append(bytes(self.doc.get_update()))
        return undo

    def messages(self, doc: Doc[Any]) -> list[Any]:
        return doc.get("messages", type=Array).to_py() or []


def _set_reaction(messages: Array[Any], at: int, key: str, on: bool) -> None:
    reactions = messages[at]["reactions"]
    if on:
        reactions[key] = True
    elif key in reactions:
        del reactions[key]


Step = tuple[str, int, int, int, bool]


def apply_step(room: Room, model: MessagesModel, n: int, step: Step) -> None:
    kind, who, other, which, on = step
    user, named = USERS[who], USERS[other]
    count = len(model.messages)
    at = which % count if count else 0
    if kind == "post":
        text = f"m{n}"
        room.edit(user, on_messages(lambda m: m.append(message(named, text))))
        model.post(user, named, text)
    elif kind == "replay":  # an old state of the room, sent again as this user
        room.send(user, room.history[which % len(room.history)])
    elif not count:
        return
    elif kind == "delete":
        room.edit(user, on_messages(lambda m: m.__delitem__(at)))
        model.delete(user, at)
    elif kind == "text":
        room.edit(user, on_messages(lambda m: m[at].__setitem__("text", f"t{n}")))
        model.text(user, at, f"t{n}")
    else:
        key = "👍\t" + named
        room.edit(user, on_messages(lambda m: _set_reaction(m, at, key, on)))
        model.react(user, at, key, on)


def run(rules: RuleSet, steps: list[Step]) -> None:
    parsed = rules.parsed()
    check_enforceable(parsed)
    room, model = Room(parsed), MessagesModel(rules)
    for n, step in enumerate(steps):
        apply_step(room, model, n, step)
        server = room.messages(room.doc)
        for replica in room.replicas.values():
            assert room.messages(replica) == server
        assert server == model.messages, (step, server, model.messages)


@settings(max_examples=300, deadline=None)
@given(rules=rule_sets, steps=actions)
def test_random_rules_and_edits_hold_the_model_and_converge(
    rules: RuleSet, steps: list[Step]
) -> None:
    run(rules, steps)
