"""A rules server inside the test process (LMDB, or Redis), for the tests the mutation run
uses (it sees which rule code a test reaches only when that code runs in-process) and for
tests that reach into the running server (`rooms.edit`, the registry, the store)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pycrdt import Doc

from engine.rules.model import Rules
from server import Config, Rooms, create_app
from server.hooks import Edit, Hooks, Verdict
from tests.conftest import ServerProcess, StartServer
from tests.redis_process import RedisProcess


@dataclass(frozen=True)
class Served:
    url: str


@asynccontextmanager
async def in_process(
    data_dir: Path, secret: str, *, hooks: Hooks | None = None, rules: Rules | None = None
) -> AsyncIterator[Served]:
    app = create_app(Config(data_dir=data_dir, auth_secret=secret), hooks, rules=rules)
    async with TestServer(app) as server:
        yield Served(str(server.make_url("")).rstrip("/"))


class _Started(Hooks):
    rooms: Rooms | None = None

    async def on_start(self, rooms: Rooms) -> None:
        self.rooms = rooms


class _Checked(_Started):
    def __init__(self, check: Callable[[Edit], Verdict]) -> None:
        self.judge = check

    def check(self, edit: Edit) -> Verdict:
        return self.judge(edit)


@asynccontextmanager
async def served(
    config: Config, rules: Rules, check: Callable[[Edit], Verdict] | None = None
) -> AsyncIterator[tuple[str, Rooms]]:
    """A server on `config` (its store: `data_dir` or `redis_url`) with `rules` (and
    `check` as its `Hooks.check`): its URL and its in-process room access."""
    hooks = _Started() if check is None else _Checked(check)
    async with TestServer(create_app(config, hooks, rules=rules)) as server:
        assert hooks.rooms is not None
        yield str(server.make_url("")).rstrip("/"), hooks.rooms


@asynccontextmanager
async def rules_servers(
    mode: str,
    request: pytest.FixtureRequest,
    server_factory: StartServer,
    tmp_path: Path,
    args: tuple[str, ...],
    *,
    secret: str,
    hooks: Hooks | None = None,
    rules: Rules | None = None,
) -> AsyncIterator[list[ServerProcess]]:
    """Two servers to connect to, as `mode` says: "lmdb", one server process (twice);
    "redis-two-processes", two processes sharing a real redis-server; "in-process", the
    server in the test process on LMDB (twice), with `hooks` and `rules` given as objects
    (the processes get them from `args`)."""
    if mode == "in-process":
        async with in_process(tmp_path / "in-process", secret, hooks=hooks, rules=rules) as one:
            yield cast(list[ServerProcess], [one, one])
        return
    if mode == "lmdb":
        process = server_factory(*args)
        yield [process, process]
        return
    redis: RedisProcess = request.getfixturevalue("redis_server")
    yield [server_factory(*args, "--redis", redis.url) for _ in range(2)]


async def stored_doc(server: ServerProcess, room: str, token: str) -> Doc[Any]:
    """The room as `GET /v1/rooms/{room}/state` gives it (what the store holds)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{server.url}/v1/rooms/{room}/state", headers=headers)
        assert response.status == 200
        doc: Doc[Any] = Doc()
        doc.apply_update(await response.read())
        return doc
