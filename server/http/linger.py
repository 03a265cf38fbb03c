"""A WebSocket response whose close waits for the client's close frame.

When the server closes a connection while its handler is reading (a refusal made on
arrival of a frame), aiohttp ends the TCP stream right after sending the close frame,
without reading the client's answer. A client that is still sending, or that answers
the close, then finds its socket closing: a stock aiohttp client reports 1006 instead of
the server's code and reason (about 1 refusal in 150 under the fuzzer), and bytes left
unread make the server's kernel reset the connection. Here every close lingers: the
socket is closed once the client's close frame or its end of stream has been read (a
client sends nothing after its close frame), or `LINGER_SECONDS` after the close began,
whichever path aiohttp took (it waits for the answer itself when no handler is reading,
with the same deadline).

The hook is aiohttp's internal last step of every close (`_close_transport`); without it
(another aiohttp) the response closes as aiohttp does.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType, web

LINGER_SECONDS = 2.0  # how long a closing connection waits for the client's close frame
_LAST_MESSAGES = (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.ERROR)


class LingeringWebSocketResponse(web.WebSocketResponse):
    """A `WebSocketResponse` that reads until the client's close frame before closing."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", LINGER_SECONDS)  # aiohttp's own wait for the answer
        super().__init__(**kwargs)
        self._socket: asyncio.BaseTransport | None = None
        self._close_deadline: float | None = None
        self._linger: asyncio.Task[None] | None = None

    async def prepare(self, request: web.BaseRequest) -> Any:
        writer = await super().prepare(request)
        self._socket = request.transport  # the request lets go of it before the close
        return writer

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if self._close_deadline is None:
            self._close_deadline = asyncio.get_running_loop().time() + LINGER_SECONDS
        return await super().close(code=code, message=message, drain=drain)

    def _close_transport(self) -> None:
        transport = self._socket or (self._req.transport if self._req is not None else None)
        if self._linger is not None or transport is None or transport.is_closing():
            return
        if self._reader is None or self._loop is None:  # pragma: no cover - not prepared
            transport.close()
            return
        self._linger = self._loop.create_task(self._drain_then_close(transport))

    async def _drain_then_close(self, transport: asyncio.BaseTransport) -> None:
        """Read and drop what the client still sends, then close the socket."""
        reader = self._reader
        deadline = self._close_deadline or asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout_at(deadline):
                while reader is not None:
                    message = await reader.read()
                    if message.type in _LAST_MESSAGES:
                        break
        except Exception:  # end of stream, a broken frame or the deadline: close now
            pass
        finally:
            transport.close()

    async def lingered(self) -> None:
        """Wait until a lingering close has closed the socket. A handler awaits this
        before it returns: aiohttp closes the socket as soon as the handler returns."""
        if self._linger is not None:
            await self._linger
