"""Many rooms over one WebSocket, in the Hocuspocus dialect (`/hocuspocus`).

    async with connect_many("ws://127.0.0.1:8080", ["a", "b", "c"], store_path=None) as rooms:
        rooms["a"].doc.get("notes", type=Text) += "hi"
        await rooms["a"].saved()           # durable on the server
        print(rooms["b"].status)           # each room has its own replica and status

Each room is a `MultiplexedRoom`: its own replica (offline first, as `Client`), its own
`SyncSession`, presence and status; the socket is shared and reconnects with backoff as
one. The server's sync-status answers (one per update message, after the durable commit)
are counted per room into the session's "saved" accounting, so `saved()` means on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterable
from typing import Any

import aiohttp
from pycrdt import Awareness, Doc
from yarl import URL

from engine import hocuspocus_protocol as hp
from engine.client.backoff import Backoff
from engine.client.errors import AuthError
from engine.client.link import Dialer, Link
from engine.client.local_store import LocalStore, ReplicaKey
from engine.client.replica import Replica
from engine.client.shared_kv import StorePath
from engine.client.status import ReplicaStatus, Status
from engine.errors import Close, EngineError, ProtocolError
from engine.names import validate_room_name
from engine.protocol import Message, Saved, decode, encode
from engine.session import STUCK_CHECK_SECONDS, SyncSession

log = logging.getLogger(__name__)


class MultiplexedRoom:
    """One room of a multiplexed socket: `doc`, `awareness`, `status`, `synced()`, `saved()`."""

    def __init__(self, name: str, url: str, store_path: StorePath, socket: Multiplex) -> None:
        self.name = name
        self._socket = socket
        store = LocalStore.open(store_path, ReplicaKey.for_url(url, name))
        self._replica = Replica(store, self._on_local_edit)
        self.doc: Doc[Any] = self._replica.doc
        self.awareness = Awareness(self.doc)
        self._board = ReplicaStatus(name, self._replica)
        self._session: SyncSession | None = None
        self._acks = 0
        self.scope: str | None = None

    @property
    def status(self) -> Status:
        return self._board.value

    @property
    def error(self) -> EngineError | None:
        """What stopped this room for good (its token refused, closed by the server)."""
        return self._board.error

    @property
    def denied(self) -> str | None:
        """Why the server refused our edits (a read-only token), if it did."""
        return self._board.denied

    async def synced(self) -> None:
        await self._board.synced()

    async def saved(self) -> None:
        """Every local edit made so far is on the server's disk."""
        await self._board.saved()

    # ------------------------------------------------------------------ the socket's side

    def opened(self, token: str) -> list[bytes]:
        """The socket (re)connected: our token, then our state vector and presence."""
        self._session = SyncSession(self._replica, self.awareness)
        self._acks = 0
        self._board.set("syncing")
        return [hp.token_message(self.name, token), *self._wrap(self._session.open())]

    def dropped(self) -> None:
        self._session = None
        self._board.set("offline")

    def receive(self, envelope: hp.Envelope) -> list[bytes]:
        """One frame for this room; returns the frames to send back."""
        session = self._session
        if session is None:
            return []
        replies: list[Message] = []
        if envelope.kind in (hp.SYNC, hp.SYNC_REPLY, hp.AWARENESS, hp.QUERY_AWARENESS):
            replies = session.receive(decode(envelope.as_y_websocket()), self._mark())
        elif envelope.kind == hp.SYNC_STATUS and hp.read_sync_status(envelope.body):
            self._acks += 1
            session.receive(Saved(self._acks, 0), self._mark())
            self._replica.confirm(session.confirmed_mark)
        elif envelope.kind == hp.AUTH:
            self._authenticated(hp.read_auth_answer(envelope.body))
        elif envelope.kind == hp.CLOSE:
            self._board.error = EngineError(f"the server closed {self.name!r}: "
                                     f"{hp.read_close_reason(envelope.body)}")  # fmt: skip
            self._session = None
            self._board.set("offline")
        self._board.refresh(self._session)
        return self._wrap(replies)

    def _authenticated(self, answer: hp.AuthAnswer) -> None:
        if answer.scope is not None:
            self.scope = answer.scope
        elif self.scope is None:
            self._board.error = AuthError(
                Close.UNAUTHORIZED, f"room {self.name!r}: {answer.denied}"
            )
        else:
            self._board.denied = answer.denied
            log.warning("room %r: server denied a write: %s", self.name, answer.denied)
        self._board.notify()

    def resync(self) -> list[bytes]:
        """A fresh step 1 when this room's replica is stuck (see `SyncSession.resync`)."""
        return self._wrap(self._session.resync()) if self._session is not None else []

    def _mark(self) -> int:
        return self._replica.store.last_seq

    def _wrap(self, messages: list[Message]) -> list[bytes]:
        return [hp.wrap(self.name, encode(message)) for message in messages]

    def _on_local_edit(self, update: bytes, mark: int) -> None:
        if self._session is not None:
            self._socket.send(self._wrap(self._session.local_update(update, mark)))
        self._board.refresh(self._session)

    def close(self) -> None:
        self._replica.close()
        self._board.set("offline")
        self._board.notify()


