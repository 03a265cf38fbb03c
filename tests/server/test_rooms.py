"""Room actors below the socket layer: an in-memory store that can fail, fake peers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pycrdt import Doc, Text

from engine.document import rebuild
from engine.errors import Close, StorageError, Unavailable
from engine.protocol import AwarenessEntry, Saved, SyncStep1, SyncStep2, Update, decode
from engine.storage import DocStore, KVLogStore, MemoryKV
from engine.storage.kv import Delete, Put
from harness.wire import edit
from server.config import Config
from server.metrics import Metrics
from server.rooms.actor import RoomActor, RoomState
from server.rooms.fanout import LocalFanout
from server.rooms.peer import Frame
from server.rooms.registry import RoomRegistry
from server.rooms.store import RoomStore


class FaultyKV(MemoryKV):
    """MemoryKV whose commits fail while `failing` is set, or block until released."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False
        self.gate = threading.Event()
        self.gate.set()
        self.loads = 0
        self.fail_reads = False
        self.waiting = 0  # writes held at the gate right now

    def write(self, puts: Sequence[Put], deletes: Sequence[Delete] = ()) -> None:
        self.waiting += 1
        self.gate.wait(10)
        self.waiting -= 1
        if self.failing:
            raise StorageError("I/O error (injected)")
        super().write(puts, deletes)

    def get(self, db: str, key: bytes) -> bytes | None:
        if self.fail_reads:
            raise StorageError("read failed (injected)")
        return super().get(db, key)

    def scan(self, db: str, prefix: bytes, **kwargs: Any) -> list[tuple[bytes, bytes]]:
        if db == "log":
            self.loads += 1
        return super().scan(db, prefix, **kwargs)


@dataclass
class FakePeer:
    peer_id: int
    user: str | None = None
    can_write: bool = True
    role: str | None = None
    wants_ack: bool = True
    received_updates: int = 0
    closed: bool = False
    close_code: int | None = None
    frames: list[bytes] = field(default_factory=list)

    def send(self, frame: Frame) -> None:
        if not self.closed:
            self.frames.append(frame if isinstance(frame, bytes) else b"".join(frame))

    def close(self, code: Close, detail: str | None = None) -> None:
        self.closed = True
        self.close_code = int(code)

    def take_awareness(self) -> list[AwarenessEntry]:
        return []

    def messages(self) -> list[Any]:
        return [decode(f) for f in self.frames]


@dataclass
class Rig:
    kv: FaultyKV
    log: KVLogStore
    store: DocStore
    registry: RoomRegistry


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    kv = FaultyKV()
    log = KVLogStore(kv)
    store = DocStore(log, rebuild=rebuild)
    metrics = Metrics()
    room_store = RoomStore(store, metrics)
    await room_store.start()
    config = Config(idle_unload_seconds=0.05)
    registry = RoomRegistry(room_store, LocalFanout(), config, metrics)
    yield Rig(kv, log, store, registry)
    await registry.close(1.0)
    kv.gate.set()
    await room_store.close()


def state_of(room: RoomActor) -> RoomState:
    """The state as of now (a function, so type narrowing does not freeze it)."""
    return room.state


