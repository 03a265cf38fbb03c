"""The Yjs (JS) replica of the stateful test, as a Node process driven over JSON lines
(`js/replica.mjs`); same interface as the Python `Replica`."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).parent / "js" / "replica.mjs"
REPLY_DEADLINE = 30.0


class NodeReplica:
    def __init__(self, name: str) -> None:
        self.name = name
        self._process: asyncio.subprocess.Process | None = None

    async def _call(self, op: str, **params: Any) -> dict[str, Any]:
        if self._process is None:
            self._process = await asyncio.create_subprocess_exec(
                "node", str(SCRIPT), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
            )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write((json.dumps({"op": op, **params}) + "\n").encode())
        await self._process.stdin.drain()
        async with asyncio.timeout(REPLY_DEADLINE):
            line = await self._process.stdout.readline()
        if not line:
            raise AssertionError(f"{self.name}: the Node replica exited")
        reply: dict[str, Any] = json.loads(line)
        if not reply.pop("ok"):
            raise AssertionError(f"{self.name}: {op} failed: {reply['error']}")
        return reply

    async def connect(self, url: str, room: str) -> None:
        await self._call("connect", url=f"{url.replace('http://', 'ws://')}/rooms/{room}")

    async def disconnect(self) -> None:
        if self._process is not None:
            await self._call("disconnect")

    async def edit(self, op: str, **params: Any) -> None:
        await self._call(op, **params)

    async def redeliver(self, update: bytes) -> None:
        await self._call("redeliver", update=base64.b64encode(update).decode())

    async def history_updates(self) -> list[bytes]:
        reply = await self._call("history")
        return [base64.b64decode(item) for item in reply["history"]]

    async def settle(self) -> None:
        await self._call("settle")

    async def state(self) -> tuple[dict[str, Any], dict[int, int]]:
        reply = await self._call("state")
        return reply["content"], {int(k): v for k, v in reply["clocks"].items()}

    async def close(self) -> None:
        if self._process is not None:
            await self._call("quit")
            async with asyncio.timeout(REPLY_DEADLINE):
                await self._process.wait()
            self._process = None
