"""Random rule sets and random edits by several users on pycrdt replicas: after every
step all replicas converge, and the protected root holds exactly what a reference model
of the rules allows (deletes aimed at others' entries, overwrites, posts in another's
name, reactions set for others, stale replays of old structs and deletions)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map

from engine.rules.enforce import RoomRules, Writer, check_enforceable
from engine.rules.model import PartRule, parse_rules

USERS = ("u0", "u1", "u2")


@dataclass(frozen=True)
class RuleSet:
    writers: tuple[str, ...] | None  # None: anyone
    append_only: bool
    by_author: bool
    moderator: bool  # u2 moderates (with by_author)
    own_reactions: bool

    def toml(self) -> str:
        lines = []
        if self.writers is not None or self.append_only or self.by_author:
            lines = ["[[rule]]", "path = 'messages'"]
        if self.writers is not None:
            lines.append(f"write = {list(self.writers)!r}")
        if self.append_only:
            lines.append("append_only = true")
        if self.by_author:
            lines += ["entries = 'author'", "author_field = 'user'"]
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


class Room:
    def __init__(self, rules: tuple[PartRule, ...]) -> None:
        self.server: Doc[Any] = Doc()
        self.rules = RoomRules(self.server, rules)
        self.replicas: dict[str, Doc[Any]] = {user: Doc() for user in USERS}
        self.history: list[bytes] = [bytes(self.server.get_update())]

    def send(self, user: str, update: bytes) -> None:
        self.rules.start(Writer(user))
        self.server.apply_update(update)
        outcome = self.rules.finish()
        for replica in self.replicas.values():
            replica.apply_update(update)
            if outcome is not None:
                replica.apply_update(outcome[0])
        self.history.append(bytes(self.server.get_update()))

    def edit(self, user: str, change: Any) -> None:
        doc = self.replicas[user]
        updates: list[bytes] = []
        subscription = doc.observe(lambda event: updates.append(bytes(event.update)))
        with doc.transaction():
            change(doc.get("messages", type=Array))
        doc.unobserve(subscription)
        for update in updates:
            self.send(user, update)

    def view(self, doc: Doc[Any]) -> list[Any]:
        return doc.get("messages", type=Array).to_py() or []


class Model:
    """What the rules allow, on plain values."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.messages: list[dict[str, Any]] = []

    def may_write(self, user: str) -> bool:
        return self.rules.writers is None or user in self.rules.writers

    def may_change(self, user: str, message: dict[str, Any]) -> bool:
        if not self.may_write(user) or self.rules.append_only:
            return False
        if not self.rules.by_author:
            return True
        return message["user"] == user or (self.rules.moderator and user == "u2")

    def post(self, user: str, author: str, text: str) -> None:
        if self.may_write(user) and (not self.rules.by_author or author == user):
            self.messages.append({"user": author, "text": text, "reactions": {}})

    def delete(self, user: str, at: int) -> None:
        if self.may_change(user, self.messages[at]):
            del self.messages[at]

    def text(self, user: str, at: int, text: str) -> None:
        if self.may_change(user, self.messages[at]):
            self.messages[at]["text"] = text

    def react(self, user: str, at: int, key: str, on: bool) -> None:
        reactions = self.messages[at]["reactions"]
        if on == (key in reactions):
            return  # no change, nothing to judge
        allowed = (
            key.endswith("\t" + user)
            if self.rules.own_reactions
            else self.may_change(user, self.messages[at])
        )
        if allowed:
            if on:
                reactions[key] = True
            else:
                del reactions[key]


def _set_reaction(messages: Array[Any], at: int, key: str, on: bool) -> None:
    reactions = messages[at]["reactions"]
    if on:
        reactions[key] = True
    elif key in reactions:
        del reactions[key]


Step = tuple[str, int, int, int, bool]


def apply_step(room: Room, model: Model, n: int, step: Step) -> None:
    kind, who, other, which, on = step
    user, named = USERS[who], USERS[other]
    count = len(model.messages)
    at = which % count if count else 0
    if kind == "post":
        text = f"m{n}"
        room.edit(user, lambda m: m.append(Map({"user": named, "text": text, "reactions": Map()})))
        model.post(user, named, text)
    elif kind == "replay":  # an old state of the room, sent again as this user
        room.send(user, room.history[which % len(room.history)])
    elif not count:
        return
    elif kind == "delete":
        room.edit(user, lambda m: m.__delitem__(at))
        model.delete(user, at)
    elif kind == "text":
        room.edit(user, lambda m: m[at].__setitem__("text", f"t{n}"))
        model.text(user, at, f"t{n}")
    else:
        key = "👍\t" + named
        room.edit(user, lambda m: _set_reaction(m, at, key, on))
        model.react(user, at, key, on)


def run(rules: RuleSet, steps: list[Step]) -> None:
    parsed = rules.parsed()
    check_enforceable(parsed)
    room, model = Room(parsed), Model(rules)
    for n, step in enumerate(steps):
        apply_step(room, model, n, step)
        server = room.view(room.server)
        for replica in room.replicas.values():
            assert room.view(replica) == server
        assert server == model.messages, (step, server, model.messages)


@settings(max_examples=300, deadline=None)
@given(rules=rule_sets, steps=actions)
def test_random_rules_and_edits_hold_the_model_and_converge(
    rules: RuleSet, steps: list[Step]
) -> None:
    run(rules, steps)
