"""`Hooks.check` is told, per change, who wrote what the change deletes or overwrites
(on a room's real actor, the authors found from the users client ids are bound to)."""

from __future__ import annotations

import asyncio
from typing import Any

from pycrdt import Array, Doc, Map

from engine.protocol import Update
from engine.rules.model import Rules
from engine.update_scan import read_delete_set
from server.hooks import Edit, EditChange, Hooks, Verdict
from tests.rules.attack_rig import AttackRoom, PyUser, attack_room


class Recorder(Hooks):
    def __init__(self) -> None:
        self.edits: list[Edit] = []

    def check(self, edit: Edit) -> Verdict:
        self.edits.append(edit)
        return Verdict()

    def last(self, *kinds: str) -> list[tuple[str, str, tuple[str, ...]]]:
        changes: tuple[EditChange, ...] = self.edits[-1].changes
        return sorted((c.path, c.kind, c.authors) for c in changes if c.kind in kinds)


def change(user: PyUser, edit: Any) -> bytes:
    updates: list[bytes] = []
    subscription = user.doc.observe(lambda event: updates.append(bytes(event.update)))
    with user.doc.transaction():
        edit(user.doc)
    user.doc.unobserve(subscription)
    return b"".join(updates[:1])


async def scenario() -> None:
    hook = Recorder()
    users: dict[str, PyUser | Any] = {name: PyUser() for name in ("ann", "bo", "cy")}
    async with attack_room(Rules(), hook, users) as room:
        room_: AttackRoom = room
        await room_.edit("ann", "post", author="ann", text="a")
        await room_.edit("bo", "post", author="bo", text="b")
        await room_.edit("ann", "profile", key="x", value="ann's")
        await room_.edit("bo", "profile", key="y", value="bo's")

        # one user's things: every delete has that author, and no copy is made
        await room_.edit("cy", "post", author="cy", text="c")
        await room_.edit("ann", "delete", at=2)
        assert hook.last("delete") == [("messages[2]", "delete", ("cy",))]

        # one update deleting ann's and bo's messages and overwriting both profiles
        def sweep(doc: Doc[Any]) -> None:
            del doc.get("messages", type=Array)[0:2]
            doc.get("profiles", type=Map).update({"x": "cy", "y": "cy"})

        await room_.send(room_.wires["cy"], Update(change(users["cy"], sweep)))
        assert hook.last("delete", "set") == [
            ("messages[0]", "delete", ("ann",)),  # positions as a delta gives them: a
            ("messages[0]", "delete", ("bo",)),  # deleted entry does not move the next
            ("profiles.x", "set", ("ann",)),
            ("profiles.y", "set", ("bo",)),
        ]
        assert users["ann"].state() == room_.users["cy"].state()

        # a hand-crafted overwrite that does not name what it overwrites: the apply still
        # removes both values, and each set gets every owner (per update)
        await room_.edit("ann", "profile", key="x", value="ann again")
        await room_.edit("bo", "profile", key="y", value="bo again")
        overwrite = change(users["cy"], lambda doc: doc.get("profiles", type=Map).update(
            {"x": "cy again", "y": "cy again"}))  # fmt: skip
        structs_only = overwrite[: read_delete_set(overwrite)[0]] + b"\x00"
        assert await room_.attack("cy", Update(structs_only)) is None
        assert hook.last("delete", "set") == [
            ("profiles.x", "set", ("ann", "bo")),
            ("profiles.y", "set", ("ann", "bo")),
        ]


def test_each_change_names_the_author_of_what_it_removes() -> None:
    asyncio.run(scenario())
