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
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pycrdt import Doc, TransactionEvent, merge_updates

from server.rooms.actor import RoomActor
from server.rooms.registry import RoomRegistry
from tests.redis_process import RedisProcess
from tests.reliability.actor_rig import (
    ROOTS,
    HeldRelay,
    SdkClient,
    apply_edit,
    causal_result,
    content,
    held_room,
    memory_rooms,
    quiesce,
    ready_but_pending,
    redis_processes,
    settle,
)

CLIENTS = 4
DEFAULT_EXAMPLES = 2000
SLOW_EXAMPLES = 20000
REDIS_EXAMPLES = 60  # each costs Redis round trips, and a new room's first follow
REDIS_SLOW_EXAMPLES = 2000
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
    + ("join", "leave", "pull", "relay")
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
        elif kind == "relay":
            steps.append((kind, a, b))
        elif kind == "post":
            steps.append(("post", [a, b, a * b][: 1 + b % 3]))
        else:
            steps.append((kind,))
    return steps


class Play:
    """One script's run against one room (see module): SDK clients, plus an author whose
    edits reach the room only as posts (REST, another server's merge), out of order.

    With several processes (`actors`, one per process, and their held `relays`), client
    n connects to process n modulo their number, posts go to the one the script picks,
    and each process sees the others' commits when, and in the order, the script says.
    """

    def __init__(self, actors: list[RoomActor], relays: list[HeldRelay] | None = None) -> None:
        self.actors = actors
        self.relays = relays or []
        self.made: list[bytes] = []  # every edit of every writer, in the order made
        self.clients = [SdkClient(n, self.made) for n in range(CLIENTS)]
        self.author: Doc[Any] = Doc()
        self.author.observe(self._authored)
        self.unposted: list[bytes] = []
        self.posts: list[asyncio.Task[int]] = []

    def _authored(self, event: TransactionEvent) -> None:
        self.made.append(bytes(event.update))
        self.unposted.append(bytes(event.update))

    def _actor_of(self, number: int) -> RoomActor:
        return self.actors[number % len(self.actors)]

    async def run(self, script: list[Step]) -> None:
        for step in script:
            await self.step(step)
        order = random.Random(repr(script))  # the rest, in an order the script picks
        while self.unposted:
            self.post([order.randrange(1000) for _ in range(order.randint(1, 3))])
            await self.step(("batch",))
        for sdk in self.clients:
            if not sdk.connected:
                sdk.join(self._actor_of(sdk.number))
        await self.quiesce(self.clients)
        for task in self.posts:
            task.result()

    async def quiesce(self, clients: list[SdkClient]) -> None:
        """Everything delivered: posts done, relays empty, every process at one state."""

        def idle() -> bool:
            states = {
                (frozenset(a.doc.live.clocks.items()), frozenset(a.doc.pending))
                for a in self.actors
            }
            return all(t.done() for t in self.posts) and len(states) == 1

        def pump() -> int:
            return sum(relay.release(0) for relay in self.relays)

        await quiesce(self.actors, clients, idle, pump)

    async def step(self, step: Step) -> None:
        clients = self.clients
        match step:
            case ("edit", number, root, seed, value):
                clients[number].edit(root, seed, value)
            case ("author", edits, root, seed, value):  # a run of edits, one update each
                for offset in range(edits):
                    apply_edit(self.author, ROOTS[(ROOTS.index(root) + offset) % 4], seed, value)
            case ("pull",):  # the author catches up with the room
                self.author.apply_update(self.actors[0].doc.encode_snapshot())
            case ("up", number, count):
                clients[number].to_server(count)
            case ("down", number, count):
                clients[number].from_server(count)
                assert not ready_but_pending(clients[number].replica.live), f"client {number}"
            case ("batch",):
                for actor in self.actors:
                    await settle(actor)
                    assert not ready_but_pending(actor.doc.live), "a room"
            case ("join", number):
                if not clients[number].connected:
                    clients[number].join(self._actor_of(number))
            case ("leave", number):
                clients[number].leave()
            case ("post", picks):
                self.post(picks)
            case ("relay", process, pick):
                if self.relays:
                    self.relays[process % len(self.relays)].release(pick)

    def post(self, picks: list[int]) -> None:
        """Post some of the author's edits not posted yet, merged, whatever their order."""
        chosen = []
        for pick in picks:
            if self.unposted:
                chosen.append(self.unposted.pop(pick % len(self.unposted)))
        if chosen:
            update = chosen[0] if len(chosen) == 1 else bytes(merge_updates(*chosen))
            actor = self._actor_of(picks[0])
            self.posts.append(asyncio.create_task(actor.post_update(update, "rest")))

    async def check(self) -> None:
        """A fresh joiner on every process, every replica and every process's room equal
        the causal-order result, with nothing pending anywhere."""
        joiners = [SdkClient(CLIENTS + n, []) for n in range(len(self.actors))]
        for joiner, actor in zip(joiners, self.actors, strict=True):
            joiner.join(actor)
        everyone = [*self.clients, *joiners]
        await self.quiesce(everyone)
        expected = causal_result(self.made)
        for sdk in everyone:
            assert content(sdk.doc) == expected, f"client {sdk.number}"
        for actor in self.actors:
            assert content(actor.doc.doc) == expected, "a room"
        for sdk in everyone:
            assert sdk.replica.pending_since is None, f"client {sdk.number} has pending updates"
            assert sdk.wire is not None and sdk.wire.close_reason is None
        for actor in self.actors:
            assert actor.doc.pending == (), "a room has pending updates"
        for sdk in everyone:
            sdk.leave()


def run_examples(
    examples: int,
    processes: Callable[[], AbstractAsyncContextManager[list[RoomRegistry]]],
) -> None:
    """One event loop and set of processes for every example; each gets its own room."""
    with asyncio.Runner() as runner:
        context = processes()
        registries = runner.run(context.__aenter__())
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
                runner.run(asyncio.wait_for(in_a_new_room(registries, script), 60))

            example()
        finally:
            runner.run(context.__aexit__(None, None, None))


async def in_a_new_room(registries: list[RoomRegistry], script: list[Step]) -> None:
    name = f"conv-{next(_rooms)}"
    if len(registries) == 1:
        actors, relays = [await registries[0].acquire(name)], []
    else:
        held = [await held_room(registry, name) for registry in registries]
        actors, relays = [actor for actor, _ in held], [relay for _, relay in held]
    try:
        play = Play(actors, relays)
        await play.run(script)
        await play.check()
    finally:
        for actor in actors:
            actor.close()


@asynccontextmanager
async def one_process() -> AsyncIterator[list[RoomRegistry]]:
    async with memory_rooms() as registry:
        yield [registry]


def test_every_replica_converges_under_any_interleaving() -> None:
    run_examples(DEFAULT_EXAMPLES, one_process)


@pytest.mark.slow
def test_every_replica_converges_under_any_interleaving_at_length() -> None:
    run_examples(SLOW_EXAMPLES, one_process)


def test_replicas_on_two_processes_converge_whatever_order_they_see_each_other_in(
    redis_server: RedisProcess,
) -> None:
    run_examples(REDIS_EXAMPLES, partial(redis_processes, redis_server.url))


@pytest.mark.slow
def test_replicas_on_two_processes_converge_at_length(redis_server: RedisProcess) -> None:
    run_examples(REDIS_SLOW_EXAMPLES, partial(redis_processes, redis_server.url))
