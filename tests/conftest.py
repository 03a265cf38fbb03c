"""Shared fixtures: a real `performer serve` process on a free port."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from harness.process import ServerProcess as ServerProcess
from tests.redis_process import PortTaken, RedisProcess, free_port
from tests.server.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
PERFORMER = [sys.executable, "-m", "server"]
START_DEADLINE = 20.0
MAX_EXAMPLES_VARIABLE = "MUTATION_MAX_EXAMPLES"  # set by scripts/mutate.py


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under a mutation run, cap every property test's examples (fix their seed, skip
    shrinking) so each mutant costs seconds; a test's own @settings would otherwise win
    over a profile."""
    cap = os.environ.get(MAX_EXAMPLES_VARIABLE)
    if not cap:
        return
    for item in items:
        test = getattr(item, "obj", None)
        current = getattr(test, "_hypothesis_internal_use_settings", None)
        if isinstance(current, settings):
            capped = settings(
                current,
                max_examples=min(current.max_examples, int(cap)),
                derandomize=True,
                phases=(Phase.explicit, Phase.generate),  # a mutant fails; shrinking is waste
            )
            test._hypothesis_internal_use_settings = capped  # type: ignore[union-attr]


StartServer = Callable[..., ServerProcess]


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers with extra flags; all are stopped at teardown."""
    started: list[ServerProcess] = []

    def start(
        *extra_args: str, data_dir: Path | None = None, env: dict[str, str] | None = None
    ) -> ServerProcess:
        server = ServerProcess(
            data_dir or tmp_path / f"data{len(started)}", list(extra_args), env or {}
        )
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None:
            server.kill()


@pytest.fixture
def server(server_factory: StartServer) -> ServerProcess:
    """A running open server (no auth) on a fresh data directory."""
    return server_factory()


@pytest.fixture
async def deadline() -> AsyncIterator[None]:
    """Every async test gets an overall bound on top of pytest-timeout."""
    async with asyncio.timeout(60):
        yield


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A real redis-server with AOF fsync always, on its own port and directory."""
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: scripts/install-system.sh installs it")
    directory = tmp_path / "redis"
    directory.mkdir()
    for _attempt in range(3):
        process = RedisProcess(directory, free_port())
        try:
            process.start()
            break
        except PortTaken:
            continue
    else:
        pytest.fail("redis-server found no free port in three tries")
    yield process
    process.kill()


@pytest.fixture(params=["lmdb", "redis"])
def backend_flags(request: pytest.FixtureRequest) -> list[str]:
    """The `performer serve` flags that choose the backend: a test using it runs on both."""
    if request.param == "lmdb":
        return []
    redis: RedisProcess = request.getfixturevalue("redis_server")
    return ["--redis", redis.url]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A real webhook receiver on a loopback port (tests/server/receiver.py)."""
    receiver = Receiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


def require_node(package: str = "yjs") -> str:
    """Node and the interop packages, or a failure saying how to get them. Never a skip:
    the test command installs both, so a missing one is a broken setup, not an option."""
    node = shutil.which("node")
    if node is None or not (ROOT / "tests" / "interop" / "node_modules" / package).is_dir():
        pytest.fail(f"Node and tests/interop/node_modules/{package} are needed: "
                    "run `npm ci` in tests/interop (scripts/test.sh does)")  # fmt: skip
    return node
