"""One WebSocket connection to the server: dialing, an ordered outbox, frames in."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from engine.client.errors import HANDSHAKE_CLOSES
from engine.errors import EngineError

log = logging.getLogger(__name__)

Closed = tuple[int | None, str]  # close code (None: no close frame) and reason


@dataclass(frozen=True, slots=True)
class Dialer:
    """How to open a connection to one room's URL."""

    url: URL
    headers: dict[str, str] = field(default_factory=dict)
    heartbeat: float = 20.0
    connect_timeout: float = 10.0
    max_msg_size: int = 256 * 1024 * 1024

    async def dial(self, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse | Closed:
        """An open WebSocket, or why there is none (as a close code where one fits)."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await http.ws_connect(
                    self.url,
                    headers=self.headers,
                    heartbeat=self.heartbeat,
                    max_msg_size=self.max_msg_size,
                )
        except aiohttp.WSServerHandshakeError as exc:
            return HANDSHAKE_CLOSES.get(exc.status), f"HTTP {exc.status} {exc.message}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return None, str(exc) or type(exc).__name__


class Link:
    """An open WebSocket with one writer task, so messages leave in the order queued."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, name: str) -> None:
        self.ws = ws
        self.name = name  # for log lines
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()

    def send(self, data: bytes) -> None:
        self._outbox.put_nowait(data)

    async def drain(self) -> None:
        """Wait until everything queued has been written (or could not be)."""
        await self._outbox.join()

    async def run(self, on_frame: Callable[[bytes], None]) -> Closed:
        """Hand every binary frame to `on_frame` until the connection closes.

        An `EngineError` from `on_frame` (a message that does not decode or apply) drops
        this connection; the caller decides whether to connect again.
        """
        writer = asyncio.create_task(self._write_loop())
        try:
            while True:
                frame = await self.ws.receive()
                if frame.type is aiohttp.WSMsgType.BINARY:
                    on_frame(frame.data)
                elif frame.type is aiohttp.WSMsgType.CLOSE:
                    return frame.data, frame.extra or ""
                elif frame.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return self.ws.close_code, "connection closed"
                elif frame.type is aiohttp.WSMsgType.ERROR:
                    return self.ws.close_code, f"connection error: {self.ws.exception()}"
        except EngineError as exc:
            log.warning("%s: dropping the connection: %s", self.name, exc)
            return None, str(exc)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write_loop(self) -> None:
        while True:
            data = await self._outbox.get()
            try:
                await self.ws.send_bytes(data)
            except (aiohttp.ClientError, ConnectionError) as exc:
                log.info("%s: send failed (%s); closing the connection", self.name, exc)
                await self.ws.close()
                return
            finally:
                self._outbox.task_done()
