"""A real `performer serve` process for the client tests, and tokens from the real CLI."""

from __future__ import annotations

import selectors
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PERFORMER = str(Path(sys.executable).parent / "performer")
START_DEADLINE = 20.0
STOP_DEADLINE = 15.0


@dataclass
class LiveServer:
    """One server process on a data directory; `restart` reuses directory and port."""

    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen[str] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/rooms"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        args = [PERFORMER, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--data", str(self.data_dir), *self.extra_args]
        self.process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        line = _first_line(self.process, START_DEADLINE)
        if not line.startswith("LISTENING http://"):
            self.kill()
            raise RuntimeError(f"server did not start, it printed: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> int:
        """SIGTERM: the graceful path; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=STOP_DEADLINE)
        self._forget()
        return code

    def kill(self) -> None:
        """SIGKILL: what a durable server must survive."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=STOP_DEADLINE)
            self._forget()

    def _forget(self) -> None:
        assert self.process is not None
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


def _first_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=deadline):
            return "<nothing before the deadline>"
    return process.stdout.readline().strip()


StartServer = Callable[..., LiveServer]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start servers (extra CLI flags as arguments); SIGTERM at teardown."""
    started: list[LiveServer] = []

    def start(*extra_args: str) -> LiveServer:
        server = LiveServer(tmp_path / f"server-data-{len(started)}", list(extra_args))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None:
            try:
                server.stop()
            except subprocess.TimeoutExpired:
                server.kill()


@pytest.fixture
def live_server(start_server: StartServer) -> LiveServer:
    return start_server()


def make_token(secret: str, room: str, *extra: str) -> str:
    """A token from the real CLI (`performer token`)."""
    out = subprocess.run(
        [PERFORMER, "token", "--secret", secret, "--room", room, *extra],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return out.stdout.strip()