async def settle(predicate: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_nothing_leaves_before_the_commit_is_durable(rig: Rig) -> None:
    room = await rig.registry.acquire("r")
    alice, bob = FakePeer(1), FakePeer(2)
    room.join(alice)
    room.join(bob)
    rig.kv.gate.clear()  # the disk is slow
    room.submit(alice, Update(edit(Doc(), "x")))
    room.submit(bob, SyncStep1(b"\x00"))
    await settle(lambda: rig.kv.waiting == 1)  # the commit is at the disk, held there
    assert [type(m) for m in bob.messages()] == [SyncStep1]  # only the greeting
    assert not any(isinstance(m, Saved) for m in alice.messages())
    rig.kv.gate.set()
    await settle(lambda: len(bob.frames) == 3)
    assert [type(m) for m in bob.messages()] == [SyncStep1, Update, SyncStep2]
    assert alice.messages()[-1] == Saved(1, 1)


async def test_failed_commit_is_not_acknowledged_or_broadcast_and_clients_resend(rig: Rig) -> None:
    room = await rig.registry.acquire("r")
    alice, bob = FakePeer(1), FakePeer(2)
    room.join(alice)
    room.join(bob)
    rig.kv.failing = True
    lost = edit(Doc(), "lost?")
    room.submit(alice, Update(lost))
    await settle(lambda: alice.closed and bob.closed)
    assert alice.close_code == bob.close_code == Close.UNAVAILABLE
    assert not any(isinstance(m, (Update, Saved)) for m in alice.messages() + bob.messages())
    assert room.state is RoomState.CLOSED
    rig.kv.failing = False
    again = await rig.registry.acquire("r")
    assert again is not room
    assert again.doc.encode_state() == Doc().get_update()  # nothing undurable survived
    carol = FakePeer(3)
    again.join(carol)
    again.submit(carol, SyncStep2(lost))  # the client's resend on reconnect
    await settle(lambda: any(isinstance(m, Saved) for m in carol.messages()))
    assert rig.store.require("r").last_seq == 1


async def test_concurrent_joins_load_the_room_once(rig: Rig) -> None:
    rig.kv.write([("log", b"warm", b"")])
    before = rig.kv.loads
    actors = await asyncio.gather(*(rig.registry.acquire("busy") for _ in range(20)))
    assert len({id(a) for a in actors}) == 1
    assert rig.kv.loads - before <= 1


async def test_a_room_that_fails_to_load_is_refused_not_replaced_by_an_empty_one(rig: Rig) -> None:
    rig.store.append("precious", edit(Doc(), "data"))
    rig.log._ids.clear()
    rig.log._metas.clear()
    rig.kv.fail_reads = True
    with pytest.raises(Unavailable):
        await rig.registry.acquire("precious")
    assert "precious" not in rig.registry.rooms
    rig.kv.fail_reads = False
    room = await rig.registry.acquire("precious")
    assert str(room.doc.doc.get("t", type=Text)) == "data"


async def test_idle_room_unloads_only_after_its_writes_commit(rig: Rig) -> None:
    room = await rig.registry.acquire("idle")
    peer = FakePeer(1)
    room.join(peer)
    rig.kv.gate.clear()
    room.submit(peer, Update(edit(Doc(), "pending")))
    room.leave(peer)
    await settle(lambda: room._idle_handle is None)  # the idle check ran while it is stuck
    assert room.state is RoomState.RUNNING
    rig.kv.gate.set()
    await settle(lambda: state_of(room) is RoomState.CLOSED)
    assert "idle" not in rig.registry.rooms
    assert rig.store.require("idle").last_seq == 1


async def test_rejoin_during_idle_wait_keeps_the_room(rig: Rig) -> None:
    room = await rig.registry.acquire("back")
    peer = FakePeer(1)
    room.join(peer)
    room.leave(peer)
    room.join(FakePeer(2))
    await asyncio.sleep(0.15)
    assert room.state is RoomState.RUNNING
    assert await rig.registry.acquire("back") is room


async def test_updates_of_many_clients_share_one_commit(rig: Rig) -> None:
    room = await rig.registry.acquire("group")
    peers = [FakePeer(i) for i in range(10)]
    for peer in peers:
        room.join(peer)
    rig.kv.gate.clear()
    room.submit(peers[0], Update(edit(Doc(), "first")))
    await settle(lambda: rig.kv.waiting == 1)  # the first commit is in flight
    for peer in peers[1:]:
        room.submit(peer, Update(edit(Doc(), f"from {peer.peer_id}")))
    rig.kv.gate.set()
    await settle(lambda: all(any(isinstance(m, Saved) for m in p.messages()) for p in peers))
    batches = list(rig.registry.metrics.commit_batch.collect())[0].samples
    count = next(s.value for s in batches if s.name.endswith("_count"))
    assert count == 2  # one commit for the first update, one for the nine that waited
