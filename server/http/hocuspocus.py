"""`/hocuspocus`: the Hocuspocus dialect, many documents over one WebSocket.

Each document on a socket is a `DocumentConnection`, an ordinary `Connection` (throttle,
awareness, acks) joined to the room's actor exactly as a y-websocket client is: there is
one way into a room, so rules, history, hooks, feeds and webhooks see every edit alike.
What differs is only the framing, translated in `hocuspocus_peer`.

One socket has one send path (`SocketWriter`: everything queued in one tick leaves in one
write) and one slow-consumer rule (4408 closes the socket). Per document: the auth
handshake, the read-only scope, a bad frame (that document is closed with a reason, the
others carry on), token expiry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from engine import hocuspocus_protocol as hp
from engine.errors import Close, EngineError, ProtocolError, close_reason, meaning_of
from engine.names import validate_room_name
from engine.yjs import EMPTY_UPDATE
from server.auth import Authorizer
from server.config import Config
from server.hooks import Hooks
from server.http.connection import MIN_SLEEP_SECONDS
from server.http.guard import auth_request, check_origin
from server.http.hocuspocus_peer import DocumentConnection, DocumentSink
from server.http.hocuspocus_writer import SocketWriter
from server.http.linger import LingeringWebSocketResponse
from server.http.ws import WebSocketSink
from server.metrics import Metrics
from server.rooms.registry import RoomRegistry

log = logging.getLogger(__name__)

MAX_DOCUMENTS_PER_SOCKET = 2_000
MAX_PENDING_MESSAGES = 1_000  # per document, queued while its token is checked
STATELESS_HOOK_TIMEOUT = 10.0
_SOCKET_CODES = (Close.SLOW_CONSUMER, Close.UNAVAILABLE, Close.GOING_AWAY)
"""Closes that concern the socket, not one document: the provider reconnects it whole."""


@dataclass
class _Document:
    """One document's place on a socket: waiting for its auth, or joined."""

    pending: list[hp.Envelope] = field(default_factory=list)
    draining: bool = False  # queued messages are being handed over, in order
    auth: asyncio.Task[None] | None = None
    connection: DocumentConnection | None = None
    expiry: asyncio.TimerHandle | None = None


