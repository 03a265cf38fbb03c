"""A raw y-websocket client for protocol-level tests: it sends exactly what a test says
and reports exactly what the server sent back, including close codes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from pycrdt import Doc, Text

from engine.protocol import (
    Message,
    Saved,
    SyncStep1,
    SyncStep2,
    Update,
    decode,
    encode,
)

WAIT = 10.0


class WireClient:
    """One connection; `doc` mirrors what the server sent (updates are applied)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.doc: Doc[Any] = Doc()
        self.received: list[Message] = []
        self.close_code: int | None = None
        self.close_reason: str = ""

    async def send(self, message: Message) -> None:
        await self.ws.send_bytes(encode(message))

    async def send_raw(self, frame: bytes) -> None:
        await self.ws.send_bytes(frame)

    async def recv(self, timeout: float = WAIT) -> Message | None:
        """The next message, or None once the server closed the socket."""
        async with asyncio.timeout(timeout):
            frame = await self.ws.receive()
        if frame.type == aiohttp.WSMsgType.BINARY:
            message = decode(frame.data)
            self.received.append(message)
            if isinstance(message, (SyncStep2, Update)):
                self.doc.apply_update(message.update)
            return message
        if frame.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        ):
            self.close_code = self.ws.close_code
            self.close_reason = str(frame.extra or "")
            return None
        if frame.type == aiohttp.WSMsgType.ERROR:  # the TCP connection broke (reset, killed peer)
            raise ConnectionError(f"socket error: {self.ws.exception()!r}")
        raise AssertionError(f"unexpected frame {frame.type!r}")

    async def wait_for(self, kind: type[Message], timeout: float = WAIT) -> Message:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.recv(timeout)
                if message is None:
                    raise AssertionError(f"closed ({self.close_code}) while waiting for {kind}")
                if isinstance(message, kind):
                    return message

    async def wait_closed(self, timeout: float = WAIT) -> int | None:
        async with asyncio.timeout(timeout):
            while await self.recv(timeout) is not None:
                pass
        return self.close_code

    async def sync(self) -> None:
        """Do the client side of the handshake and wait for the server's SyncStep2."""
        await self.send(SyncStep1(bytes(self.doc.get_state())))
        await self.wait_for(SyncStep2)

    async def wait_text(self, expected: str, timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while self.text() != expected:
                if await self.recv(timeout) is None:
                    raise AssertionError(f"closed with text {self.text()!r}")

    async def wait_saved(self, count: int, timeout: float = WAIT) -> Saved:
        async with asyncio.timeout(timeout):
            while True:
                message = await self.wait_for(Saved, timeout)
                assert isinstance(message, Saved)
                if message.count >= count:
                    return message

    def text(self, name: str = "t") -> str:
        return str(self.doc.get(name, type=Text))


def edit(doc: Doc[Any], text: str, name: str = "t") -> bytes:
    """Append `text` in `doc` and return the update it made."""
    updates: list[bytes] = []
    subscription = doc.observe(lambda event: updates.append(bytes(event.update)))
    doc.get(name, type=Text).insert(len(doc.get(name, type=Text)), text)
    doc.unobserve(subscription)
    return updates[0]


@asynccontextmanager
async def connect(
    base_url: str,
    room: str,
    *,
    token: str | None = None,
    ack: bool = False,
    headers: dict[str, str] | None = None,
    max_msg_size: int = 64 * 2**20,
) -> AsyncIterator[WireClient]:
    """Connect to `ws://.../rooms/{room}`; base_url is the server's http:// URL."""
    params = {}
    if token is not None:
        params["token"] = token
    if ack:
        params["ack"] = "1"
    url = base_url.replace("http://", "ws://") + f"/rooms/{room}"
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(
            url, params=params, headers=headers, max_msg_size=max_msg_size, autoclose=False
        )
        client = WireClient(ws)
        try:
            yield client
        finally:
            await ws.close()


async def durable_text(base_url: str, room: str, name: str = "t") -> str:
    """The room's text as the server has it on disk (`GET .../state`)."""
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{base_url}/v1/rooms/{room}/state")
        assert response.status == 200, await response.text()
        doc: Doc[Any] = Doc()
        doc.apply_update(await response.read())
        return str(doc.get(name, type=Text))
