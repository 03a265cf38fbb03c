"""A `performer serve` process on a free port, for the benchmarks' long forms and for the
test suite's `server_factory` fixture (tests/conftest.py)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.common import ROOT

PERFORMER = [sys.executable, "-m", "server"]
START_DEADLINE = 20.0


@dataclass
class ServerProcess:
    """A running server; `restart()` keeps the data directory and the port."""

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
        """The base the Yjs clients and the SDK take: `ws://HOST:PORT/rooms`."""
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

    def kill(self) -> None:
        """SIGKILL: the crash a durable server must survive."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self._release()

    def restart(self) -> None:
        """Start again on the same data directory and the same port (clients reconnect)."""
        self.start()

    def _release(self) -> None:
        assert self.process is not None
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


def _read_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=deadline):
            return "<no output before the deadline>"
    return process.stdout.readline().strip()
