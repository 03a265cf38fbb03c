"""A real webhook receiver on a loopback port: records what it gets, answers as told."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """`status` is what it answers; `hang` makes it never answer; `redirect` sends 307."""

    status: int = 200
    hang: bool = False
    redirect: bool = False
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, port: int = 0) -> None:
        """Listen on `port` (0: a free one; a restarted receiver passes its old one)."""
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        app.router.add_post("/elsewhere", self._handle)
        # A hanging handler must not hold the test for aiohttp's default minute on shutdown.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append(Received(await request.read(), dict(request.headers)))
        self._arrived.set()
        if self.hang:
            await asyncio.Event().wait()
        if self.redirect:
            raise web.HTTPTemporaryRedirect("/elsewhere")
        return web.Response(status=self.status)

    async def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                self._arrived.clear()
                await self._arrived.wait()

    def acknowledged_upto(self, room: str) -> int:
        """The highest to_seq of a room in the requests the receiver said 2xx to."""
        return max((r.payload["to_seq"] for r in self.received if r.payload["room"] == room),
                   default=0)  # fmt: skip


def verify(secret: str, received: Received) -> bool:
    """What a receiver does: recompute the HMAC of the raw body, compare in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received.headers.get("X-Performer-Signature", ""))
