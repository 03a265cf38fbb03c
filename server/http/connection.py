"""One client connection, independent of the WebSocket library.

It decodes frames, throttles a client that sends too fast (by reading slower, so the
flood backs up into TCP rather than into memory), routes sync messages to the room's
actor, keeps only the newest awareness payload, and batches outgoing frames: everything
queued in one event-loop tick leaves in one write.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Protocol

from engine.errors import Close, ProtocolError, close_reason
from engine.protocol import (
    AwarenessEntry,
    AwarenessUpdate,
    PermissionDeniedMessage,
    QueryAwareness,
    SyncStep1,
    SyncStep2,
    Update,
    decode,
    decode_awareness,
    encode,
)
from server.config import Limits
from server.hooks import Grant
from server.metrics import Metrics
from server.rooms.actor import READ_ONLY_REASON, RoomActor
from server.rooms.peer import Frame

log = logging.getLogger(__name__)

MIN_SLEEP_SECONDS = 0.001  # what an event loop's timer can actually wait
_peer_ids = itertools.count(1)


class Sink(Protocol):
    """The transport under a connection (a WebSocket in production, a list in tests)."""

    def write_frames(self, frames: list[Frame]) -> None: ...

    def buffered_bytes(self) -> int: ...

    def close(self, code: int, reason: str) -> None: ...


class Connection:
    """A room member; implements `server.rooms.peer.Peer`."""

    def __init__(
        self,
        room: RoomActor,
        grant: Grant,
        sink: Sink,
        limits: Limits,
        metrics: Metrics,
        *,
        wants_ack: bool,
    ) -> None:
        self.peer_id = next(_peer_ids)
        self.room = room
        self.user = grant.user
        self.can_write = grant.can_write
        self.role = grant.role
        self.wants_ack = wants_ack
        self.received_updates = 0
        self.closed = False
        self.client_kind = "y-websocket"  # shown by the console; set by the route that accepted it
        self.close_code: int | None = None
        self._sink = sink
        self._limits = limits
        self._metrics = metrics
        self._outbox: list[Frame] = []
        self._shared_bytes = 0  # shared payloads written since the buffer last drained
        self._flush_scheduled = False
        self._awareness: dict[int, AwarenessEntry] = {}
        self._tokens = float(limits.message_burst)
        self._refilled = time.monotonic()

    # ------------------------------------------------------------------ outgoing

    def send(self, frame: Frame) -> None:
        if self.closed:
            return
        self._outbox.append(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._outbox:
            return
        frames, self._outbox = self._outbox, []
        self._sink.write_frames(frames)
        # A first sync's shared payload (one object for every joiner, not a copy) may sit
        # in the buffer beyond the limit: a 100 MB room is not a slow consumer.
        self._shared_bytes += sum(len(part) for f in frames if isinstance(f, tuple) for part in f)
        buffered = self._sink.buffered_bytes()
        if buffered <= self._limits.send_buffer_bytes:
            self._shared_bytes = 0
        elif not self.closed and buffered > self._limits.send_buffer_bytes + self._shared_bytes:
            self.close(Close.SLOW_CONSUMER)

    def close(self, code: Close, detail: str | None = None) -> None:
        """Flush what is queued, then close with a documented code (idempotent)."""
        if self.closed:
            return
        if code not in (Close.GOING_AWAY,):
            log.info(
                "room %r: closing peer %d: %s",
                self.room.name,
                self.peer_id,
                close_reason(code, detail),
            )
        self._flush()
        self.closed = True
        self.close_code = int(code)
        self._sink.close(int(code), close_reason(code, detail))

    # ------------------------------------------------------------------ incoming

    async def receive(self, frame: bytes) -> None:
        """Handle one binary frame from the client."""
        await self._throttle()
        if self._handle(frame):
            await self.room.wait_for_space()

    def receive_now(self, frame: bytes) -> bool:
        """Handle one binary frame at once, as `receive` would, when nothing would make
        `receive` wait: the rate limit has a token and the room's inbox has room.
        Returns False, having done nothing, otherwise (then `receive` must have it)."""
        if self.closed or not self.room.has_space():
            return False
        self._refill()
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        self._handle(frame)
        return True

    def _handle(self, frame: bytes) -> bool:
        """Decode and route one frame; True when it went to the room's inbox."""
        try:
            message = decode(frame)
        except ProtocolError as exc:
            self._metrics.rejected.labels("malformed").inc()
            self.close(Close.MALFORMED, exc.reason)
            return False
        match message:
            case SyncStep1() | SyncStep2() | Update():
                self.room.submit(self, message)
                return True
            case AwarenessUpdate(payload):
                self._receive_awareness(payload)
            case QueryAwareness():
                states = self.room.presence.states_frame()
                if states is not None:
                    self.send(states)
            case _:
                pass  # auth and saved messages flow server -> client only; ignore
        return False

    def _receive_awareness(self, payload: bytes) -> None:
        if not self.can_write:
            self.send(encode(PermissionDeniedMessage(READ_ONLY_REASON)))
            return
        if len(payload) > self._limits.max_awareness_bytes:
            self._metrics.rejected.labels("awareness_size").inc()
            self.send(
                encode(
                    PermissionDeniedMessage(
                        f"awareness state over {self._limits.max_awareness_bytes} bytes dropped"
                    )
                )
            )
            return
        try:
            entries = decode_awareness(payload)
        except ProtocolError as exc:
            self.close(Close.MALFORMED, f"awareness: {exc.reason}")
            return
        # Merge by client id, newest clock wins: y-websocket re-broadcasts states it
        # received, so the client's own state must not be replaced by those echoes.
        pending = self._awareness
        for entry in entries:
            known = pending.get(entry.client_id)
            if known is None or entry.clock >= known.clock:
                pending[entry.client_id] = entry
        self.room.presence.mark(self)

    def take_awareness(self) -> list[AwarenessEntry]:
        entries = list(self._awareness.values())
        self._awareness = {}
        return entries

    async def _throttle(self) -> None:
        """Token bucket: past the burst, wait until the rate allows the next message.

        Tokens are recomputed from the time that really passed after every sleep: event
        loops may return from a sub-millisecond sleep at once (uvloop does), so assuming
        the sleep earned a token let any rate above ~1,000/s through unthrottled.
        """
        self._refill()
        if self._tokens < 1.0:
            self._metrics.rejected.labels("throttled").inc()
            while self._tokens < 1.0:
                rate = self._limits.messages_per_second
                await asyncio.sleep(max((1.0 - self._tokens) / rate, MIN_SLEEP_SECONDS))
                self._refill()
        self._tokens -= 1.0

    def _refill(self) -> None:
        now = time.monotonic()
        earned = (now - self._refilled) * self._limits.messages_per_second
        self._tokens = min(float(self._limits.message_burst), self._tokens + earned)
        self._refilled = now
