"""One document of a multiplexed Hocuspocus socket, as a member of its room.

`DocumentConnection` is an ordinary `Connection` (throttle, awareness, acks) joined to the
room's actor exactly as a y-websocket client is; `DocumentSink` translates what the room
sends it into the Hocuspocus dialect on the way out:

- every frame gets the document's name in front;
- the actor's "saved" acknowledgement (`Saved(count)`, cumulative) becomes one
  SyncStatus per update message newly durable: the provider counts its unsynced
  changes down with them, so its "synced" means "on disk";
- the y-websocket permission-denied becomes the Hocuspocus one (the provider's
  `authenticationFailed` event, with our reason).
"""

from __future__ import annotations

from collections.abc import Callable

from engine import hocuspocus_protocol as hp
from engine.protocol import MESSAGE_AUTH, MESSAGE_SAVED, Reader
from server.config import Limits
from server.hooks import Grant
from server.http.connection import Connection
from server.http.hocuspocus_writer import SocketWriter
from server.metrics import Metrics
from server.rooms.actor import RoomActor
from server.rooms.peer import Frame


class DocumentSink:
    """A `Connection`'s sink for one document of a multiplexed socket."""

    def __init__(
        self, document: str, writer: SocketWriter, on_close: Callable[[str, int, str], None]
    ) -> None:
        self.document = document
        self.prefix = hp.document_prefix(document)
        self._writer = writer
        self._on_close = on_close
        self._acked = 0

    def write_frames(self, frames: list[Frame]) -> None:
        self._writer.write([out for frame in frames for out in self._translate(frame)])

    def _translate(self, frame: Frame) -> list[Frame]:
        if isinstance(frame, tuple):
            return [(self.prefix, *frame)]
        if frame[0] == MESSAGE_SAVED:
            reader = Reader(frame)
            reader.varuint()
            count = reader.varuint()
            newly, self._acked = max(0, count - self._acked), max(count, self._acked)
            return [hp.sync_status(self.document, True)] * newly
        if frame[0] == MESSAGE_AUTH:
            reader = Reader(frame)
            reader.varuint()
            reader.varuint()
            return [hp.permission_denied(self.document, reader.varstring())]
        return [self.prefix + frame]

    def send_raw(self, frame: bytes) -> None:
        """A frame already in the Hocuspocus dialect (auth answers, stateless, status)."""
        self._writer.write([frame])

    def buffered_bytes(self) -> int:
        return 0  # the socket's writer judges slow consumers, for all documents at once

    def close(self, code: int, reason: str) -> None:
        self._on_close(self.document, code, reason)


class DocumentConnection(Connection):
    """A room member speaking for one document of a Hocuspocus socket."""

    sink: DocumentSink

    def __init__(self, room: RoomActor, grant: Grant, sink: DocumentSink, limits: Limits,
                 metrics: Metrics) -> None:  # fmt: skip
        super().__init__(room, grant, sink, limits, metrics, wants_ack=True)
        self.sink = sink

    def send_stateless(self, payload: str) -> None:
        if not self.closed:
            self.sink.send_raw(hp.stateless(self.sink.document, payload))
