"""A real redis-server (Debian's package) on a loopback port, with AOF fsync on every
write, started per test and stopped after it (the `redis_server` fixture)."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

START_DEADLINE = 10.0


class PortTaken(RuntimeError):
    """The port chosen for redis-server was taken before it could bind it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisProcess:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PortTaken(f"redis-server exited at once: port {self.port} is taken?")
            try:
                if self._answering_pid() == self.process.pid:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def _answering_pid(self) -> int | None:
        """The pid of the redis-server on our port: another test's server may have taken
        the port between `free_port` and our start, and must not be mistaken for ours."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"INFO server\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                reply += chunk
        line = reply.split(b"process_id:", 1)[1].split(b"\r\n", 1)[0]
        return int(line)

    def kill(self) -> None:
        """SIGKILL: Redis loses nothing it acknowledged with appendfsync always."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
