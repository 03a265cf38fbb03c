"""Random sequences of edits by several users under a few shared client ids, against real
servers (LMDB; two processes on one Redis): an edit is refused exactly when its client id
was first used by another user, a refused edit leaves no trace, replaying old structs
refuses nothing, and every server's replica converges on what the model accepted."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycrdt import Doc

from engine.protocol import SyncStep2, Update
from harness.wire import connect, edit
from server.auth import issue_token
from tests.conftest import ServerProcess, StartServer
from tests.redis_process import RedisProcess

SECRET = "rules-secret-" + "0123456789abcdef" * 4
USERS = ("ann", "bo", "cy")
CLIENT_IDS = (101, 202, 303)
_rooms = itertools.count()

Step = tuple[int, int, str, int]  # user, client id, "new" | "replay", server
steps = st.lists(
    st.tuples(
        st.integers(0, len(USERS) - 1),
        st.integers(0, len(CLIENT_IDS) - 1),
        st.sampled_from(["new", "new", "replay"]),
        st.integers(0, 1),
    ),
    min_size=1,
    max_size=7,
)


@pytest.fixture(params=["lmdb", "redis-two-processes"])
def servers(
    request: pytest.FixtureRequest, server_factory: StartServer, tmp_path: Path
) -> Iterator[list[ServerProcess]]:
    if request.param == "lmdb":
        one = server_factory("--auth-secret", SECRET)
        yield [one, one]
        return
    redis: RedisProcess = request.getfixturevalue("redis_server")
    yield [server_factory("--auth-secret", SECRET, "--redis", redis.url) for _ in range(2)]


def token(user: str) -> str:
    return issue_token(SECRET, "prop-*", user=user)


class Model:
    """What the rule allows: the first user to send new structs of an id owns it."""

    def __init__(self) -> None:
        self.owners: dict[int, str] = {}
        self.text = ""
        self.replicas: dict[int, Doc[Any]] = {}  # the owner's replica per client id

    def replica(self, client_id: int) -> Doc[Any]:
        return self.replicas.setdefault(client_id, Doc(client_id=client_id))


async def run_step(server: ServerProcess, room: str, model: Model, step: Step, n: int) -> None:
    user, client_id = USERS[step[0]], CLIENT_IDS[step[1]]
    async with connect(server.url, room, token=token(user), ack=True) as client:
        await client.sync()
        if step[2] == "replay":  # everything the room holds, old structs of others included
            await client.send(SyncStep2(bytes(client.doc.get_update())))
            await client.wait_saved(1)
            return
        owner = model.owners.get(client_id)
        if owner in (None, user):
            doc = model.replica(client_id)
        else:  # a forger: another user's client id, continuing from the room's state
            doc = Doc(client_id=client_id)
        doc.apply_update(client.doc.get_update())
        piece = f"<{n}>"
        await client.send(Update(edit(doc, piece)))
        if owner in (None, user):
            await client.wait_saved(1)
            model.owners[client_id] = user
            model.text += piece
        else:
            assert await client.wait_closed() == 4403
            assert "client id" in client.close_reason


async def converged(servers: list[ServerProcess], room: str, text: str) -> None:
    for server in servers:
        async with connect(server.url, room, token=token("reader")) as reader:
            await reader.sync()
            try:
                await reader.wait_text(text, timeout=10)
            except TimeoutError:
                raise AssertionError(f"{server.url}: {reader.text()!r} != {text!r}") from None


async def scenario(servers: list[ServerProcess], sequence: list[Step]) -> None:
    room = f"prop-{next(_rooms)}"
    model = Model()
    async with asyncio.timeout(60):
        for n, step in enumerate(sequence):
            await run_step(servers[step[3]], room, model, step, n)
            # each step starts from a settled room (steps through two processes would
            # otherwise interleave like concurrent edits and the model's order would not hold)
            await converged(servers, room, model.text)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=steps)
def test_random_users_and_client_ids_hold_the_binding_rule(
    servers: list[ServerProcess], sequence: list[Step]
) -> None:
    # one server (or pair) per test, a fresh room per example
    asyncio.run(scenario(servers, sequence))
