"""A Hypothesis state machine against a live server: replicas (two Python, one Yjs in
Node) connect, disconnect, edit
text, arrays, maps and nested types online and offline, redeliver old updates, and the
server is SIGKILLed and restarted. At the end every replica, a fresh client and the
stored state have equal content and state vectors. Hypothesis prints the failing steps."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Coroutine
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from pycrdt import Doc

from engine.yjs import decode_state_vector
from harness.common import durable_state
from tests.conftest import ServerProcess
from tests.reliability.node_replica import NodeReplica
from tests.reliability.replica import Replica, content_of

REPLICAS = 3
STEP_DEADLINE = 60.0
_rooms = itertools.count()

replica_index = st.integers(0, REPLICAS - 1)
# Text positions are ASCII-only: pycrdt indexes text in a unit that differs from Python
# string indices once multi-byte characters are in it (a client concern, not the server's).
words = st.text(alphabet="abcxyz ", min_size=1, max_size=6)
values = st.one_of(st.integers(-1000, 1000), st.text("abé😀", max_size=4), st.booleans(), st.none())


class LiveServerMachine(RuleBasedStateMachine):
    server: ClassVar[ServerProcess]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.room = f"stateful-{next(_rooms)}"
        # two Python replicas and one Yjs (JS) replica in Node
        self.replicas: list[Replica | NodeReplica] = [
            Replica("py0"),
            Replica("py1"),
            NodeReplica("js2"),
        ]

    def run(self, coro: Coroutine[Any, Any, None]) -> None:
        self.loop.run_until_complete(asyncio.wait_for(coro, STEP_DEADLINE))

    # ------------------------------------------------------------------ rules

    @rule(i=replica_index)
    def connect(self, i: int) -> None:
        self.run(self.replicas[i].connect(self.server.url, self.room))

    @rule(i=replica_index)
    def disconnect(self, i: int) -> None:
        self.run(self.replicas[i].disconnect())

    @rule(i=replica_index, where=st.floats(0, 1), word=words)
    def insert_text(self, i: int, where: float, word: str) -> None:
        self.run(self.replicas[i].edit("insert_text", where=where, word=word))

    @rule(i=replica_index, where=st.floats(0, 1), length=st.integers(1, 4))
    def delete_text(self, i: int, where: float, length: int) -> None:
        self.run(self.replicas[i].edit("delete_text", where=where, length=length))

    @rule(i=replica_index, value=values)
    def push(self, i: int, value: Any) -> None:
        self.run(self.replicas[i].edit("push", value=value))

    @rule(i=replica_index, key=st.sampled_from("pqrs"), value=values)
    def set_key(self, i: int, key: str, value: Any) -> None:
        self.run(self.replicas[i].edit("set_key", key=key, value=value))

    @rule(i=replica_index, key=st.sampled_from("pq"), value=values)
    def nested(self, i: int, key: str, value: Any) -> None:
        """A map inside the array, then an edit inside an existing nested map."""
        self.run(self.replicas[i].edit("nested", key=key, value=value))

    @rule(i=replica_index, j=replica_index, data=st.data())
    def redeliver(self, i: int, j: int, data: st.DataObject) -> None:
        """Send an old update again, possibly one that another replica made."""
        history: list[bytes] = []

        async def fetch() -> None:
            history.extend(await self.replicas[j].history_updates())

        self.run(fetch())
        if history:
            update = data.draw(st.sampled_from(history))
            self.run(self.replicas[i].redeliver(update))

    @rule()
    def let_messages_flow(self) -> None:
        self.run(asyncio.sleep(0.05))

    @rule()
    def crash_server(self) -> None:
        self.server.kill()
        self.server.restart()
        self.run(self._drop_dead_connections())

    async def _drop_dead_connections(self) -> None:
        for replica in self.replicas:
            await replica.disconnect()

    @invariant()
    def server_is_up(self) -> None:
        assert self.server.process is not None and self.server.process.poll() is None

    # ------------------------------------------------------------------ the end

    def teardown(self) -> None:
        try:
            self.run(self._converge())
        finally:
            self.run(self._close_all())
            self.loop.close()

    async def _converge(self) -> None:
        for replica in self.replicas:
            await replica.connect(self.server.url, self.room)
        for replica in self.replicas:
            await replica.settle()
        for replica in self.replicas:
            await replica.settle()  # picks up what the others resent after it settled
        fresh = Replica("fresh")
        await fresh.connect(self.server.url, self.room)
        await fresh.wait(lambda: fresh.step2_received > 0)
        stored: Doc[Any] = Doc()
        stored.apply_update(await durable_state(self.server.url, self.room))
        states = [await r.state() for r in [*self.replicas, fresh]]
        contents = [content for content, _ in states] + [content_of(stored)]
        vectors = [clocks for _, clocks in states]
        vectors.append(decode_state_vector(bytes(stored.get_state())))
        await fresh.disconnect()
        assert all(c == contents[0] for c in contents), contents
        assert all(v == vectors[0] for v in vectors), vectors

    async def _close_all(self) -> None:
        for replica in self.replicas:
            await replica.close()


@pytest.mark.parametrize(
    "examples", [pytest.param(6, id="default"), pytest.param(40, id="long", marks=pytest.mark.slow)]
)
def test_replicas_and_storage_converge_through_crashes(
    server: ServerProcess, examples: int
) -> None:
    LiveServerMachine.server = server
    run_state_machine_as_test(
        LiveServerMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            print_blob=True,
        ),
    )
