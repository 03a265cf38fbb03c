"""Fixtures for the Node interop tests: real server processes and Node clients, all
cleaned up at teardown. A server still running at teardown must exit 0 on SIGTERM."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.interop.processes import NodeProcess, ServerProcess

StartServer = Callable[..., Awaitable[ServerProcess]]
StartNode = Callable[..., Awaitable[NodeProcess]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Start `performer serve` processes (a fresh data dir unless one is given)."""
    started: list[ServerProcess] = []

    async def start(data_dir: Path | None = None, *extra: str) -> ServerProcess:
        server = await ServerProcess.start(data_dir or tmp_path / f"data{len(started)}", *extra)
        started.append(server)
        return server

    yield start
    codes = [await server.terminate() for server in started if server.running]
    assert codes == [0] * len(codes), f"SIGTERM exit codes: {codes}"


@pytest.fixture
async def server(start_server: StartServer) -> ServerProcess:
    return await start_server()


@pytest.fixture
async def start_node() -> AsyncIterator[StartNode]:
    """Start Node client scripts from `js/`; any still running at teardown is killed."""
    started: list[NodeProcess] = []

    async def start(script: str, **options: object) -> NodeProcess:
        process = await NodeProcess.start(script, **options)
        started.append(process)
        return process

    yield start
    for process in started:
        await process.kill()
