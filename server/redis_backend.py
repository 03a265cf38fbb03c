"""Several server processes sharing rooms through Redis Streams (the y-redis model).

    performer:log:{room}     stream; entry id 0-{seq}, fields r (record), n (node)
    performer:seq:{room}     the room's last seq (INCR'd atomically with the XADD)
    performer:snap:{room}    hash: seq, r (snapshot record)
    performer:rooms          hash: room -> created timestamp
    performer:lease:{room}   compaction lease (SET NX PX)
    performer:aw:{room}      pub/sub channel for presence (never stored)

The log is the truth and processes are caches: any process serves any room. Each one
follows the streams of its loaded rooms with one XREAD loop and relays what other
processes committed; Yjs updates commute and are idempotent, so duplicates are harmless.
A gap (the stream trimmed past a follower's position) is healed by reloading snapshot +
tail. Commits are acknowledged only after Redis replied, which with `appendonly yes` and
`appendfsync always` means after the AOF fsync; the server logs which promise it can
keep at startup.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import redis.asyncio as redis
from pycrdt import get_state
from redis.exceptions import RedisError

from engine.errors import CorruptRecord, RoomNotFound, StorageError
from engine.names import validate_room_name
from engine.storage import Append, CompactionPolicy, HistoryEntry, LoadedRoom
from engine.storage.docstore import rebuild
from engine.storage.records import RoomMeta, Snapshot, UpdateRecord, pack, unpack
from engine.yjs import EMPTY_UPDATE, update_clients
from server.backend import RemoteSink
from server.committer import GroupCommitter
from server.metrics import Metrics
from server.redis_fanout import RedisFanout
from server.redis_keys import PREFIX, key, seq_of

__all__ = ["PREFIX", "RedisBackend", "key"]

log = logging.getLogger(__name__)

LEASE_MS = 30_000

_APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], '0-' .. seq, 'r', ARGV[1], 'n', ARGV[2])
redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[4])
return seq
"""
_SNAPSHOT_CAS = """
local current = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'seq', ARGV[2], 'r', ARGV[3])
if ARGV[4] == '1' then redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. (tonumber(ARGV[2]) + 1)) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisBackend:
    """Backend on Redis; see the module docstring for layout and promises.

    Args:
        url: `redis://host:port/db`.
        trim_log: trim the stream up to each snapshot (history before it is then gone).
    """

    def __init__(
        self,
        url: str,
        metrics: Metrics,
        *,
        policy: CompactionPolicy | None = None,
        trim_log: bool = False,
    ) -> None:
        self.url = url
        self.metrics = metrics
        self.policy = policy or CompactionPolicy()
        self.trim_log = trim_log
        self.node = uuid.uuid4().hex.encode()
        # redis-py's async stubs type replies as unions of every possible shape; the
        # replies here are known from the commands, so the clients are held untyped.
        self.redis: Any = redis.Redis.from_url(url)
        self.committer = GroupCommitter(self._write_batch, metrics)
        self.fanout = RedisFanout(self.redis, url, self.node, self.load)
        self._since_snapshot: dict[str, int] = {}
        self._compacting: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._append = self.redis.register_script(_APPEND)
        self._cas = self.redis.register_script(_SNAPSHOT_CAS)
        self._release = self.redis.register_script(_RELEASE)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._log_durability()
        self.committer.start()
        self.fanout.start()

    async def _log_durability(self) -> None:
        try:
            config = await self.redis.config_get("append*")
        except RedisError as exc:
            log.warning(
                "cannot read Redis durability settings (%s): acknowledgements mean "
                "'Redis replied', not 'fsynced'",
                exc,
            )
            return
        if config.get("appendonly") == "yes" and config.get("appendfsync") == "always":
            log.info("Redis AOF with appendfsync=always: an acknowledged edit is on disk")
        else:
            log.warning(
                "Redis appendonly=%s appendfsync=%s: acknowledged edits can be lost "
                "if Redis crashes (set appendonly yes, appendfsync always)",
                config.get("appendonly"),
                config.get("appendfsync"),
            )

    async def close(self) -> None:
        await self.committer.close()
        await self.fanout.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.redis.aclose()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ writes

    async def commit(self, appends: list[Append]) -> list[int]:
        return await self.committer.commit(appends)

    async def _write_batch(self, batch: list[Append]) -> list[int]:
        now = time.time()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for item in batch:
                    validate_room_name(item.room)
                    clients = (
                        item.clients if item.clients is not None else update_clients(item.update)
                    )
                    record = pack(UpdateRecord(0, now, item.user, clients, item.update).to_map())
                    await self._append(
                        keys=[key("seq", item.room), key("log", item.room), PREFIX + "rooms"],
                        args=[record, self.node, item.room, repr(now)],
                        client=pipe,
                    )
                seqs = await pipe.execute()
        except RedisError as exc:
            raise StorageError(f"Redis commit failed: {exc}") from exc
        for item in batch:
            self._since_snapshot[item.room] = self._since_snapshot.get(item.room, 0) + 1
        return [int(seq) for seq in seqs]

    def after_commit(self, room: str) -> None:
        if room in self._compacting:
            return
        if self._since_snapshot.get(room, 0) < self.policy.every_updates:
            return
        self._compacting.add(room)
        self._spawn(self._compact_quietly(room))

    async def _compact_quietly(self, room: str) -> None:
        try:
            if await self.compact(room):
                self.metrics.compactions.inc()
                self._since_snapshot[room] = 0
        except (RedisError, StorageError):
            log.exception("room %r: compaction failed; the stream is intact", room)
        finally:
            self._compacting.discard(room)

    async def compact(self, room: str) -> bool:
        """Fold the stream into a new snapshot under a lease; False if another process
        holds the lease or wrote a newer snapshot meanwhile (its snapshot wins)."""
        token = uuid.uuid4().hex
        lease = key("lease", room)
        if not await self.redis.set(lease, token, nx=True, px=LEASE_MS):
            return False
        try:
            loaded = await self.load(room)
            if loaded.last_seq == loaded.snapshot_seq:
                return False
            merged = await asyncio.to_thread(rebuild, loaded.updates)
            snapshot = Snapshot(loaded.last_seq, time.time(), merged, get_state(merged))
            won = await self._cas(
                keys=[key("snap", room), key("log", room)],
                args=[
                    loaded.snapshot_seq,
                    snapshot.seq,
                    pack(snapshot.to_map()),
                    "1" if self.trim_log else "0",
                ],
            )
            return bool(won)
        finally:
            await self._release(keys=[lease], args=[token])

    # ------------------------------------------------------------------ reads

    async def _snapshot(self, room: str) -> Snapshot | None:
        raw = await self.redis.hget(key("snap", room), "r")
        if raw is None:
            return None
        try:
            return Snapshot.from_map(unpack(raw))
        except (StorageError, KeyError, TypeError, ValueError) as exc:
            log.warning("room %r: unreadable snapshot, replaying the stream: %s", room, exc)
            return None

    async def _records(
        self, room: str, after: int, upto: int | None = None, count: int | None = None
    ) -> list[UpdateRecord]:
        end = "+" if upto is None else f"0-{upto}"
        entries = await self.redis.xrange(key("log", room), f"0-{after + 1}", end, count=count)
        records = []
        expected = after + 1
        for entry_id, fields in entries:
            seq = seq_of(entry_id)
            if seq != expected:
                raise CorruptRecord(room, "stream", expected, "entry is missing (trimmed)")
            try:
                data = unpack(fields[b"r"])
                data["seq"] = seq
                records.append(UpdateRecord.from_map(data))
            except (StorageError, KeyError, TypeError, ValueError) as exc:
                raise CorruptRecord(room, "stream record", seq, str(exc)) from exc
            expected += 1
        return records

    async def first_seq(self, room: str) -> int | None:
        """The oldest seq still in the stream (None when it is empty)."""
        first = await self.redis.xrange(key("log", room), "-", "+", count=1)
        return seq_of(first[0][0]) if first else None

    async def log_records(self, room: str, after: int = 0) -> list[UpdateRecord]:
        """Stream records after `after`, checked for gaps."""
        return await self._records(room, after)

    async def load(self, room: str) -> LoadedRoom:
        try:
            snapshot = await self._snapshot(room)
            base = snapshot.seq if snapshot else 0
            tail = await self._records(room, base)
        except RedisError as exc:
            raise StorageError(f"Redis read failed: {exc}") from exc
        updates = ([snapshot.update] if snapshot else []) + [r.update for r in tail]
        return LoadedRoom(room, updates, tail[-1].seq if tail else base, base)

    async def meta(self, room: str) -> RoomMeta | None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(PREFIX + "rooms", room)
            pipe.get(key("seq", room))
            pipe.hget(key("snap", room), "seq")
            created, last_seq, snap_seq = await pipe.execute()
        if created is None:
            return None
        return RoomMeta(
            name=room,
            created=float(created),
            last_seq=int(last_seq or 0),
            snapshot_seq=int(snap_seq or 0),
        )

    async def state_at(self, room: str, seq: int) -> bytes:
        meta = await self.meta(room)
        if meta is None:
            raise RoomNotFound(f"room {room!r} does not exist")
        seq = min(seq, meta.last_seq)
        if seq <= 0:
            return EMPTY_UPDATE
        snapshot = await self._snapshot(room)
        if snapshot is not None and snapshot.seq > seq:
            snapshot = None
        base = snapshot.seq if snapshot else 0
        tail = await self._records(room, base, seq)
        if len(tail) != seq - base:
            raise CorruptRecord(room, "stream", base + len(tail) + 1, "trimmed")
        updates = ([snapshot.update] if snapshot else []) + [r.update for r in tail]
        return await asyncio.to_thread(rebuild, updates)

    async def history(self, room: str, after: int, limit: int) -> list[HistoryEntry]:
        if await self.redis.hget(PREFIX + "rooms", room) is None:
            raise RoomNotFound(f"room {room!r} does not exist")
        first = await self.redis.xrange(key("log", room), f"0-{after + 1}", "+", count=1)
        start = seq_of(first[0][0]) - 1 if first else after
        records = await self._records(room, start, count=limit)
        return [HistoryEntry(r.seq, r.ts, r.user, len(r.update), r.clients) for r in records]

    async def rooms(self) -> list[RoomMeta]:
        names = await self.redis.hkeys(PREFIX + "rooms")
        metas = [await self.meta(name.decode()) for name in sorted(names)]
        return [meta for meta in metas if meta is not None]

    async def delete_room(self, room: str) -> bool:
        removed = await self.redis.hdel(PREFIX + "rooms", room)
        await self.redis.delete(key("log", room), key("seq", room), key("snap", room))
        return bool(removed)

    # ------------------------------------------------------------------ fan-out

    def follow(self, room: str, last_seq: int, sink: RemoteSink) -> None:
        self.fanout.follow(room, last_seq, sink)

    def unfollow(self, room: str) -> None:
        self.fanout.unfollow(room)

    def publish_awareness(self, room: str, payload: bytes) -> None:
        self.fanout.publish_awareness(room, payload)