class Multiplex:
    """One socket to `URL/hocuspocus` carrying every room in `rooms` (see the module doc)."""

    def __init__(
        self,
        url: str,
        rooms: Iterable[str],
        *,
        token: str | None = None,
        store_path: StorePath = "./client-data",
        backoff: Backoff | None = None,
    ) -> None:
        base = URL(url.rstrip("/"))
        self._dialer = Dialer(base / "hocuspocus")
        self._token = token or ""
        self.backoff = backoff or Backoff()
        self.rooms: dict[str, MultiplexedRoom] = {}
        for name in rooms:
            validate_room_name(name)
            self.rooms[name] = MultiplexedRoom(name, str(base / "hocuspocus"), store_path, self)
        self._link: Link | None = None
        self._task: asyncio.Task[None] | None = None

    def __getitem__(self, room: str) -> MultiplexedRoom:
        return self.rooms[room]

    def send(self, frames: list[bytes]) -> None:
        if self._link is not None:
            for frame in frames:
                self._link.send(frame)

    async def __aenter__(self) -> Multiplex:
        self._task = asyncio.create_task(self._run(), name="performer-multiplex")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for room in self.rooms.values():
            room.close()

    async def _run(self) -> None:
        rng = random.Random()
        attempt = 0
        async with aiohttp.ClientSession() as http:
            while True:
                ws = await self._dialer.dial(http)
                if not isinstance(ws, tuple):
                    async with ws:
                        attempt = 0
                        closed = await self._serve(ws)
                    log.info("multiplexed socket closed: %s", closed)
                attempt += 1
                await asyncio.sleep(self.backoff.delay(attempt, rng))

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
        self._link = Link(ws, "multiplexed socket")
        watch = asyncio.create_task(self._resync_when_stuck())
        try:
            for room in self.rooms.values():
                self.send(room.opened(self._token))
            return await self._link.run(self._on_frame)
        finally:
            watch.cancel()
            self._link = None
            for room in self.rooms.values():
                room.dropped()

    async def _resync_when_stuck(self) -> None:
        while True:
            await asyncio.sleep(STUCK_CHECK_SECONDS)
            for room in self.rooms.values():
                self.send(room.resync())

    def _on_frame(self, frame: bytes) -> None:
        if frame == bytes((hp.PING,)):
            self.send([hp.PONG_FRAME])
            return
        envelope = hp.open_envelope(frame)
        room = self.rooms.get(envelope.document)
        if room is None:
            raise ProtocolError(0, f"a frame for {envelope.document!r}, not one of ours")
        self.send(room.receive(envelope))


def connect_many(
    url: str,
    rooms: Iterable[str],
    *,
    token: str | None = None,
    store_path: StorePath = "./client-data",
    backoff: Backoff | None = None,
) -> Multiplex:
    """Many rooms over one socket at `url` (the server's base, e.g. "ws://127.0.0.1:8080");
    use `async with`. Each room keeps its own replica in `store_path` (None: memory)."""
    return Multiplex(url, rooms, token=token, store_path=store_path, backoff=backoff)
