"""Rules hold against attackers, on a room's real actor: random rule sets (author-only
messages, writers, append-only, per-user reactions, per-user profiles on a map root
(or profiles changed only by who set them, by client id),
explicit or implied `type`, a `Hooks.check`) and random steps by three users, two of them
stock Yjs replicas in Node and one a pycrdt replica, plus hand-crafted updates: structs
under another user's client id, delete sets aimed at a protected message, a root written
as another type, structs that wait for a missing dependency (whose dependency arrives
later in someone else's update), stale replays.

After every step every replica equals the server, and the server equals a reference
model of what the rules allow."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Array, Doc, Map, Text

from engine.protocol import Update
from engine.rules.model import Rules, parse_rules
from engine.update_scan import iter_structs
from server.hooks import Edit, Hooks, Verdict
from tests.rules.attack_rig import (
    AttackRoom,
    NodeUser,
    NodeUsers,
    PyUser,
    attack_room,
    delete_set_update,
    message,
    view,
)
from tests.rules.models import MessagesModel

USERS = ("u0", "u1", "u2")
NODE = ("u1", "u2")


def _bad(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("bad")
    if isinstance(value, dict):
        return any(_bad(item) for item in value.values())
    return False


class NoBadWords(Hooks):
    """What a rules file cannot say: no value starting with "bad", anywhere."""

    def check(self, edit: Edit) -> Verdict:
        if any(_bad(change.value) for change in edit.changes if change.kind != "delete"):
            return Verdict.refuse("no bad words")
        return Verdict()


@dataclass(frozen=True)
class RuleSet:
    writers: tuple[str, ...] | None  # None: anyone
    append_only: bool
    by_author: bool
    moderator: bool  # u2 moderates (with by_author)
    own_reactions: bool
    own_profiles: bool  # profiles[NAME] only by NAME (a map root, implied type)
    typed: bool  # messages: type = "array" stated
    check: bool  # the NoBadWords hook
    by_client_id: bool = False  # authors are named in `user` here
    profiles_by_author: bool = False  # a profile is changed only by who set it (client id)

    def toml(self) -> str:
        lines = []
        main = []
        if self.writers is not None:
            main.append(f"write = {list(self.writers)!r}")
        if self.append_only:
            main.append("append_only = true")
        if self.by_author:
            main += ["entries = 'author'", "author_field = 'user'"]
            if self.moderator:
                main.append("moderators = ['u2']")
        if self.typed:
            main.append("type = 'array'")
        if main:
            lines += ["[[rule]]", "path = 'messages'", *main]
        if self.own_reactions:
            lines += ["[[rule]]", "path = 'messages[*].reactions'", 'user_keys = "\\t"']
        if self.own_profiles:
            lines += ["[[rule]]", "path = 'profiles'", 'user_keys = ""']
        if self.profiles_by_author:
            lines += ["[[rule]]", "path = 'profiles'", "type = 'map'", "entries = 'author'"]
            lines += ["moderators = ['u2']"] if self.moderator else []
        return "\n".join(lines) + "\n"

    def parsed(self) -> Rules:
        return parse_rules(self.toml())

    @property
    def judged(self) -> bool:
        """Whether the room judges updates at all (rules or the hook)."""
        return self.check or bool(self.parsed().rules)

    @property
    def messages_kept(self) -> bool:
        """Whether `messages` keeps its kind (a judged or typed root)."""
        return self.typed or self.writers is not None or self.append_only or self.by_author


rule_sets = st.builds(
    RuleSet,
    writers=st.one_of(st.none(), st.sampled_from([("u0", "u1"), ("u1",)])),
    append_only=st.booleans(),
    by_author=st.booleans(),
    moderator=st.booleans(),
    own_reactions=st.booleans(),
    own_profiles=st.booleans(),
    typed=st.booleans(),
    check=st.booleans(),
    profiles_by_author=st.booleans(),
)
KINDS = ["post", "delete", "text", "react", "profile", "replay"] * 2 + [
    "forge",
    "delete_set",
    "retype",
    "missing",
]
Step = tuple[str, int, int, int, bool]
step = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 2),  # who
    st.integers(0, 2),  # claimed author / reaction user / victim
    st.integers(0, 7),  # which message / which state
    st.booleans(),  # on/off, or a bad word
)


class Model(MessagesModel):
    """What the rules allow, on plain values: the messages, and the profiles."""

    def __init__(self, rules: RuleSet) -> None:
        super().__init__(rules)
        self.rules: RuleSet = rules
        self.profiles: dict[str, str] = {}
        self.profile_authors: dict[str, str] = {}  # who set each profile's value

    def state(self) -> dict[str, Any]:
        return {"messages": self.messages, "profiles": self.profiles}

    def checked(self, value: Any) -> bool:
        return not (self.rules.check and _bad(value))

    def profile(self, user: str, key: str, value: str | None) -> None:
        if not self.checked(value) or (self.rules.own_profiles and key != user):
            return
        held_by = self.profile_authors.get(key, user)
        moderates = self.rules.moderator and user == "u2"
        if self.rules.profiles_by_author and held_by != user and not moderates:
            return
        if value is None:
            self.profiles.pop(key, None)
            self.profile_authors.pop(key, None)
        else:
            self.profiles[key] = value
            self.profile_authors[key] = user


@pytest.fixture(scope="module")
def node() -> Iterator[NodeUsers]:
    users = NodeUsers()
    yield users
    users.close()


async def check_converged(room: AttackRoom, model: Model, step: Step) -> None:
    server = view(room.server_doc)
    assert server == model.state(), (step, server, model.state())
    for name, user in room.users.items():
        assert user.state() == server, (name, step)


def _message_items(update: bytes) -> list[tuple[int, int]]:
    """The ids of the live map structs with no key (candidates for messages)."""
    return [
        (head.client, head.clock)
        for head in iter_structs(update)
        if head.kind == 7 and head.type_ref == 1 and head.parent_sub is None
    ]


def aimed_delete_set(room: AttackRoom, at: int) -> bytes | None:
    """A delete set naming exactly the struct of message `at` (found by trying each
    candidate on a scratch copy of the room)."""
    state = room.server_update()
    before = view(room.server_doc)["messages"]
    for client, clock in _message_items(state):
        attempt = delete_set_update([(client, clock, 1)])
        scratch: Doc[Any] = Doc()
        scratch.apply_update(state)
        scratch.apply_update(attempt)
        after = scratch.get("messages", type=Array).to_py() or []
        if after == before[:at] + before[at + 1 :]:
            return attempt
    return None


async def run_step(room: AttackRoom, model: Model, n: int, step: Step) -> None:
    kind, who, other, which, on = step
    user, named = USERS[who], USERS[other]
    count = len(model.messages)
    at = which % count if count else 0
    word = f"bad{n}" if on else f"w{n}"
    if kind == "post":
        await room.edit(user, "post", author=named, text=word)
        model.post(user, named, word)
    elif kind == "profile":
        value = None if which % 3 == 0 else word
        await room.edit(user, "profile", key=named, value=value)
        model.profile(user, named, value)
    elif kind == "replay":
        await room.replay(user, which)
    elif kind == "forge":
        await forge(room, user, named)
    elif kind == "retype":
        await retype(room, model, user, which)
    elif kind == "missing":
        await missing_dependency(room, model, user, named, n)
    elif not count:
        return
    elif kind == "delete":
        await room.edit(user, "delete", at=at)
        model.delete(user, at)
    elif kind == "text":
        await room.edit(user, "text", at=at, text=word)
        model.text(user, at, word)
    elif kind == "react":
        key = "👍\t" + named
        await room.edit(user, "react", at=at, key=key, on=on)
        model.react(user, at, key, on)
    else:  # a delete set aimed at message `at`, by a user who may not own it
        attack = aimed_delete_set(room, at)
        assert attack is not None
        assert await room.attack(user, Update(attack)) is None
        model.delete(user, at)


async def forge(room: AttackRoom, user: str, victim: str) -> None:
    """Structs under the victim's client id (once it is bound): closed 4403, nothing
    applied."""
    if victim == user or not room.server_doc.get_state():
        return
    victim_id = room.users[victim].client_id
    if room.actor.guard.owners.known.get(victim_id) != victim:
        return  # not bound yet: its first sender would own it
    forged: Doc[Any] = Doc(client_id=victim_id)
    forged.apply_update(room.server_update())
    before = forged.get_state()
    forged.get("messages", type=Array).append(message(victim, "forged"))
    reason = await room.attack(user, Update(forged.get_update(before)))
    assert reason is not None and reason.startswith("4403") and "client id" in reason


async def retype(room: AttackRoom, model: Model, user: str, which: int) -> None:
    """A root the rules keep as an array (or a map) written as something else: closed
    4400, nothing applied."""
    attacker: Doc[Any] = Doc()
    if which % 2 and (model.rules.own_profiles or model.rules.profiles_by_author):
        attacker.get("profiles", type=Array).append(["x"])
        expected = "profiles must stay a map"
    elif model.rules.messages_kept:
        if which % 4 == 0:
            attacker.get("messages", type=Map)["x"] = "boom"
        else:
            attacker.get("messages", type=Text).insert(0, "boom")
        expected = "messages must stay an array"
    else:
        return
    reason = await room.attack(user, Update(attacker.get_update()))
    assert reason is not None and reason.startswith("4400") and expected in reason


async def missing_dependency(room: AttackRoom, model: Model, user: str, other: str, n: int) -> None:
    """`other` posts on a replica the room has not heard from; `user` sees that post
    (peer to peer) and posts after it. `user`'s update is sent first, so it waits for
    `other`'s: refused whole in a room that judges updates. `other`'s arrives later and
    is judged as theirs, and `user`'s never integrates. (A room that judges nothing
    keeps such an update pending, as every room does.)"""
    if not model.rules.judged:
        return
    state = room.server_update()
    ids = random.Random(n)
    first_doc: Doc[Any] = Doc(client_id=ids.randrange(1 << 40, 1 << 50))
    first_doc.apply_update(state)
    before = first_doc.get_state()
    first_doc.get("messages", type=Array).append(message(other, f"first{n}"))
    first = first_doc.get_update(before)
    second_doc: Doc[Any] = Doc(client_id=ids.randrange(1 << 40, 1 << 50))
    second_doc.apply_update(state)
    second_doc.apply_update(first)
    before = second_doc.get_state()
    second_doc.get("messages", type=Array).append(message(user, f"second{n}"))
    second = second_doc.get_update(before)
    reason = await room.attack(user, Update(second))
    assert reason is not None and reason.startswith("4400") and "lacks" in reason
    assert await room.attack(other, Update(first)) is None
    model.post(other, other, f"first{n}")


async def run(node: NodeUsers, rules: RuleSet, script: list[Step]) -> None:
    node.call("reset")
    users: dict[str, PyUser | NodeUser] = {
        name: NodeUser(node, name) if name in NODE else PyUser() for name in USERS
    }
    hooks = NoBadWords() if rules.check else Hooks()
    async with asyncio.timeout(60), attack_room(rules.parsed(), hooks, users) as room:
        model = Model(rules)
        for n, step in enumerate(script):
            await run_step(room, model, n, step)
            await check_converged(room, model, step)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rules=rule_sets, script=st.lists(step, min_size=1, max_size=10))
def test_rules_hold_against_attackers(node: NodeUsers, rules: RuleSet, script: list[Step]) -> None:
    asyncio.run(run(node, rules, script))


@pytest.mark.slow
@pytest.mark.timeout(1800)
@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rules=rule_sets, script=st.lists(step, min_size=1, max_size=25))
def test_rules_hold_against_attackers_long(
    node: NodeUsers, rules: RuleSet, script: list[Step]
) -> None:
    asyncio.run(run(node, rules, script))
