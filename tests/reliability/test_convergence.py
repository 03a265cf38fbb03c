"""Convergence under every delivery order, through the real room actor and SDK replicas.

Hypothesis plays scripts of steps against one room: SDK clients edit every root type
(text, array, map, xml) online and offline, join and leave; their messages reach the
actor when the script says, so each actor batch holds whatever the script put in it
(updates, step 1s answered mid-batch, merged broadcasts); frames reach each client when
the script says; merged updates of arbitrary edits (gapped, as a REST post or a stored
snapshot makes them) are posted beside. At the end everything is delivered, and every
replica, the room and a fresh joiner must equal the causal-order result, with nothing
pending anywhere. Each example is one interleaving; the `slow` forms run ten times more.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pycrdt import Doc, TransactionEvent, merge_updates

from server.rooms.actor import RoomActor
from server.rooms.registry import RoomRegistry
from tests.reliability.actor_rig import (
    ROOTS,
    SdkClient,
    apply_edit,
    causal_result,
    content,
    memory_rooms,
    quiesce,
    ready_but_pending,
    settle,
)

CLIENTS = 4
DEFAULT_EXAMPLES = 2000
SLOW_EXAMPLES = 20000
_rooms = itertools.count()

VALUES = ("a", "bc", "xyz")  # ASCII: pycrdt counts text positions in its own units
# A script is bytes, three per step (cheap to generate, and hypothesis shrinks them well):
# the first picks the kind of step (weighted by how often it appears in this table), the
# other two its arguments.
KINDS = (
    ("edit",) * 6
    + ("author",) * 4
    + ("post",) * 2
    + ("up",) * 4
    + ("down",) * 4
    + ("batch",) * 3
    + ("join", "leave", "pull")
)
scripts = st.binary(min_size=12, max_size=150)
Step = tuple[Any, ...]


def decode_script(raw: bytes) -> list[Step]:
    """The steps a script's bytes stand for (shown by hypothesis when an example fails)."""
    steps: list[Step] = []
    for at in range(0, len(raw) - 2, 3):
        kind, a, b = KINDS[raw[at] % len(KINDS)], raw[at + 1], raw[at + 2]
        number = a % CLIENTS
        if kind in ("edit", "author"):
            root, value = ROOTS[(a >> 2) % len(ROOTS)], VALUES[(a >> 4) % len(VALUES)]
            who = number if kind == "edit" else 1 + a % 8  # the author: how many edits
            steps.append((kind, who, root, b, value))
        elif kind in ("up", "down"):
            steps.append((kind, number, 1 + b % 3))
        elif kind in ("join", "leave"):
            steps.append((kind, number))
        elif kind == "post":
            steps.append(("post", [a, b, a * b][: 1 + b % 3]))
        else:
            steps.append((kind,))
    return steps


class Play:
    """One script's run against one room (see module): SDK clients, plus an author whose
    edits reach the room only as posts (REST, another server's merge), out of order."""

    def __init__(self, actor: RoomActor) -> None:
        self.actor = actor
        self.made: list[bytes] = []  # every edit of every writer, in the order made
        self.clients = [SdkClient(n, self.made) for n in range(CLIENTS)]
        self.author: Doc[Any] = Doc()
        self.author.observe(self._authored)
        self.unposted: list[bytes] = []
        self.posts: list[asyncio.Task[int]] = []

    def _authored(self, event: TransactionEvent) -> None:
        self.made.append(bytes(event.update))
        self.unposted.append(bytes(event.update))

    async def run(self, script: list[Step]) -> None:
        for step in script:
            await self.step(step)
        order = random.Random(repr(script))  # the rest, in an order the script picks
        while self.unposted:
            self.post([order.randrange(1000) for _ in range(order.randint(1, 3))])
            await self.step(("batch",))
        for sdk in self.clients:
            if not sdk.connected:
                sdk.join(self.actor)
        await quiesce([self.actor], self.clients, lambda: all(t.done() for t in self.posts))
        for task in self.posts:
            task.result()

    async def step(self, step: Step) -> None:
        clients = self.clients
        match step:
            case ("edit", number, root, seed, value):
                clients[number].edit(root, seed, value)
            case ("author", edits, root, seed, value):  # a run of edits, one update each
                for offset in range(edits):
                    apply_edit(self.author, ROOTS[(ROOTS.index(root) + offset) % 4], seed, value)
            case ("pull",):  # the author catches up with the room
                self.author.apply_update(self.actor.doc.encode_snapshot())
            case ("up", number, count):
                clients[number].to_server(count)
            case ("down", number, count):
                clients[number].from_server(count)
                assert not ready_but_pending(clients[number].replica.live), f"client {number}"
            case ("batch",):
                await settle(self.actor)
                assert not ready_but_pending(self.actor.doc.live), "the room"
            case ("join", number):
                if not clients[number].connected:
                    clients[number].join(self.actor)
            case ("leave", number):
                clients[number].leave()
            case ("post", picks):
                self.post(picks)

    def post(self, picks: list[int]) -> None:
        """Post some of the author's edits not posted yet, merged, whatever their order."""
        chosen = []
        for pick in picks:
            if self.unposted:
                chosen.append(self.unposted.pop(pick % len(self.unposted)))
        if chosen:
            update = chosen[0] if len(chosen) == 1 else bytes(merge_updates(*chosen))
            self.posts.append(asyncio.create_task(self.actor.post_update(update, "rest")))

    async def check(self) -> None:
        """A fresh joiner, every replica and the room equal the causal-order result,
        with nothing pending anywhere."""
        joiner = SdkClient(CLIENTS, [])
        joiner.join(self.actor)
        everyone = [*self.clients, joiner]
        await quiesce([self.actor], everyone)
        expected = causal_result(self.made)
        for sdk in everyone:
            assert content(sdk.doc) == expected, f"client {sdk.number}"
        assert content(self.actor.doc.doc) == expected, "the room"
        for sdk in everyone:
            assert sdk.replica.pending_since is None, f"client {sdk.number} has pending updates"
            assert sdk.wire is not None and sdk.wire.close_reason is None
        assert self.actor.doc.pending == (), "the room has pending updates"
        for sdk in everyone:
            sdk.leave()


def run_examples(
    examples: int, check: Callable[[RoomRegistry, list[Step]], Awaitable[None]]
) -> None:
    """One event loop and registry for every example; each example gets its own room."""
    with asyncio.Runner() as runner:
        context = memory_rooms()
        rooms = runner.run(context.__aenter__())
        try:

            @settings(
                max_examples=examples,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(scripts)
            def example(raw: bytes) -> None:
                script = decode_script(raw)
                note(f"steps: {script}")
                runner.run(asyncio.wait_for(check(rooms, script), 60))

            example()
        finally:
            runner.run(context.__aexit__(None, None, None))


async def in_a_new_room(rooms: RoomRegistry, script: list[Step]) -> None:
    actor = await rooms.acquire(f"conv-{next(_rooms)}")
    try:
        play = Play(actor)
        await play.run(script)
        await play.check()
    finally:
        actor.close()


def test_every_replica_converges_under_any_interleaving() -> None:
    run_examples(DEFAULT_EXAMPLES, in_a_new_room)


@pytest.mark.slow
def test_every_replica_converges_under_any_interleaving_at_length() -> None:
    run_examples(SLOW_EXAMPLES, in_a_new_room)
