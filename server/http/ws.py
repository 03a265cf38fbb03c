"""The aiohttp WebSocket adapter: the only module that knows aiohttp's WebSocket types.

Outgoing frames are written straight to the transport, several per write: permessage-
deflate is off, so a binary frame from server to client is just a 2-10 byte header and
the payload, and one `transport.write` per tick replaces one per frame.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time

from aiohttp import WSMsgType, web

from engine.errors import Close, EngineError, close_reason, meaning_of
from engine.names import validate_room_name
from server.auth import Authorizer, bearer_token
from server.config import Config
from server.http.connection import Connection
from server.http.direct_read import DirectWebSocketResponse
from server.http.guard import auth_request, check_origin
from server.http.room_stats import client_kind
from server.metrics import Metrics
from server.rooms.peer import Frame
from server.rooms.registry import RoomRegistry

log = logging.getLogger(__name__)

_BINARY_FIN = 0x82
_SHARED_PART = 64 * 1024


def binary_frame_header(size: int) -> bytes:
    """RFC 6455 header of an unmasked, final binary frame."""
    if size < 126:
        return bytes((_BINARY_FIN, size))
    if size < 65536:
        return struct.pack("!BBH", _BINARY_FIN, 126, size)
    return struct.pack("!BBQ", _BINARY_FIN, 127, size)


class WebSocketSink:
    """Connection's transport: raw binary frames to the socket, closes through aiohttp."""

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport) -> None:
        self._ws = ws
        self._transport = transport
        self._closing = False
        self.close_task: asyncio.Task[bool] | None = None

    def write_frames(self, frames: list[Frame]) -> None:
        """Small frames are joined into one write; a frame in parts keeps its large
        payload apart, written as the very object every joiner shares (uvloop holds on
        to it until sent rather than copying it into a buffer)."""
        if self._closing or self._transport.is_closing():
            return
        parts: list[bytes] = []
        for frame in frames:
            if isinstance(frame, bytes):
                parts += (binary_frame_header(len(frame)), frame)
                continue
            parts.append(binary_frame_header(sum(len(part) for part in frame)))
            for part in frame:
                if len(part) < _SHARED_PART:
                    parts.append(part)
                    continue
                self._transport.write(b"".join(parts))
                self._transport.write(part)
                parts = []
        if parts:
            self._transport.write(b"".join(parts))

    def buffered_bytes(self) -> int:
        return self._transport.get_write_buffer_size()

    def close(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        self.close_task = asyncio.get_running_loop().create_task(
            self._ws.close(code=code, message=reason.encode("utf-8"))
        )


async def refuse(ws: web.WebSocketResponse, code: Close, detail: str | None = None) -> None:
    await ws.close(code=int(code), message=close_reason(code, detail).encode("utf-8"))


async def handle_websocket(
    request: web.Request,
    *,
    config: Config,
    authorizer: Authorizer,
    registry: RoomRegistry,
    metrics: Metrics,
) -> web.WebSocketResponse:
    """`/rooms/{room}`: the y-websocket protocol for one client. A browser page from an
    origin not allowed gets HTTP 403 before the upgrade; a bad room name is refused
    before the authenticate hook is asked about it."""
    check_origin(request, config.allowed_origins)
    ws = DirectWebSocketResponse(
        heartbeat=config.heartbeat_seconds,
        compress=False,
        max_msg_size=config.limits.max_frame_bytes,
    )
    await ws.prepare(request)
    room_name = request.match_info["room"]
    token = bearer_token(request.headers.get("Authorization"), request.query.get("token"))
    try:
        validate_room_name(room_name)
        grant = await authorizer.check(token, room_name, auth_request(request, token, room_name))
        actor = await registry.acquire(room_name)
    except EngineError as exc:  # the error table decides the close code
        await refuse(ws, meaning_of(exc).close, str(exc))
        await ws.lingered()
        return ws
    transport = request.transport
    if transport is None or transport.is_closing():
        return ws  # the client left while its room loaded; the room unloads when idle
    sink = WebSocketSink(ws, transport)
    conn = Connection(
        actor, grant, sink, config.limits, metrics, wants_ack=request.query.get("ack") == "1"
    )
    conn.client_kind = client_kind(request.headers.get("User-Agent", ""))  # for the console
    await _serve(ws, conn, sink, grant.expires_at, metrics)
    await ws.lingered()  # the socket closes once the client's close frame is read
    return ws


async def _serve(
    ws: DirectWebSocketResponse,
    conn: Connection,
    sink: WebSocketSink,
    expires_at: float | None,
    metrics: Metrics,
) -> None:
    """Join the room, read until the socket ends (or the grant expires), then leave."""
    expiry = None
    if expires_at is not None:
        delay = max(0.0, expires_at - time.time())
        expiry = asyncio.get_running_loop().call_later(
            delay, conn.close, Close.UNAUTHORIZED, "token expired"
        )
    metrics.connections.inc()
    try:
        conn.room.join(conn)
        ws.hand_frames_to(conn)  # joined: its frames may now skip the read loop
        await _read_loop(ws, conn)
    finally:
        metrics.connections.dec()
        if expiry is not None:
            expiry.cancel()
        conn.room.leave(conn)
        conn.closed = True
        if sink.close_task is not None:
            await sink.close_task


async def _read_loop(ws: web.WebSocketResponse, conn: Connection) -> None:
    async for message in ws:
        if message.type is WSMsgType.BINARY:
            await conn.receive(message.data)
        elif message.type is WSMsgType.TEXT:
            conn.close(Close.MALFORMED, "text frames are not part of the protocol")
        elif message.type is WSMsgType.ERROR:
            log.info("room %r: peer %d: %s", conn.room.name, conn.peer_id, ws.exception())
        if conn.closed:
            break