class HocuspocusSocket:
    """One client's socket: its documents, their auth handshakes, and the dispatch."""

    def __init__(self, writer: SocketWriter, request: web.Request, *, config: Config,
                 authorizer: Authorizer, registry: RoomRegistry, hooks: Hooks,
                 metrics: Metrics) -> None:  # fmt: skip
        self.writer = writer
        self.config = config
        self.authorizer = authorizer
        self.registry = registry
        self.hooks = hooks
        self.metrics = metrics
        self.documents: dict[str, _Document] = {}
        self._request = request
        self._token_query = request.query.get("token")
        self._tokens = float(config.limits.message_burst)
        self._refilled = time.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ incoming

    async def receive(self, frame: bytes) -> None:
        """Handle one binary frame; a frame no document can be read from ends the socket."""
        await self._throttle()
        if frame == hp.PONG_FRAME:
            return
        try:
            envelope = hp.open_envelope(frame)
        except ProtocolError as exc:
            self.metrics.rejected.labels("malformed").inc()
            self.writer.close(Close.MALFORMED, f"frame without a document name: {exc.reason}")
            return
        entry = self.documents.get(envelope.document)
        if entry is None:
            if envelope.kind == hp.CLOSE:
                return  # closing what is already closed
            if len(self.documents) >= MAX_DOCUMENTS_PER_SOCKET:
                too_many = f"more than {MAX_DOCUMENTS_PER_SOCKET} documents on one socket"
                self.writer.write([hp.permission_denied(envelope.document, too_many)])
                return
            entry = self.documents[envelope.document] = _Document()
        if envelope.kind == hp.CLOSE:
            self._leave(
                envelope.document, "closed by the client", tell=entry.connection is not None
            )
        elif entry.connection is not None and not entry.draining:
            await self._dispatch(entry.connection, envelope)
        elif envelope.kind == hp.AUTH and entry.auth is None:
            self._start_auth(envelope, entry)
        elif len(entry.pending) < MAX_PENDING_MESSAGES:
            entry.pending.append(envelope)
        else:
            self._refuse(envelope.document, "too many messages before authentication")

    async def _dispatch(self, conn: DocumentConnection, envelope: hp.Envelope) -> None:
        kind = envelope.kind
        try:
            if kind in (hp.SYNC, hp.SYNC_REPLY, hp.AWARENESS, hp.QUERY_AWARENESS):
                if not conn.can_write and self._read_only_skips(conn, envelope):
                    return
                await conn.receive(envelope.as_y_websocket())
            elif kind == hp.STATELESS:
                self._stateless(conn, hp.read_stateless(envelope.body))
            elif kind == hp.AUTH:
                hp.read_token(envelope.body)  # a token again on a joined document: nothing to do
            else:
                raise ProtocolError(0, f"unknown message type {kind}")
        except ProtocolError as exc:
            self.metrics.rejected.labels("malformed").inc()
            conn.close(Close.MALFORMED, exc.reason)

    def _read_only_skips(self, conn: DocumentConnection, envelope: hp.Envelope) -> bool:
        """What a read-only document does not send on to its connection: awareness is
        dropped quietly (a Tiptap caret moves on every keystroke; a permission-denied
        for each would drown the one that matters), and a step 2 with nothing in it is
        answered "saved" (the provider counts it); edits go on to be refused."""
        if envelope.kind == hp.AWARENESS:
            return True
        body = envelope.body
        empty_step2 = b"\x01" + bytes((len(EMPTY_UPDATE),)) + EMPTY_UPDATE
        if envelope.kind in (hp.SYNC, hp.SYNC_REPLY) and body[1:] == empty_step2:
            conn.sink.send_raw(hp.sync_status(envelope.document, True))
            return True
        return False

    def _stateless(self, conn: DocumentConnection, payload: str) -> None:
        """Relayed to the room's other Hocuspocus connections (on every process) and to
        the hook; never stored."""
        conn.room.presence.relay_stateless(payload, skip=conn)
        conn.room.fanout.publish_stateless(conn.room.name, payload)
        if self.hooks.handles_stateless:
            _ = self._spawn(self._stateless_hook(conn.room.name, conn.user, payload))

    async def _stateless_hook(self, room: str, user: str | None, payload: str) -> None:
        try:
            async with asyncio.timeout(STATELESS_HOOK_TIMEOUT):
                await self.hooks.on_stateless(room, user, payload)
        except Exception:
            log.exception("room %r: on_stateless failed", room)

    # ------------------------------------------------------------------ auth and joining

    def _start_auth(self, envelope: hp.Envelope, entry: _Document) -> None:
        try:
            token = hp.read_token(envelope.body)
        except ProtocolError as exc:
            self._refuse(envelope.document, f"malformed auth message: {exc.reason}")
            return
        entry.auth = self._spawn(self._authenticate(envelope.document, token or self._token_query))

    async def _authenticate(self, document: str, token: str | None) -> None:
        try:
            validate_room_name(document)  # before the authenticate hook hears of it
            request = auth_request(self._request, token, document)
            grant = await self.authorizer.check(token, document, request)
            actor = await self.registry.acquire(document)
        except EngineError as exc:
            self._refuse(document, close_reason(meaning_of(exc).close, str(exc)))
            return
        entry = self.documents.get(document)
        if entry is None or entry.auth is not asyncio.current_task() or self.writer.closed:
            return  # closed while its token was checked
        self.writer.write([hp.authenticated(document, read_only=not grant.can_write)])
        sink = DocumentSink(document, self.writer, self._connection_closed)
        conn = DocumentConnection(actor, grant, sink, self.config.limits, self.metrics)
        conn.client_kind = "hocuspocus"  # shown by the console (GET /v1/rooms/{room}/connections)
        try:
            actor.join(conn)
        except EngineError as exc:
            self._refuse(document, close_reason(meaning_of(exc).close, str(exc)))
            return
        entry.connection = conn
        entry.draining = True
        self.metrics.connections.inc()
        if grant.expires_at is not None:
            delay = max(0.0, grant.expires_at - time.time())
            entry.expiry = asyncio.get_running_loop().call_later(
                delay, conn.close, Close.UNAUTHORIZED, "token expired"
            )
        while entry.pending and not conn.closed:
            await self._dispatch(conn, entry.pending.pop(0))
        entry.draining = False

    def _refuse(self, document: str, reason: str) -> None:
        """Permission denied for this document; the socket and its other documents stay."""
        self.writer.write([hp.permission_denied(document, reason)])
        self._leave(document, reason, tell=False)

    # ------------------------------------------------------------------ closing

    def _connection_closed(self, document: str, code: int, reason: str) -> None:
        """A document's connection closed itself (bad frame, quota, expiry); storage
        failure and shutdown close the socket, so the provider reconnects it whole."""
        if code in _SOCKET_CODES:
            self.writer.close_with(code, reason)
        self._leave(document, reason)

    def _leave(self, document: str, reason: str, *, tell: bool = True) -> None:
        entry = self.documents.pop(document, None)
        if entry is None:
            return
        if entry.auth is not None and entry.auth is not asyncio.current_task():
            entry.auth.cancel()
        conn = entry.connection
        if conn is None:
            return
        if entry.expiry is not None:
            entry.expiry.cancel()
        conn.closed = True
        conn.room.leave(conn)
        self.metrics.connections.dec()
        if tell:
            self.writer.write([hp.close_document(document, reason)])

    def close_all(self) -> None:
        """The socket ended: every document leaves its room."""
        for document in list(self.documents):
            self._leave(document, "socket closed", tell=False)
        for task in list(self._tasks):
            task.cancel()

    # ------------------------------------------------------------------ helpers

    def _spawn(self, coro: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _throttle(self) -> None:
        """The socket's token bucket (each document also has its own, in Connection)."""
        limits = self.config.limits
        self._refill()
        while self._tokens < 1.0:
            self.metrics.rejected.labels("throttled").inc()
            rate = limits.messages_per_second
            await asyncio.sleep(max((1.0 - self._tokens) / rate, MIN_SLEEP_SECONDS))
            self._refill()
        self._tokens -= 1.0

    def _refill(self) -> None:
        now = time.monotonic()
        limits = self.config.limits
        earned = (now - self._refilled) * limits.messages_per_second
        self._tokens = min(float(limits.message_burst), self._tokens + earned)
        self._refilled = now


async def handle_hocuspocus(
    request: web.Request,
    *,
    config: Config,
    authorizer: Authorizer,
    registry: RoomRegistry,
    hooks: Hooks,
    metrics: Metrics,
) -> web.WebSocketResponse:
    """`/hocuspocus`: one client socket, any number of documents. A browser page from an
    origin not allowed gets HTTP 403 before the upgrade, as on `/rooms`."""
    check_origin(request, config.allowed_origins)
    ws = LingeringWebSocketResponse(
        heartbeat=config.heartbeat_seconds,
        compress=False,
        max_msg_size=config.limits.max_frame_bytes,
    )
    await ws.prepare(request)
    transport = request.transport
    if transport is None or transport.is_closing():
        return ws
    writer = SocketWriter(WebSocketSink(ws, transport), config.limits)
    socket = HocuspocusSocket(
        writer, request, config=config, authorizer=authorizer,
        registry=registry, hooks=hooks, metrics=metrics,
    )  # fmt: skip
    try:
        async for message in ws:
            if message.type is WSMsgType.BINARY:
                await socket.receive(message.data)
            elif message.type is WSMsgType.TEXT:
                writer.close(Close.MALFORMED, "text frames are not part of the protocol")
            if writer.closed:
                break
    finally:
        socket.close_all()
        await writer.closed_down()
    await ws.lingered()
    return ws
