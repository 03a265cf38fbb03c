"""Delivering every room's committed log entries to a consumer, by a stored cursor.

The on_change hook and the webhook both need the same promise: every entry, in seq order
per room, at least once, resumed after a restart (even kill -9) where it stopped, and a
slow or dead consumer costing no memory and never holding up the rooms. So neither keeps
an in-memory queue: each reads the durable log after its cursor (kept in the store as room
metadata `cursor:NAME`), delivers a batch, then advances the cursor. Work per room runs in
its own task; a consumer that fails retries that room with backoff (or parks it, past
`max_attempts`), and other rooms carry on.

Which rooms have work: a local commit (or one relayed from another process) wakes its
room at once. A full pass over the store's rooms (its room list, then cursors only of rooms
whose last seq moved past the cursor last seen) runs at start, which finds work left from
before a restart, and then once every `full_scan_seconds` (work a process that died left
behind, with Redis). The scan every `scan_seconds` reads only the parked rooms: its cost
follows the rooms with work, not every room in the store. With Redis one process delivers
each room: the room's task holds a lease (`Fanout.lease`) while it runs.

Failures follow server/parking.py's schedule (seconds to hours, about a day in all), then
the room is parked. Every `probe_seconds` one parked room's batch is tried again; once it
gets through, every parked room of this consumer resumes from its cursor (`performer
webhooks --retry` does the same by hand).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from engine.errors import EngineError
from engine.storage import DocStore
from engine.storage.records import UpdateRecord
from server.metrics import Metrics
from server.parking import RETRY_SCHEDULE, Parked, retry_delay
from server.rooms.fanout import Fanout
from server.rooms.store import RoomStore

__all__ = ["RETRY_SCHEDULE", "Consumer", "Delivery", "Parked", "parked_rooms", "unpark"]

log = logging.getLogger(__name__)

LEASE_SECONDS = 15.0  # a process that dies holds its rooms this long at most
IDLE_SECONDS = 5.0  # a room task with nothing to do waits this long, then ends


class Consumer(Protocol):
    name: str  # cursor name in the store: letters, digits, dashes
    batch_limit: int
    min_interval: float  # seconds between two deliveries of one room (coalescing)
    max_attempts: int | None  # failed attempts of one batch before the room is parked
    retry_seconds: float  # the first retry's delay; later ones follow RETRY_SCHEDULE
    probe_seconds: float | None  # how often a parked room is tried again (None: never)

    async def deliver(self, room: str, records: list[UpdateRecord]) -> int:
        """Deliver a batch; return the last seq now delivered (raise: retry later)."""
        ...


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
        full_scan_seconds: float = 60.0,
    ) -> None:
        self.consumer = consumer
        self.store = store
        self.fanout = fanout
        self.metrics = metrics
        self.scan_seconds = scan_seconds
        self.full_scan_seconds = full_scan_seconds
        self.cursor_key = f"cursor:{consumer.name}"
        self.parked_key = f"parked:{consumer.name}"
        self._rooms: dict[str, asyncio.Task[None]] = {}
        self._scanner: asyncio.Task[None] | None = None
        self._cursors: dict[str, int] = {}  # the cursor last read or written, per room
        self._parked_rooms: dict[str, Parked] = {}
        self._elsewhere: set[str] = set()  # rooms with work whose lease another process held
        self._next_full_scan = 0.0
        self._next_probe = 0.0

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
        if room not in self._parked_rooms:
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
        now = asyncio.get_running_loop().time()
        if now >= self._next_full_scan:
            self._next_full_scan = now + self.full_scan_seconds
            await self._full_scan()
        await self._recheck_parked()
        await self._recheck_elsewhere()
        probe = self.consumer.probe_seconds
        if probe is not None and self._parked_rooms and now >= self._next_probe:
            self._next_probe = now + probe
            await self._probe()
        self.metrics.parked_rooms.labels(self.consumer.name).set(len(self._parked_rooms))

    async def _full_scan(self) -> None:
        """Every room in the store; cursors are read only where the room's last seq moved
        past the cursor this process last saw."""
        infos = await self.store.rooms()
        self._cursors = {i.name: c for i in infos if (c := self._cursors.get(i.name)) is not None}
        for info in infos:
            room = info.name
            if room in self._rooms or room in self._parked_rooms:
                continue
            if info.last_seq <= self._cursors.get(room, -1):
                continue
            parked = await self._parked(room)
            if parked is not None:
                self._parked_rooms[room] = parked
            elif info.last_seq > await self._cursor(room):
                self._ensure(room)

    async def _recheck_parked(self) -> None:
        """Rooms unparked elsewhere (the CLI, another process's probe) resume here."""
        for room in list(self._parked_rooms):
            if await self._parked(room) is None:
                self._resume(room)

    async def _recheck_elsewhere(self) -> None:
        """A room another process was delivering: take it over if its work is not done
        (that process may have died; its lease runs out after LEASE_SECONDS)."""
        rooms, self._elsewhere = self._elsewhere, set()
        for room in rooms:
            if await self._cursor(room) < await self._last_seq(room):
                self._ensure(room)

    async def _last_seq(self, room: str) -> int:
        """The room's newest durable seq: the commits seen by this process, or (none seen
        since it started, as after a restart) the store's counters."""
        durable = self.store.commits.durable(room)
        if durable is not None:
            return durable
        info = await self.store.info(room)
        return info.last_seq if info else 0

    def _resume(self, room: str) -> None:
        self._parked_rooms.pop(room, None)
        self._ensure(room)

    def _probe_later(self) -> None:
        """A room parked just now failed its whole schedule: the first probe comes a
        `probe_seconds` later, not at the next scan. (Rooms found parked at start, by an
        earlier process, are probed at once: the receiver may be back.)"""
        probe = self.consumer.probe_seconds
        now = asyncio.get_running_loop().time()
        if probe is not None and self._next_probe <= now:
            self._next_probe = now + probe

    async def _probe(self) -> None:
        """Try one parked room's batch once; if the consumer takes it, unpark them all."""
        room = next(iter(self._parked_rooms))
        if not await self.fanout.lease(f"{self.consumer.name}:{room}", LEASE_SECONDS):
            return
        cursor = await self._cursor(room)
        records = await self.store.entries(room, cursor, self.consumer.batch_limit)
        if records:
            try:
                delivered = await self.consumer.deliver(room, records)
            except Exception as exc:
                log.info("%s: probe with room %r failed: %s", self.consumer.name, room, exc)
                return
            await self._advance(room, cursor, delivered)
        rooms = list(self._parked_rooms)
        log.warning("%s: the receiver answers again: %d parked rooms resume",
                    self.consumer.name, len(rooms))  # fmt: skip
        for parked in rooms:
            await self.store.write(self.store.docs.set_meta, parked, self.parked_key, None)
            self._resume(parked)

    async def _cursor(self, room: str) -> int:
        raw = await self.store.read(self.store.docs.get_meta, room, self.cursor_key)
        cursor = self._cursors[room] = int(raw or b"0")
        return cursor

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
                self._elsewhere.add(room)  # another process delivers it: checked each scan
                return
            parked = await self._parked(room)
            if parked is not None:
                self._parked_rooms[room] = parked
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
        """Count, log, wait the schedule's delay; park the room past max_attempts. True:
        stop the room."""
        self.metrics.delivery_errors.labels(self.consumer.name).inc()
        first, last = records[0].seq, records[-1].seq
        log.warning("%s: room %r seq %d..%d: attempt %d failed: %s",
                    self.consumer.name, room, first, last, attempts, exc)  # fmt: skip
        limit = self.consumer.max_attempts
        if limit is not None and attempts >= limit:
            parked = Parked(room, first, last, attempts, str(exc)[:500])
            await self.store.write(self.store.docs.set_meta, room, self.parked_key, parked.encode())
            self._parked_rooms[room] = parked
            self._probe_later()
            self.metrics.parked_rooms.labels(self.consumer.name).set(len(self._parked_rooms))
            log.error("%s: room %r parked after %d attempts (resumed when a probe gets "
                      "through, or by `performer webhooks --retry`)",
                      self.consumer.name, room, attempts)  # fmt: skip
            return True
        await asyncio.sleep(retry_delay(attempts, self.consumer.retry_seconds))
        return False

    async def _advance(self, room: str, cursor: int, seq: int) -> None:
        await self.store.write(self.store.docs.set_meta, room, self.cursor_key, str(seq).encode())
        self._cursors[room] = seq
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
