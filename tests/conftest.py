"""Shared fixtures: a real `performer serve` process on a free port."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.redis_process import RedisProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
PERFORMER = [sys.executable, "-m", "server"]
START_DEADLINE = 20.0


@dataclass
class ServerProcess:
    """A running server; `restart()` keeps the data directory."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    url: str = ""
    port: int = 0

    @property
    def http_url(self) -> str:
        return self.url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/rooms"

    def start(self) -> None:
        args = [
            *PERFORMER,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data",
            str(self.data_dir),
            *self.extra_args,
        ]
        env = {**os.environ, "PERFORMER_LOG": "WARNING", **self.env}
        self.process = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=None, text=True, env=env
        )
        line = _read_line(self.process, START_DEADLINE)
        if not line.startswith("LISTENING "):
            self.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.url = line.split()[1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait: the exit code (0 is a clean shutdown)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._release()
        return code

    def _release(self) -> None:
        assert self.process is not None
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the crash a durable server must survive."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self._release()

    def restart(self) -> None:
        """Start again on the same data directory and the same port (clients reconnect)."""
        self.start()


def _read_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    import selectors

    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    if not selector.select(timeout=deadline):
        return "<no output before the deadline>"
    return process.stdout.readline().strip()


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
    process = RedisProcess(directory, free_port())
    process.start()
    yield process
    process.kill()
