"""The Python client SDK: a local, durable replica of one room, kept in sync with a server.

    async with connect("ws://127.0.0.1:8080/rooms", "lobby", store_path="./client-data") as c:
        c.doc.get("messages", type=Array).append("hi")   # works online or offline
        await c.synced()   # the first sync with the server is done
        await c.saved()    # every local edit so far is durable on the server

Offline first: every local edit is written to a local LMDB store before it is sent, and
the document is rebuilt from that store on start, so edits made with no server survive a
restart of the process. On every (re)connect the ordinary Yjs state-vector exchange sends
the server whatever it lacks. The server's opt-in "saved" acknowledgement (`?ack=1`)
says which of this connection's messages are durable; the highest confirmed position in
the local log is kept on disk too, so a restarted client knows what is still unconfirmed.

Only aiohttp's client is used here; the engine never imports `aiohttp.web`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Callable
from typing import Any, Literal

import aiohttp
from pycrdt import Awareness, Doc, TransactionEvent
from yarl import URL

from engine.client_support import (
    HTTP_TO_CLOSE,
    SLOW_DOWN_CLOSES,
    AuthError,
    Backoff,
    ClientClosed,
    ConnectionRejected,
    LocalStore,
    WriteDenied,
    fatal_error,
)
from engine.errors import EngineError, UpdateRejected
from engine.names import validate_room_name
from engine.protocol import Message, Saved, decode, encode
from engine.session import SyncSession
from engine.yjs import EMPTY_UPDATE

__all__ = [
    "AuthError",
    "Backoff",
    "Client",
    "ClientClosed",
    "ConnectionRejected",
    "LocalStore",
    "Status",
    "WriteDenied",
    "connect",
    "edit_and_save",
]

log = logging.getLogger(__name__)

Status = Literal["offline", "connecting", "synced", "saved"]


class Client:
    """One room, replicated locally and synced with a server; see `connect`.

    Attributes:
        doc: the pycrdt Doc; edit it at any time, online or not.
        awareness: pycrdt Awareness; `set_local_state` is sent to the server.
    """

    def __init__(
        self,
        url: str,
        room: str,
        *,
        token: str | None = None,
        store_path: str | os.PathLike[str] = "./client-data",
        backoff: Backoff | None = None,
        heartbeat: float = 20.0,
        connect_timeout: float = 10.0,
        max_msg_size: int = 256 * 1024 * 1024,
    ) -> None:
        self.room = validate_room_name(room)
        self.url = URL(url.rstrip("/")).joinpath(room).update_query(ack="1")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.backoff = backoff or Backoff()
        self._heartbeat = heartbeat
        self._connect_timeout = connect_timeout
        self._max_msg_size = max_msg_size
        self._store = LocalStore(store_path, room)
        self.doc: Doc[Any] = Doc()
        for update in self._store.load():
            self.doc.apply_update(update)
        self._confirmed = self._store.confirmed()
        self._pending_mark = self._store.last_seq if self._store.last_seq > self._confirmed else 0
        self.awareness = Awareness(self.doc)
        self._session: SyncSession | None = None
        self._outbox: asyncio.Queue[bytes] | None = None
        self._applying_remote = False
        self._status: Status = "offline"
        self._status_callbacks: list[Callable[[Status], None]] = []
        self._changed = asyncio.Event()
        self._error: EngineError | None = None
        self._denied: str | None = None
        self._closed = False
        self._tasks: list[asyncio.Task[None]] = []
        self._doc_subscription = self.doc.observe(self._on_doc_change)
        self._awareness_subscription = self.awareness.observe(self._on_awareness_change)

    # ------------------------------------------------------------------ public API

    @property
    def status(self) -> Status:
        """offline | connecting | synced (edits pending) | saved (nothing pending)."""
        return self._status

    @property
    def error(self) -> EngineError | None:
        """The error that stopped the client for good (bad token, rejected data), if any."""
        return self._error

    def on_status(self, callback: Callable[[Status], None]) -> Callable[[], None]:
        """Call `callback(status)` on every status change; returns an unsubscribe function."""
        self._status_callbacks.append(callback)
        return lambda: self._status_callbacks.remove(callback)

    async def synced(self) -> None:
        """Wait until this client is in sync with the server (immediately if it is now).

        Raises:
            AuthError, ConnectionRejected: the server refused this client for good.
            ClientClosed: the client was closed first.
        """
        await self._wait(lambda: self._status in ("synced", "saved"))

    async def saved(self) -> None:
        """Wait until every local edit made so far is durable on the server.

        Needs a server with the "saved" acknowledgement; survives reconnects (edits a
        dropped connection did not confirm are sent again by the next sync).

        Raises:
            WriteDenied: the server refused our edits (read-only token).
            AuthError, ConnectionRejected, ClientClosed: as for `synced`.
        """
        target = self._pending_mark
        await self._wait(lambda: self._confirmed >= target, writes=True)

    async def start(self) -> None:
        """Start connecting in the background; the doc is usable before and during."""
        if self._tasks:
            raise RuntimeError("client already started")
        self._store.compact()
        self._tasks = [
            asyncio.create_task(self._run(), name=f"performer-client:{self.room}"),
            asyncio.create_task(self._renew_presence(), name="performer-client:presence"),
        ]

    async def close(self) -> None:
        """Say goodbye (presence removal, best effort), stop syncing, close the local store."""
        if self._closed:
            return
        self.awareness.set_local_state(None)
        if self._outbox is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), timeout=1.0)
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.awareness.unobserve(self._awareness_subscription)
        self._store.close()
        self._set_status("offline")
        self._notify()  # waiters raise ClientClosed

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ replica (for SyncSession)

    def state_vector(self) -> bytes:
        return bytes(self.doc.get_state())

    def diff(self, state_vector: bytes) -> bytes:
        try:
            return bytes(self.doc.get_update(state_vector))
        except ValueError as exc:
            raise UpdateRejected(f"server sent a state vector that does not decode: {exc}") from exc

    def apply_remote(self, update: bytes) -> None:
        """Apply and persist a server update; never echoed back."""
        if update == EMPTY_UPDATE:
            return
        self._applying_remote = True
        try:
            self.doc.apply_update(update)
        except ExceptionGroup as group:
            # Applied; only some observer failed. That is the observer's bug: keep the
            # update and the connection.
            log.error("room %r: a document observer failed", self.room, exc_info=group)
        except BaseException as exc:
            # pyo3 panics are BaseExceptions; they still mean "bad update", not "exit".
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            raise UpdateRejected(f"server sent an update that does not apply: {exc}") from exc
        finally:
            self._applying_remote = False
        self._store.append(update)

    # ------------------------------------------------------------------ local changes

    def _on_doc_change(self, event: TransactionEvent) -> None:
        if self._applying_remote:
            return
        update = bytes(event.update)
        if update == EMPTY_UPDATE:
            return
        if self._closed:
            raise ClientClosed("edit after close() is not persisted or sent")
        mark = self._store.append(update)  # durable locally before it can be sent
        self._pending_mark = mark
        if self._session is not None:
            self._send(self._session.local_update(update, mark))
        self._refresh_status()

    def _on_awareness_change(self, topic: str, change: tuple[dict[str, Any], Any]) -> None:
        _changes, origin = change
        if topic != "update" or origin != "local" or self._session is None:
            return
        payload = self.awareness.encode_awareness_update([self.awareness.client_id])
        self._send(self._session.local_awareness(payload))

    def _send(self, messages: list[Message]) -> None:
        if self._outbox is not None:
            for message in messages:
                self._outbox.put_nowait(encode(message))

    # ------------------------------------------------------------------ connection loop

    async def _run(self) -> None:
        """Connect, serve, and reconnect with backoff until closed or refused for good."""
        try:
            await self._reconnect_loop()
        except Exception as exc:
            log.exception("room %r: sync stopped by an unexpected error", self.room)
            self._error = EngineError(f"sync stopped by an unexpected error: {exc!r}")
            self._error.__cause__ = exc
            self._set_status("offline")
            self._notify()

    async def _reconnect_loop(self) -> None:
        rng = random.Random()
        attempt = 0
        async with aiohttp.ClientSession() as http:
            while not self._closed:
                self._set_status("connecting")
                code, reason, was_synced = await self._connect_once(http)
                fatal = fatal_error(code, reason)
                self._set_status("offline")
                if fatal is not None:
                    log.error("room %r: %s; not reconnecting", self.room, fatal)
                    self._error = fatal
                    self._notify()
                    return
                attempt = 0 if was_synced and code not in SLOW_DOWN_CLOSES else attempt + 1
                delay = self.backoff.delay(attempt, rng)
                log.info(
                    "room %r: disconnected (%s %s); retry in %.2fs", self.room, code, reason, delay
                )
                await asyncio.sleep(delay)

    async def _connect_once(self, http: aiohttp.ClientSession) -> tuple[int | None, str, bool]:
        """One connection from open to close; returns (close code, reason, had synced)."""
        try:
            async with asyncio.timeout(self._connect_timeout):
                ws = await http.ws_connect(
                    self.url,
                    headers=self._headers,
                    heartbeat=self._heartbeat,
                    max_msg_size=self._max_msg_size,
                )
        except aiohttp.WSServerHandshakeError as exc:
            return HTTP_TO_CLOSE.get(exc.status), f"HTTP {exc.status} {exc.message}", False
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return None, str(exc) or type(exc).__name__, False
        async with ws:
            session = SyncSession(self, self.awareness)
            try:
                code, reason = await self._serve(ws, session)
            finally:
                self._session = None
                self._outbox = None
                self._forget_remote_presence()
            return code, reason, session.synced

    async def _serve(
        self, ws: aiohttp.ClientWebSocketResponse, session: SyncSession
    ) -> tuple[int | None, str]:
        outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._session, self._outbox = session, outbox
        writer = asyncio.create_task(_write_loop(ws, outbox))
        try:
            self._send(session.open())
            while True:
                frame = await ws.receive()
                if frame.type is aiohttp.WSMsgType.BINARY:
                    self._on_frame(session, frame.data)
                elif frame.type is aiohttp.WSMsgType.CLOSE:
                    return frame.data, frame.extra or ""
                elif frame.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return ws.close_code, "connection closed"
                elif frame.type is aiohttp.WSMsgType.ERROR:
                    return ws.close_code, f"connection error: {ws.exception()}"
        except EngineError as exc:
            log.warning("room %r: dropping connection: %s", self.room, exc)
            return None, str(exc)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    def _on_frame(self, session: SyncSession, data: bytes) -> None:
        message = decode(data)
        denied_before = len(session.denied)
        self._send(session.receive(message, self._store.last_seq))
        if len(session.denied) > denied_before:
            self._denied = session.denied[-1]
            log.warning("room %r: server denied a write: %s", self.room, self._denied)
            self._notify()
        if isinstance(message, Saved) and session.confirmed_mark > self._confirmed:
            self._confirmed = session.confirmed_mark
            self._store.set_confirmed(self._confirmed)
        self._refresh_status()

    def _forget_remote_presence(self) -> None:
        """Offline, we cannot know who is still there (y-websocket does the same)."""
        others = [cid for cid in self.awareness.states if cid != self.awareness.client_id]
        if others:
            self.awareness.remove_awareness_states(others, "connection closed")

    async def _renew_presence(self) -> None:
        """Re-announce our presence before peers time it out (30 s in y-protocols)."""
        while True:
            await asyncio.sleep(15)
            state = self.awareness.get_local_state()
            if state is not None:
                self.awareness.set_local_state(state)

    # ------------------------------------------------------------------ status and waiting

    def _refresh_status(self) -> None:
        session = self._session
        if session is None:
            return
        if not (session.synced and session.answered):
            self._set_status("connecting")
        elif self._confirmed >= self._pending_mark:
            self._set_status("saved")
        else:
            self._set_status("synced")

    def _set_status(self, status: Status) -> None:
        if status == self._status:
            return
        self._status = status
        for callback in list(self._status_callbacks):
            try:
                callback(status)
            except Exception:
                log.exception("room %r: status callback failed", self.room)
        self._notify()

    def _notify(self) -> None:
        """Wake every waiter; each re-checks its own condition."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, done: Callable[[], bool], *, writes: bool = False) -> None:
        while not done():
            if self._error is not None:
                raise self._error
            if writes and self._denied is not None:
                raise WriteDenied(f"the server refused our edits: {self._denied}")
            if self._closed:
                raise ClientClosed("client closed")
            await self._changed.wait()


