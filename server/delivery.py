"""Delivering every room's committed log entries to a consumer, by a stored cursor.

The on_change hook and the webhook both need the same promise: every entry, in seq order
per room, at least once, resumed after a restart (even kill -9) where it stopped, and a
slow or dead consumer costing no memory and never holding up the rooms. So neither keeps
an in-memory queue: each reads the durable log after its cursor (kept in the store as room
metadata `cursor:NAME`), delivers a batch, then advances the cursor. Work per room runs in
its own task; a consumer that fails retries that room with backoff (or parks it, past
`max_attempts`), and other rooms carry on.

Which rooms have work: a local commit wakes its room at once; a periodic scan compares
every room's last seq to its cursor (this finds work left from before a restart and,
with Redis, commits made by other processes). With Redis one process delivers each room:
the room's task holds a lease (`Fanout.lease`) while it runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from typing import Protocol

from engine.errors import EngineError
from engine.storage import DocStore
from engine.storage.records import UpdateRecord
from server.metrics import Metrics
from server.rooms.fanout import Fanout
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0  # a process that dies holds its rooms this long at most
IDLE_SECONDS = 5.0  # a room task with nothing to do waits this long, then ends


class Consumer(Protocol):
    name: str  # cursor name in the store: letters, digits, dashes
    batch_limit: int
    min_interval: float  # seconds between two deliveries of one room (coalescing)
    max_attempts: int | None  # failed attempts of one batch before the room is parked
    retry_seconds: float  # the first retry's delay; doubles per attempt, jittered

    async def deliver(self, room: str, records: list[UpdateRecord]) -> int:
        """Deliver a batch; return the last seq now delivered (raise: retry later)."""
        ...


@dataclass(frozen=True, slots=True)
class Parked:
    """A room whose deliveries stopped after too many failed attempts (kept in the store)."""

    room: str
    from_seq: int
    to_seq: int
    attempts: int
    error: str

    def encode(self) -> bytes:
        return json.dumps(
            {"from_seq": self.from_seq, "to_seq": self.to_seq, "attempts": self.attempts,
             "error": self.error}
        ).encode()  # fmt: skip

    @classmethod
    def decode(cls, room: str, raw: bytes) -> Parked:
        data = json.loads(raw)
        return cls(room, int(data["from_seq"]), int(data["to_seq"]), int(data["attempts"]),
                   str(data["error"]))  # fmt: skip


def backoff_seconds(attempt: int, base: float = 0.5, cap: float = 60.0) -> float:
    """Exponential backoff with full jitter (attempt 1 waits up to `base`)."""
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


class Delivery:
    """Runs one consumer over every room; see the module docstring."""

    def __init__(
        self,
        consumer: Consumer,
        store: RoomStore,
        fanout: Fanout,
        metrics: Metrics,
        *,
        scan_seconds: float = 2.0,
    ) -> None:
        self.consumer = consumer
        self.store = store
        self.fanout = fanout
        self.metrics = metrics
        self.scan_seconds = scan_seconds
        self.cursor_key = f"cursor:{consumer.name}"
        self.parked_key = f"parked:{consumer.name}"
        self._rooms: dict[str, asyncio.Task[None]] = {}
        self._scanner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.store.commits.listeners.append(self._on_commit)
        self._scanner = asyncio.get_running_loop().create_task(self._scan_loop())

    async def close(self) -> None:
        if self._on_commit in self.store.commits.listeners:
            self.store.commits.listeners.remove(self._on_commit)
        tasks = [t for t in (self._scanner, *self._rooms.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _on_commit(self, room: str, seq: int) -> None:
        self._ensure(room)

    def _ensure(self, room: str) -> None:
        if room not in self._rooms:
            task = asyncio.get_running_loop().create_task(self._room_loop(room))
            self._rooms[room] = task
            task.add_done_callback(lambda _task: self._rooms.pop(room, None))

    async def _scan_loop(self) -> None:
        while True:
            try:
                await self._scan()
            except EngineError as exc:
                log.warning("%s: scanning rooms failed: %s", self.consumer.name, exc)
            await asyncio.sleep(self.scan_seconds)

    async def _scan(self) -> None:
        parked = 0
        for info in await self.store.rooms():
            if await self._parked(info.name) is not None:
                parked += 1
            elif info.last_seq > await self._cursor(info.name):
                self._ensure(info.name)
        self.metrics.parked_rooms.labels(self.consumer.name).set(parked)

    async def _cursor(self, room: str) -> int:
        raw = await self.store.read(self.store.docs.get_meta, room, self.cursor_key)
        return int(raw or b"0")

    async def _parked(self, room: str) -> Parked | None:
        raw = await self.store.read(self.store.docs.get_meta, room, self.parked_key)
        return None if raw is None else Parked.decode(room, raw)

    async def _room_loop(self, room: str) -> None:
        try:
            await self._deliver_room(room)
        except EngineError as exc:  # the room was deleted, or the store failed: rescan later
            log.warning("%s: room %r: %s", self.consumer.name, room, exc)

    async def _deliver_room(self, room: str) -> None:
        """Deliver one room until it has been idle for a while (or is parked)."""
        attempts = 0
        while True:
            if not await self.fanout.lease(f"{self.consumer.name}:{room}", LEASE_SECONDS):
                return  # another process delivers this room
            if await self._parked(room) is not None:
                return
            cursor = await self._cursor(room)
            records = await self.store.entries(room, cursor, self.consumer.batch_limit)
            if not records:
                if not await self.store.commits.wait(room, cursor, IDLE_SECONDS):
                    return
                continue
            try:
                delivered = await self.consumer.deliver(room, records)
            except Exception as exc:
                attempts += 1
                if await self._failed(room, records, attempts, exc):
                    return
                continue
            attempts = 0
            await self._advance(room, cursor, delivered)
            if self.consumer.min_interval:
                await asyncio.sleep(self.consumer.min_interval)

    async def _failed(
        self, room: str, records: list[UpdateRecord], attempts: int, exc: Exception
    ) -> bool:
        """Count, log, back off; park the room past max_attempts. True: stop the room."""
        self.metrics.delivery_errors.labels(self.consumer.name).inc()
        first, last = records[0].seq, records[-1].seq
        log.warning("%s: room %r seq %d..%d: attempt %d failed: %s",
                    self.consumer.name, room, first, last, attempts, exc)  # fmt: skip
        limit = self.consumer.max_attempts
        if limit is not None and attempts >= limit:
            parked = Parked(room, first, last, attempts, str(exc)[:500])
            await self.store.write(self.store.docs.set_meta, room, self.parked_key, parked.encode())
            self.metrics.parked_rooms.labels(self.consumer.name).inc()
            log.error("%s: room %r parked after %d attempts (retry with `performer "
                      "webhooks --retry`)", self.consumer.name, room, attempts)  # fmt: skip
            return True
        await asyncio.sleep(backoff_seconds(attempts, self.consumer.retry_seconds))
        return False

    async def _advance(self, room: str, cursor: int, seq: int) -> None:
        await self.store.write(self.store.docs.set_meta, room, self.cursor_key, str(seq).encode())
        self.metrics.delivered.labels(self.consumer.name).inc(seq - cursor)


def parked_rooms(docs: DocStore, name: str) -> list[Parked]:
    """Every parked room of consumer `name` (for the CLI)."""
    out = []
    for info in docs.rooms():
        raw = docs.get_meta(info.name, f"parked:{name}")
        if raw is not None:
            out.append(Parked.decode(info.name, raw))
    return out


def unpark(docs: DocStore, name: str, room: str) -> bool:
    """Let a parked room's deliveries start again (from its cursor); False if not parked."""
    if docs.get_meta(room, f"parked:{name}") is None:
        return False
    docs.set_meta(room, f"parked:{name}", None)
    return True
