"""The two kinds of child process the interop tests drive: the real `performer serve` and
the Node client scripts in `js/`. Every wait has a deadline; nothing here sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import require_node

INTEROP_DIR = Path(__file__).resolve().parent
ROOT = INTEROP_DIR.parents[1]
JS_DIR = INTEROP_DIR / "js"
START_DEADLINE = 20.0
STOP_DEADLINE = 15.0


def performer_command() -> list[str]:
    """The installed `performer` entry point next to this interpreter, as the README runs it."""
    script = Path(sys.executable).with_name("performer")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "server"]


@dataclass
class ServerProcess:
    """One `performer serve --port 0` process on `data_dir`."""

    data_dir: Path
    process: asyncio.subprocess.Process
    url: str
    _drain: asyncio.Task[None] | None = None

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/rooms"

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    @classmethod
    async def start(cls, data_dir: Path, *extra: str) -> ServerProcess:
        """Spawn the server and wait (bounded) for its `LISTENING http://HOST:PORT` line;
        `extra`: more `performer serve` flags."""
        process = await asyncio.create_subprocess_exec(
            *performer_command(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data",
            str(data_dir),
            *extra,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_DEADLINE)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError("server printed nothing before the deadline") from None
        text = line.decode().strip()
        if not text.startswith("LISTENING http://"):
            if process.returncode is None:
                process.kill()
            code = await process.wait()
            raise RuntimeError(f"server did not start (exit {code}): {text!r}")
        server = cls(data_dir, process, text.split()[1])
        server._drain = asyncio.create_task(_drain(process.stdout))
        return server

    async def terminate(self) -> int:
        """SIGTERM, then the exit code (0 = a clean, drained shutdown)."""
        with contextlib.suppress(ProcessLookupError):  # it died on its own: report its code
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), STOP_DEADLINE)
        finally:
            await self._finish()

    async def kill(self) -> None:
        """SIGKILL: the crash the durable log must survive."""
        self.process.kill()
        await asyncio.wait_for(self.process.wait(), STOP_DEADLINE)
        await self._finish()

    async def _finish(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain


async def _drain(stream: asyncio.StreamReader) -> None:
    """Keep reading the server's stdout so a chatty server never blocks on a full pipe."""
    while await stream.read(65536):
        pass


@dataclass
class NodeProcess:
    """A Node client script that prints JSON lines on stdout."""

    script: str
    process: asyncio.subprocess.Process
    lines: list[Any] = field(default_factory=list)

    @classmethod
    async def start(cls, script: str, **options: object) -> NodeProcess:
        node = require_node("y-websocket")
        process = await asyncio.create_subprocess_exec(
            node,
            str(JS_DIR / script),
            *(f"--{key}={value}" for key, value in options.items()),
            cwd=INTEROP_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(script, process)

    async def next_line(self, timeout: float) -> Any:
        """The next JSON line, waiting at most `timeout` seconds."""
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise AssertionError(f"{self.script} exited early: {await self._stderr()}")
        value = json.loads(line)
        self.lines.append(value)
        return value

    async def expect(self, event: str, timeout: float) -> Any:
        """The next line, which must be `{"event": event, ...}`."""
        value = await self.next_line(timeout)
        assert value.get("event") == event, value
        return value

    async def result(self, timeout: float) -> Any:
        """Wait for a clean exit and return the last JSON line it printed."""
        assert self.process.stdout is not None
        out = await asyncio.wait_for(self.process.stdout.read(), timeout)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        assert code == 0, f"{self.script} exited {code}: {await self._stderr()}"
        self.lines.extend(json.loads(line) for line in out.splitlines() if line.strip())
        assert self.lines, f"{self.script} printed nothing"
        return self.lines[-1]

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await asyncio.wait_for(self.process.wait(), STOP_DEADLINE)

    async def rest_of_output(self, timeout: float) -> list[Any]:
        """After the process ended: every JSON line it printed that was not read yet."""
        assert self.process.stdout is not None
        out = await asyncio.wait_for(self.process.stdout.read(), timeout)
        rest = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.lines.extend(rest)
        return rest

    async def _stderr(self) -> str:
        assert self.process.stderr is not None
        try:
            data = await asyncio.wait_for(self.process.stderr.read(), 5)
        except TimeoutError:
            return "<stderr still open>"
        return data.decode(errors="replace")
