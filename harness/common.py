"""What the reliability harnesses share: the server they drive, its memory, the durable
state, and `performer verify`.

The harnesses take any object shaped like `Server`: the test suite passes its fixture
(`tests/conftest.py`), the long forms pass `harness.process.ServerProcess`; both start the
same `performer serve`, so the long forms run exactly what the short forms run, only longer.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from pycrdt import Doc

from engine.yjs import decode_state_vector

ROOT = Path(__file__).resolve().parent.parent
HTTP_DEADLINE = 30.0


class Server(Protocol):
    """The part of a server process the harnesses use."""

    data_dir: Path
    url: str

    @property
    def process(self) -> subprocess.Popen[str] | None: ...

    def kill(self) -> None: ...

    def restart(self) -> None: ...

    def stop(self, timeout: float = 15.0) -> int: ...


def pid_of(server: Server) -> int:
    assert server.process is not None, "the server is not running"
    return server.process.pid


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def durable_state(url: str, room: str) -> bytes:
    """The room as stored (REST), or the empty update if it was never written."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(HTTP_DEADLINE):
        response = await http.get(f"{url}/v1/rooms/{room}/state")
        if response.status == 404:
            return b"\x00\x00"
        assert response.status == 200, (response.status, await response.text())
        return await response.read()


async def durable_doc(url: str, room: str) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(await durable_state(url, room))
    return doc


async def health(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, asyncio.timeout(HTTP_DEADLINE):
        response = await http.get(f"{url}/healthz")
        assert response.status == 200
        result: dict[str, Any] = await response.json()
        return result


def clocks(doc: Doc[Any]) -> dict[int, int]:
    return decode_state_vector(bytes(doc.get_state()))


def missing_clocks(have: Doc[Any], seen: Doc[Any]) -> dict[int, tuple[int, int]]:
    """Clients whose structs `seen` holds and `have` lacks: {client: (have, seen)}."""
    mine = clocks(have)
    return {
        c: (mine.get(c, 0), clock) for c, clock in clocks(seen).items() if mine.get(c, 0) < clock
    }


def verify_store(data_dir: Path) -> tuple[int, str]:
    """Run `performer verify --data DIR` on a stopped (or running) server's store."""
    result = subprocess.run(
        [sys.executable, "-m", "server", "verify", "--data", str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return result.returncode, (result.stdout + result.stderr).strip()
