"""A room's real actor with real SDK replicas on hand-delivered wires, for convergence tests.

The actor, its registry, group commit and DocStore are the product's (on an in-memory KV
or on Redis); the SDK side is the product's `Replica` (in-memory `LocalStore`) and
`SyncSession`. Only the sockets are replaced: each client has two FIFO queues (server to
client, client to server) that the test drains when it chooses, so it decides which
messages share an actor batch and when each client sees what.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText

from engine.client.local_store import LocalStore, ReplicaKey
from engine.client.replica import Replica
from engine.document import rebuild
from engine.errors import Close
from engine.live_doc import LiveDoc
from engine.protocol import AwarenessEntry, Message, decode
from engine.session import SyncSession
from engine.storage import DocStore, KVLogStore, MemoryKV
from engine.update_scan import scan_update
from server.app import open_storage
from server.config import Config
from server.metrics import Metrics
from server.rooms.actor import RoomActor
from server.rooms.fanout import LocalFanout
from server.rooms.peer import Frame
from server.rooms.presence import PresenceRelay
from server.rooms.registry import RoomRegistry
from server.rooms.store import RoomStore

ROOTS = ("t", "a", "m", "x")  # text, array, map, xml fragment
SETTLE_SECONDS = 10.0


def content(doc: Doc[Any]) -> dict[str, Any]:
    """Every root of the test schema as plain values (xml as its string)."""
    return {
        "t": str(doc.get("t", type=Text)),
        "a": doc.get("a", type=Array).to_py(),
        "m": doc.get("m", type=Map).to_py(),
        "x": str(doc.get("x", type=XmlFragment)),
    }


def apply_edit(doc: Doc[Any], root: str, seed: int, value: str) -> None:
    """One edit of one root, its position and kind chosen by `seed`: inserts and deletes
    in text, pushes, inserts and deletes in the array, sets and deletes in the map,
    elements, text and attributes in the xml fragment."""
    choice = seed % 3
    if root == "t":
        text = doc.get("t", type=Text)
        if choice == 2 and len(text):
            start = seed % len(text)
            del text[start : start + 1]
        else:
            text.insert(0 if choice == 1 else len(text), value)
    elif root == "a":
        array = doc.get("a", type=Array)
        if choice == 2 and len(array):
            del array[seed % len(array)]
        else:
            array.insert(seed % (len(array) + 1) if choice else len(array), value)
    elif root == "m":
        map_ = doc.get("m", type=Map)
        key = value[:1]
        if choice == 2 and key in map_:
            del map_[key]
        else:
            map_[key] = seed
    else:
        fragment = doc.get("x", type=XmlFragment)
        if choice == 0 or not len(fragment.children):
            fragment.children.append(XmlElement("p", {"k": value}, [XmlText(value)]))
        elif choice == 1:
            fragment.children.append(XmlText(value))
        else:
            last = list(fragment.children)[-1]
            if isinstance(last, XmlElement):
                last.attributes["k"] = value + str(seed)
            elif isinstance(last, XmlText):
                last.insert(0, value)


@dataclass
class Wire:
    """The server's end of one client's socket: a `Peer` whose frames queue up."""

    peer_id: int
    user: str | None = None
    can_write: bool = True
    role: str | None = None
    wants_ack: bool = True
    received_updates: int = 0
    closed: bool = False
    close_reason: str | None = None  # the tests assert it stays None until shutdown
    inbox: deque[bytes] = field(default_factory=deque)  # server -> client, in order

    def send(self, frame: Frame) -> None:
        if not self.closed:
            self.inbox.append(frame if isinstance(frame, bytes) else b"".join(frame))

    def close(self, code: Close, detail: str | None = None) -> None:
        if not self.closed:
            self.closed = True
            self.close_reason = f"{int(code)} {detail}"

    def take_awareness(self) -> list[AwarenessEntry]:
        return []


class SdkClient:
    """The SDK's replica and sync session, connected (or not) to an actor through a Wire."""

    def __init__(self, number: int, made: list[bytes]) -> None:
        """`made`: where every client of the test records its edits, in order."""
        self.number = number
        store = LocalStore.open(None, ReplicaKey("ws://rig:1/rooms", f"c{number}"))
        self.replica = Replica(store, self._on_local_edit)
        self.doc = self.replica.doc
        self.made = made
        self.session: SyncSession | None = None
        self.wire: Wire | None = None
        self.actor: RoomActor | None = None
        self.outbox: deque[Message] = deque()  # client -> server, in order
        self._connections = 0

    def edit(self, root: str, seed: int, value: str) -> None:
        apply_edit(self.doc, root, seed, value)

    def _on_local_edit(self, update: bytes, mark: int) -> None:
        self.made.append(update)
        if self.session is not None:
            self.outbox.extend(self.session.local_update(update, mark))

    @property
    def connected(self) -> bool:
        return self.wire is not None

    def join(self, actor: RoomActor) -> None:
        """Open a connection: the server greets with its step 1, we send ours."""
        self._connections += 1
        self.actor = actor
        self.wire = Wire(self.number * 1000 + self._connections)
        self.session = SyncSession(self.replica)
        actor.join(self.wire)
        self.outbox.extend(self.session.open())

    def leave(self) -> None:
        """Drop the connection; whatever was in flight either way is lost."""
        if self.actor is not None and self.wire is not None:
            self.actor.leave(self.wire)
            self.wire.closed = True
        self.actor = self.wire = self.session = None
        self.outbox.clear()

    def to_server(self, count: int) -> int:
        """Hand up to `count` queued messages to the actor (they join its next batch)."""
        sent = 0
        while self.outbox and sent < count and self.actor is not None and self.wire:
            self.actor.submit(self.wire, self.outbox.popleft())
            sent += 1
        return sent

    def from_server(self, count: int) -> int:
        """Receive up to `count` frames the server sent, answering as the SDK would."""
        received = 0
        while self.wire is not None and self.wire.inbox and received < count:
            assert self.session is not None
            message = decode(self.wire.inbox.popleft())
            self.outbox.extend(self.session.receive(message, self.replica.store.last_seq))
            received += 1
        return received

    @property
    def busy(self) -> bool:
        return bool(self.outbox) or bool(self.wire is not None and self.wire.inbox)


