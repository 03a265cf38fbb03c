"""Drives `js/hocus.mjs` (documents over one `@hocuspocus/provider` socket) from tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.interop.conftest import StartNode
from tests.interop.processes import NodeProcess, ServerProcess

DEADLINE = 30.0


class Provider:
    """One Node process holding one socket; `events` keeps every line it printed."""

    def __init__(self, process: NodeProcess) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._seen = 0

    @classmethod
    async def start(
        cls, start_node: StartNode, server: ServerProcess, **options: object
    ) -> Provider:
        url = server.url.replace("http://", "ws://", 1) + "/hocuspocus"
        return cls(await start_node("hocus.mjs", url=url, **options))

    async def do(self, cmd: str, timeout: float = DEADLINE, **arguments: Any) -> dict[str, Any]:
        """Run one command; returns its answer line."""
        await self.process.send(json.dumps({"cmd": cmd, **arguments}))
        return await self.wait_for(lambda e: e["event"] == cmd, timeout, f"answer to {cmd}")

    async def wait_for(
        self, check: Callable[[dict[str, Any]], bool], timeout: float = DEADLINE, what: str = ""
    ) -> dict[str, Any]:
        """The first line not yet matched that passes `check` (reading more as needed)."""
        while True:
            for at in range(self._seen, len(self.events)):
                if check(self.events[at]):
                    self._seen = at + 1  # by position: the same answer may come twice
                    return self.events[at]
            try:
                self.events.append(await self.process.next_line(timeout))
            except TimeoutError:
                raise AssertionError(f"no {what or 'matching line'}; saw {self.events}") from None

    def matching(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]
