"""The client: one room's local replica, kept in sync with a server over a WebSocket.

Every (re)connect runs the Yjs state-vector exchange, which sends the server whatever it
lacks; the server's opt-in "saved" acknowledgement (`?ack=1`) confirms local log
positions. Only aiohttp's client is used; the engine never imports `aiohttp.web`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from typing import Any

import aiohttp
from pycrdt import Awareness, Doc
from yarl import URL

from engine.client import presence
from engine.client.backoff import Backoff
from engine.client.errors import CloseAction, close_action, close_error
from engine.client.link import Closed, Dialer, Link
from engine.client.local_store import LocalStore, ReplicaKey
from engine.client.replica import Replica
from engine.client.rest import RoomApi
from engine.client.shared_kv import StorePath
from engine.client.status import ReplicaStatus, Status
from engine.errors import EngineError
from engine.jsonview import to_json
from engine.names import validate_room_name
from engine.protocol import Message, Saved, decode, encode
from engine.session import STUCK_CHECK_SECONDS, SyncSession

log = logging.getLogger(__name__)
RULE_PREFIX = "rule:"  # the reason of a permission-denied message from a rule

GOODBYE_TIMEOUT = 1.0  # seconds close() waits for queued messages (our goodbye) to leave


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
        store_path: StorePath = "./client-data",
        backoff: Backoff | None = None,
        heartbeat: float = 20.0,
        connect_timeout: float = 10.0,
        max_msg_size: int = 256 * 1024 * 1024,
    ) -> None:
        self.room = validate_room_name(room)
        self.url = URL(url.rstrip("/")).joinpath(room).update_query(ack="1")
        self.api = RoomApi(url, self.room, token)
        self.backoff = backoff or Backoff()
        self._dialer = Dialer(
            self.url,
            {"Authorization": f"Bearer {token}"} if token else {},
            heartbeat=heartbeat,
            connect_timeout=connect_timeout,
            max_msg_size=max_msg_size,
        )
        store = LocalStore.open(store_path, ReplicaKey.for_url(url, self.room))
        try:
            self._replica = Replica(store, self._on_local_edit)
        except BaseException:
            store.close()
            raise
        self.doc: Doc[Any] = self._replica.doc
        self.awareness = Awareness(self.doc)
        self._board = ReplicaStatus(self.room, self._replica)
        self._session: SyncSession | None = None
        self._link: Link | None = None
        self._rejected: list[Callable[[str], None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._received_bytes = 0
        self._awareness_subscription = self.awareness.observe(self._on_awareness_change)

    @property
    def status(self) -> Status:
        """offline | connecting | syncing (connected, first sync under way) | synced
        (edits pending) | saved (nothing pending)."""
        return self._board.value

    @property
    def received_bytes(self) -> int:
        """Bytes of messages received on the current connection (0 while offline): how
        far the first sync of a large room has got."""
        return self._received_bytes

    @property
    def error(self) -> EngineError | None:
        """The error that stopped the client for good (bad token, rejected data), if any."""
        return self._board.error

    def on_status(self, callback: Callable[[Status], None]) -> Callable[[], None]:
        """Call `callback(status)` on every status change; returns an unsubscribe function."""
        return self._board.subscribe(callback)

    def on_rejected(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(reason)` when the server's rules refused part of an edit of
        ours (the reason starts with "rule:"). The server has undone that part, and the
        undo reaches this replica like any edit; `saved()` still completes. Returns an
        unsubscribe function."""
        self._rejected.append(callback)

        def unsubscribe() -> None:
            if callback in self._rejected:
                self._rejected.remove(callback)

        return unsubscribe

    async def restore(self, seq: int) -> int:
        """Ask the server to restore the room to its content at `seq` (one forward edit
        that reaches this replica like any other); returns the edit's seq."""
        return await self.api.restore(seq)

    def to_json(self, types: dict[str, str] | None = None) -> dict[str, Any]:
        """The replica's content as JSON (roots' types inferred, `types` overrides)."""
        return to_json(bytes(self.doc.get_update()), types)

    async def synced(self) -> None:
        """Wait until this client is in sync with the server (immediately if it is now).

        Raises:
            AuthError, ConnectionRejected: the server refused this client for good.
            ClientClosed: the client was closed first.
        """
        await self._board.synced()

    async def saved(self) -> None:
        """Wait until every local edit made so far is durable on the server.

        Needs a server with the "saved" acknowledgement; survives reconnects (edits a
        dropped connection did not confirm are sent again by the next sync).

        Raises:
            WriteDenied: the server refused our edits (read-only token).
            AuthError, ConnectionRejected, ClientClosed: as for `synced`.
        """
        await self._board.saved()

    async def start(self) -> None:
        """Start connecting in the background; the doc is usable before and during."""
        if self._tasks:
            raise RuntimeError("client already started")
        self._tasks = [
            asyncio.create_task(self._run(), name=f"performer-client:{self.room}"),
            asyncio.create_task(
                presence.keep_alive(self.awareness), name="performer-client:presence"
            ),
        ]

    async def close(self) -> None:
        """Say goodbye (presence removal, best effort), stop syncing, close the local store."""
        if self._closing:
            return
        self._closing = True
        self.awareness.set_local_state(None)
        if self._link is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(GOODBYE_TIMEOUT):
                    await self._link.drain()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._replica.close()
        self.awareness.unobserve(self._awareness_subscription)
        self._board.set("offline")
        self._board.notify()  # waiters raise ClientClosed

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _on_local_edit(self, update: bytes, mark: int) -> None:
        if self._session is not None:
            self._send(self._session.local_update(update, mark))
        self._board.refresh(self._session)

    def _on_awareness_change(self, topic: str, change: tuple[dict[str, Any], Any]) -> None:
        _changes, origin = change
        if topic != "update" or origin != "local" or self._session is None:
            return
        payload = self.awareness.encode_awareness_update([self.awareness.client_id])
        self._send(self._session.local_awareness(payload))

    def _send(self, messages: list[Message]) -> None:
        if self._link is not None:
            for message in messages:
                self._link.send(encode(message))

    async def _run(self) -> None:
        """Connect, serve, and reconnect with backoff until closed or refused for good."""
        try:
            await self._reconnect_loop()
        except Exception as exc:
            log.exception("room %r: sync stopped by an unexpected error", self.room)
            error = EngineError(f"sync stopped by an unexpected error: {exc!r}")
            error.__cause__ = exc
            self._board.error = error
            self._board.set("offline")
            self._board.notify()

    async def _reconnect_loop(self) -> None:
        rng = random.Random()
        attempt = 0
        async with aiohttp.ClientSession() as http:
            while not self._closing:
                self._board.set("connecting")
                (code, reason), was_synced = await self._connect_once(http)
                self._board.set("offline")
                fatal = close_error(code, reason)
                if fatal is not None:
                    log.error("room %r: %s; not reconnecting", self.room, fatal)
                    self._board.error = fatal
                    self._board.notify()
                    return
                slow_down = close_action(code) is CloseAction.SLOW_DOWN
                attempt = 0 if was_synced and not slow_down else attempt + 1
                delay = self.backoff.delay(attempt, rng)
                log.info("room %r: closed (%s %s); retry in %.2fs", self.room, code, reason, delay)
                await asyncio.sleep(delay)

    async def _connect_once(self, http: aiohttp.ClientSession) -> tuple[Closed, bool]:
        """One connection from open to close: how it closed, and whether it had synced."""
        ws = await self._dialer.dial(http)
        if isinstance(ws, tuple):
            return ws, False
        async with ws:
            session = SyncSession(self._replica, self.awareness)
            self._link, self._session = Link(ws, f"room {self.room!r}"), session
            self._received_bytes = 0
            watch = asyncio.create_task(self._resync_when_stuck(session))
            try:
                self._send(session.open())
                closed = await self._link.run(lambda data: self._on_frame(session, data))
                return closed, session.synced
            finally:
                watch.cancel()
                self._link = self._session = None
                self._received_bytes = 0
                presence.forget_others(self.awareness)

    async def _resync_when_stuck(self, session: SyncSession) -> None:
        """Ask the server for a fresh step 2 whenever the session finds the replica
        stuck (an update waiting for a dependency that never came)."""
        while True:
            await asyncio.sleep(STUCK_CHECK_SECONDS)
            resync = session.resync()
            if resync:
                log.info("room %r: an update waits for a dependency; resyncing", self.room)
                self._send(resync)

    def _on_frame(self, session: SyncSession, data: bytes) -> None:
        self._received_bytes += len(data)
        message = decode(data)
        denied_before = len(session.denied)
        self._send(session.receive(message, self._replica.store.last_seq))
        for reason in session.denied[denied_before:]:
            self._on_denied(reason)
        if isinstance(message, Saved):
            self._replica.confirm(session.confirmed_mark)
        self._board.refresh(self._session)

    def _on_denied(self, reason: str) -> None:
        """A rule's refusal is news for the application (the edit was undone, the rest
        goes on); any other denial (a read-only token) fails the waits for `saved`."""
        if not reason.startswith(RULE_PREFIX):
            self._board.denied = reason
            log.warning("room %r: server denied a write: %s", self.room, reason)
            self._board.notify()
            return
        for callback in list(self._rejected):
            try:
                callback(reason)
            except Exception:
                log.exception("room %r: an on_rejected callback failed", self.room)


def connect(
    url: str,
    room: str,
    *,
    token: str | None = None,
    store_path: StorePath = "./client-data",
    backoff: Backoff | None = None,
) -> Client:
    """A client for `room` at `url` (e.g. "ws://127.0.0.1:8080/rooms"); use `async with`.

    Args:
        store_path: a directory for the local replica (LMDB), shared by any number of
            clients, rooms and servers; None keeps the replica in memory only.
    """
    return Client(url, room, token=token, store_path=store_path, backoff=backoff)


def edit_and_save(
    url: str,
    room: str,
    edit: Callable[[Doc[Any]], None],
    *,
    token: str | None = None,
    store_path: StorePath = "./client-data",
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