async def _write_loop(ws: aiohttp.ClientWebSocketResponse, outbox: asyncio.Queue[bytes]) -> None:
    """The only sender on a connection, so messages leave in the order they were counted."""
    while True:
        data = await outbox.get()
        try:
            await ws.send_bytes(data)
        except (aiohttp.ClientError, ConnectionError) as exc:
            log.info("send failed (%s); closing the connection", exc)
            await ws.close()
            return
        finally:
            outbox.task_done()


def connect(
    url: str,
    room: str,
    *,
    token: str | None = None,
    store_path: str | os.PathLike[str] = "./client-data",
    backoff: Backoff | None = None,
) -> Client:
    """A client for `room` at `url` (e.g. "ws://127.0.0.1:8080/rooms"); use `async with`."""
    return Client(url, room, token=token, store_path=store_path, backoff=backoff)


def edit_and_save(
    url: str,
    room: str,
    edit: Callable[[Doc[Any]], None],
    *,
    token: str | None = None,
    store_path: str | os.PathLike[str] = "./client-data",
    timeout: float = 30.0,
) -> None:
    """For scripts: sync, apply `edit(doc)`, and return once the server has it durably.

    Raises:
        TimeoutError: not synced and saved within `timeout` seconds (the edit stays in
            the local store and is sent by the next client on this store).
    """

    async def main() -> None:
        async with connect(url, room, token=token, store_path=store_path) as client:
            async with asyncio.timeout(timeout):
                await client.synced()
                edit(client.doc)
                await client.saved()

    asyncio.run(main())


__all__ = [
    "AuthError",
    "Backoff",
    "Client",
    "ClientClosed",
    "ConnectionRejected",
    "Status",
    "WriteDenied",
    "connect",
    "edit_and_save",
]