async def settle(actor: RoomActor) -> None:
    """Wait until the actor has processed (and committed) everything submitted."""
    async with asyncio.timeout(SETTLE_SECONDS):
        await asyncio.sleep(0)
        await actor.drain()


async def quiesce(
    actors: list[RoomActor],
    clients: list[SdkClient],
    idle: Callable[[], bool] = lambda: True,
    pump: Callable[[], int] = lambda: 0,
) -> None:
    """Deliver everything both ways (and whatever `pump` moves, such as relays between
    processes) until nothing moves and `idle()` holds."""
    async with asyncio.timeout(SETTLE_SECONDS * 3):
        while True:
            moved = pump()
            for client in clients:
                moved += client.to_server(10**6)
            for actor in actors:
                await settle(actor)
            for client in clients:
                moved += client.from_server(10**6)
            if not moved and idle() and not any(c.busy for c in clients):
                for actor in actors:
                    await settle(actor)
                if not any(c.busy for c in clients):
                    return
            await asyncio.sleep(0 if moved else 0.001)


def causal_result(made: list[bytes]) -> dict[str, Any]:
    """The content every replica must end at: all edits applied in the order they were
    made (a causal order: each was made on a document holding only earlier ones)."""
    doc: Doc[Any] = Doc()
    for update in made:
        doc.apply_update(update)
    return content(doc)


@asynccontextmanager
async def memory_rooms() -> AsyncIterator[RoomRegistry]:
    """A registry of real actors over a real group commit on an in-memory KV."""
    store = DocStore(KVLogStore(MemoryKV()), rebuild=rebuild)
    metrics = Metrics()
    room_store = RoomStore(store, metrics)
    await room_store.start()
    registry = RoomRegistry(room_store, LocalFanout(), Config(idle_unload_seconds=60), metrics)
    try:
        yield registry
    finally:
        await registry.close(1.0)
        await room_store.close()


def ready_but_pending(live: LiveDoc) -> list[bytes]:
    """Pending updates whose every need is integrated: a document that settled fully has
    none (the old settle rule could leave some until the next update came)."""
    return [u for u in live.pending if scan_update(u).integrates_after(live.clocks)]


class HeldRelay:
    """Stands between one process's Redis follower and its room: what other processes
    committed is held here and handed on when, and in the order, the test says."""

    def __init__(self, actor: RoomActor) -> None:
        self.actor = actor
        self.held: list[tuple[list[bytes], int]] = []

    def remote_updates(self, updates: list[bytes], last_seq: int) -> None:
        self.held.append((updates, last_seq))

    def remote_awareness(self, payload: bytes) -> None:
        self.actor.remote_awareness(payload)

    @property
    def presence(self) -> PresenceRelay:
        return self.actor.presence

    def release(self, pick: int) -> int:
        """Hand on one held batch (any of them: processes see each other out of order)."""
        if not self.held:
            return 0
        updates, last_seq = self.held.pop(pick % len(self.held))
        self.actor.remote_updates(updates, last_seq)
        return 1


@asynccontextmanager
async def redis_processes(url: str, count: int = 2) -> AsyncIterator[list[RoomRegistry]]:
    """`count` server processes' rooms (registry, group commit, store and Redis fan-out,
    as `performer serve --redis` builds them) sharing one Redis, in this process."""
    registries = []
    try:
        for _ in range(count):
            config = Config(redis_url=url, idle_unload_seconds=60)
            metrics = Metrics()
            store, fanout = open_storage(config, metrics)
            await store.start()
            await fanout.start()
            registries.append(RoomRegistry(store, fanout, config, metrics))
        yield registries
    finally:
        for registry in registries:
            await registry.close(1.0)
            await registry.fanout.close()
            await registry.store.close()


async def held_room(registry: RoomRegistry, name: str) -> tuple[RoomActor, HeldRelay]:
    """The room `name` on one process, its relay from the others held (see HeldRelay)."""
    actor = await registry.acquire(name)
    relay = HeldRelay(actor)
    registry.fanout.follow(name, actor.last_seq, relay)
    return actor, relay
