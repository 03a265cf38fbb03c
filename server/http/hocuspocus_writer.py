"""One multiplexed socket's send path: every document's frames, one write per tick.

The slow-consumer rule is the socket's, not a document's: past `send_buffer_bytes`
unsent (not counting shared first-sync payloads, which are one object for every joiner),
the whole socket is closed with 4408, as a y-websocket connection would be.
"""

from __future__ import annotations

import asyncio
import logging

from engine.errors import Close, close_reason
from server.config import Limits
from server.http.ws import WebSocketSink
from server.rooms.peer import Frame

log = logging.getLogger(__name__)


class SocketWriter:
    def __init__(self, sink: WebSocketSink, limits: Limits) -> None:
        self.closed = False
        self._sink = sink
        self._limits = limits
        self._outbox: list[Frame] = []
        self._shared_bytes = 0
        self._flush_scheduled = False

    def write(self, frames: list[Frame]) -> None:
        """Queue frames (already in the socket's dialect); they leave with this tick's write."""
        if self.closed or not frames:
            return
        self._outbox += frames
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outbox or self.closed:
            return
        frames, self._outbox = self._outbox, []
        self._sink.write_frames(frames)
        self._shared_bytes += sum(
            len(part) for frame in frames if isinstance(frame, tuple) for part in frame[1:]
        )
        buffered = self._sink.buffered_bytes()
        limit = self._limits.send_buffer_bytes
        if buffered <= limit:
            self._shared_bytes = 0
        elif buffered > limit + self._shared_bytes:
            self.close(Close.SLOW_CONSUMER)

    def close(self, code: Close, detail: str | None = None) -> None:
        """Flush what is queued, then close the socket (idempotent)."""
        self.close_with(int(code), close_reason(code, detail))

    def close_with(self, code: int, reason: str) -> None:
        if self.closed:
            return
        if code != Close.GOING_AWAY:
            log.info("hocuspocus socket: closing: %s", reason)
        self._flush()
        self.closed = True
        self._sink.close(code, reason)

    async def closed_down(self) -> None:
        """Wait for the close handshake this writer started, if any."""
        if self._sink.close_task is not None:
            await self._sink.close_task
