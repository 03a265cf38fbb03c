"""Binary frames go from aiohttp's frame parser straight to the connection.

aiohttp parses WebSocket frames inside the socket's `data_received` (its compiled
reader: unmasking, fragmentation, control frames, the size limit) and queues each
message for the handler task, which wakes up, takes it and hands it on: a task switch
and a queue round trip per frame. Here the queue itself offers each binary message to
the connection at once (`Connection.receive_now`); the connection takes it when nothing
would make it wait (rate limit, full room inbox). Everything else, and every message
behind one that waits, is queued as before, so the handler's read loop still sees
control frames, close handshakes, errors and the slow cases in arrival order.

The parser is swapped for one feeding this queue inside `_post_start`, before any byte
of the WebSocket stream reached the old one (bytes that came with the upgrade request
are handed to the new parser). The hooks are aiohttp internals: when they are missing
(another aiohttp), the response stays a plain `WebSocketResponse` and nothing changes.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from engine.errors import Close
from server.http.linger import LingeringWebSocketResponse

_aiohttp_reader: Any
try:  # internals of aiohttp >= 3.11; absent: the plain path is used
    _aiohttp_reader = importlib.import_module("aiohttp._websocket.reader")
except ImportError:  # pragma: no cover - depends on the installed aiohttp
    _aiohttp_reader = None

log = logging.getLogger(__name__)

_QUEUE_LIMIT = 2**16  # aiohttp's own (DEFAULT_CHUNK_SIZE): when the queue pauses reading


class Receiver(Protocol):
    def receive_now(self, frame: bytes) -> bool: ...

    def close(self, code: Close, detail: str | None = None) -> None: ...


def _direct_queue_class() -> type[Any] | None:
    base = getattr(_aiohttp_reader, "WebSocketDataQueue", None)
    if base is None or not hasattr(web.WebSocketResponse, "_post_start"):
        return None

    class DirectQueue(base):  # type: ignore[misc, valid-type]
        """aiohttp's message queue that first offers binary messages to a receiver."""

        receiver: Receiver | None = None

        def feed_data(self, data: Any, size: int) -> None:
            receiver = self.receiver
            if receiver is not None and data[0] is WSMsgType.BINARY and not self._buffer:
                try:
                    if receiver.receive_now(data[1]):
                        return
                except Exception:  # never into aiohttp's data_received
                    log.exception("a frame failed on the direct path")
                    receiver.close(Close.UNAVAILABLE, "internal error, reconnect")
                    return
            super().feed_data(data, size)

    return DirectQueue


_DirectQueue = _direct_queue_class()


class DirectWebSocketResponse(LingeringWebSocketResponse):
    """A `WebSocketResponse` whose binary frames may skip the handler task."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._direct: Any = None

    @property
    def direct(self) -> bool:
        """Whether frames take the direct path (False: a plain response)."""
        return self._direct is not None

    def hand_frames_to(self, receiver: Receiver) -> None:
        """From now on, binary frames may go to `receiver.receive_now` on arrival."""
        if self._direct is not None:
            self._direct.receiver = receiver

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        handler = request.protocol
        hooks = ("_message_tail", "_payload_parser", "_data_received_cb")
        if _DirectQueue is None or not all(hasattr(handler, name) for name in hooks):
            super()._post_start(request, protocol, writer)
            return
        tail, handler._message_tail = handler._message_tail, b""
        super()._post_start(request, protocol, writer)  # its parser has seen no byte
        queue = _DirectQueue(request._protocol, _QUEUE_LIMIT, loop=self._loop)
        parser = _aiohttp_reader.WebSocketReader(
            queue,
            self._max_msg_size,
            compress=bool(self._compress),
            decode_text=self._decode_text,
        )
        callback = handler._data_received_cb
        handler._payload_parser = None
        handler._message_tail = tail
        self._reader, self._parser, self._direct = queue, parser, queue
        handler.set_parser(parser, data_received_cb=callback)
