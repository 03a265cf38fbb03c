"""The log-store contract on Redis, for several server processes sharing rooms.

    performer:log:{room}     stream; entry id 0-{seq}, fields r (record), n (writer node)
    performer:seq:{room}     the room's last seq (INCR'd atomically with the XADD)
    performer:bytes:{room}   bytes ever appended (INCRBY'd with it)
    performer:snaps:{room}   sorted set: snapshot records scored by the seq they cover
    performer:snap:{room}    hash (seq, r): the one snapshot earlier versions kept; still
                             read, so a stream they trimmed loads; replaced on the next snapshot
    performer:meta:{room}    hash: metadata (cursors, labels)
    performer:rooms          hash: room -> created timestamp

Each append and each snapshot compare-and-set is one Lua script, so it is atomic on the
Redis side. Durability is Redis's: with `appendonly yes` and `appendfsync always` a reply
means the AOF was fsynced; `durability_warning()` says when the server promises less.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis
from redis.exceptions import RedisError, WatchError

from engine.errors import StorageError
from engine.names import validate_room_name
from engine.storage.contract import RoomInfo
from engine.storage.heads import HEAD_WINDOW, StoredHead, head_from_ends, head_of
from engine.storage.redis_keys import PREFIX, key, seq_of
from engine.storage.room_dump import RoomDump

T = TypeVar("T")

ROOMS = PREFIX + "rooms"

_APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('INCRBY', KEYS[4], string.len(ARGV[1]))
redis.call('XADD', KEYS[2], '0-' .. seq, 'r', ARGV[1], 'n', ARGV[2])
redis.call('HSETNX', KEYS[3], ARGV[3], ARGV[4])
return seq
"""
# The newest snapshot's seq, in the sorted set or the single hash earlier versions kept.
_CURRENT = """
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local current = 0
if #newest > 0 then current = tonumber(newest[2]) end
local legacy = tonumber(redis.call('HGET', KEYS[{legacy}], 'seq') or '0')
if legacy > current then current = legacy end
"""
_NEWEST_SNAPSHOT = _CURRENT.format(legacy=2) + "return current\n"
_SNAPSHOT_CAS = (
    _CURRENT.format(legacy=3)
    + """if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('DEL', KEYS[3])
local keep = tonumber(ARGV[4])
if keep > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(keep + 1)) end
if ARGV[5] == '1' then redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. (tonumber(ARGV[2]) + 1)) end
return 1
"""
)


# Each entry's seq, size, first HEAD_WINDOW bytes and last ones (engine/storage/heads.py).
_HEADS = """
local entries
if ARGV[3] == '' then
  entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2])
else
  entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
end
local width = tonumber(ARGV[4])
local out = {}
for i, entry in ipairs(entries) do
  local fields = entry[2]
  local record = ''
  for j = 1, #fields, 2 do
    if fields[j] == 'r' then record = fields[j + 1] end
  end
  local size = string.len(record)
  local tail = ''
  if size > width then tail = string.sub(record, math.max(width + 1, size - width + 1)) end
  out[i] = {entry[1], size, string.sub(record, 1, width), tail}
end
return out
"""


def _bytes(value: Any) -> bytes:
    return bytes(value)


class RedisLogStore:
    """`LogStore` on Redis; see the module docstring for the layout.

    Args:
        url: `redis://host:port/db`.
        node: this process's id, written with each entry so its fan-out can skip its own.
    """

    def __init__(self, url: str, node: bytes | None = None) -> None:
        self.url = url
        self.node = node or uuid.uuid4().hex.encode()
        # redis-py types replies as unions of every shape; they are known from the commands
        self.redis: Any = redis.Redis.from_url(url)
        self._append = self.redis.register_script(_APPEND)
        self._cas = self.redis.register_script(_SNAPSHOT_CAS)
        self._newest = self.redis.register_script(_NEWEST_SNAPSHOT)
        self._heads = self.redis.register_script(_HEADS)

    def _call(self, what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RedisError as exc:
            raise StorageError(f"Redis {what} failed: {exc}") from exc

    def durability_warning(self) -> str | None:
        """None when an acknowledged append is fsynced by Redis, else why not."""
        try:
            config = self.redis.config_get("append*")
        except RedisError as exc:
            return f"cannot read Redis durability settings ({exc})"
        if config.get("appendonly") == "yes" and config.get("appendfsync") == "always":
            return None
        return (
            f"Redis appendonly={config.get('appendonly')} appendfsync="
            f"{config.get('appendfsync')}: acknowledged edits can be lost if Redis crashes "
            "(set appendonly yes, appendfsync always)"
        )

    def append(self, entries: Sequence[tuple[str, bytes]], now: float) -> list[int]:
        for room, _ in entries:
            validate_room_name(room)
        pipe = self.redis.pipeline(transaction=False)
        for room, record in entries:
            self._append(
                keys=[key("seq", room), key("log", room), ROOMS, key("bytes", room)],
                args=[record, self.node, room, repr(now)],
                client=pipe,
            )
        return [int(seq) for seq in self._call("append", pipe.execute)]

    def read(
        self, room: str, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        end = "+" if upto is None else f"0-{upto}"
        if upto is not None and upto <= after:
            return []
        entries = self._call(
            "read", self.redis.xrange, key("log", room), f"0-{after + 1}", end, count=limit
        )
        return [(seq_of(entry_id), _bytes(fields[b"r"])) for entry_id, fields in entries]

    def read_heads(
        self, room: str, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> list[StoredHead]:
        """`read`'s entries as heads, from each record's ends only (a script cuts them
        out on the Redis side): a page of megabyte updates crosses the wire as a few
        hundred bytes per entry."""
        if upto is not None and upto <= after:
            return []
        end = "+" if upto is None else f"0-{upto}"
        limit_arg = "" if limit is None else str(limit)
        rows = self._call(
            "read",
            self._heads,
            keys=[key("log", room)],
            args=[f"0-{after + 1}", end, limit_arg, HEAD_WINDOW],
        )
        out: list[StoredHead] = []
        for entry_id, size, start, tail in rows:
            seq = seq_of(entry_id)
            if len(start) >= int(size):
                out.append(StoredHead(seq, int(size), head_of(start)))
                continue
            head = head_from_ends(start, tail, int(size))
            if head is None:  # the ends do not hold it: the record whole, as `read` has it
                whole = self.read(room, seq - 1, seq)
                if not whole:
                    continue  # trimmed meanwhile, as if `read` had come a moment later
                out.append(StoredHead(seq, int(size), head_of(whole[0][1])))
            else:
                out.append(StoredHead(seq, int(size), head))
        return out

    def read_views(
        self,
        room: str,
        take: Callable[[int, memoryview], T],
        after: int = 0,
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, int, T]]:
        """`read`, each record handed to `take` as a view of the reply's bytes."""
        return [
            (seq, len(value), take(seq, memoryview(value)))
            for seq, value in self.read(room, after, upto, limit)
        ]

    def first_seq(self, room: str) -> int | None:
        first = self._call("read", self.redis.xrange, key("log", room), "-", "+", count=1)
        return seq_of(first[0][0]) if first else None

    def info(self, room: str) -> RoomInfo | None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(ROOMS, room)
        pipe.get(key("seq", room))
        pipe.get(key("bytes", room))
        created, last_seq, size = self._call("read", pipe.execute)
        if created is None:
            return None
        return RoomInfo(room, float(created), int(last_seq or 0), int(size or 0))

    def rooms(self) -> list[str]:
        return sorted(name.decode("utf-8") for name in self._call("read", self.redis.hkeys, ROOMS))

    def snapshots(
        self, room: str, upto: int | None = None, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        top = "+inf" if upto is None else str(upto)
        window = {} if limit is None else {"start": 0, "num": limit}
        pairs = self._call(
            "read",
            self.redis.zrevrangebyscore,
            key("snaps", room),
            top,
            "-inf",
            withscores=True,
            **window,
        )
        found = [(int(score), _bytes(record)) for record, score in pairs]
        legacy = self._call("read", self.redis.hmget, key("snap", room), "seq", "r")
        if legacy[0] is not None and (upto is None or int(legacy[0]) <= upto):
            found.append((int(legacy[0]), _bytes(legacy[1])))
            found.sort(key=lambda pair: -pair[0])
        return found if limit is None else found[:limit]

    def newest_snapshot_seq(self, room: str) -> int:
        top = self._call("read", self._newest, keys=[key("snaps", room), key("snap", room)])
        return int(top)

    def decode_snapshots(
        self,
        room: str,
        decode: Callable[[bytes | memoryview], T],
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, T]]:
        return [(seq, decode(value)) for seq, value in self.snapshots(room, upto, limit)]

    def put_snapshot(
        self, room: str, seq: int, record: bytes, *, expect: int, keep: int, trim_log: bool
    ) -> bool:
        won = self._call(
            "snapshot",
            self._cas,
            keys=[key("snaps", room), key("log", room), key("snap", room)],
            args=[expect, seq, record, keep, "1" if trim_log else "0"],
        )
        return bool(won)

    def drop_snapshots_before(self, room: str, seq: int) -> int:
        dropped = self._call(
            "snapshot", self.redis.zremrangebyscore, key("snaps", room), "-inf", f"({seq}"
        )
        legacy = self._call("read", self.redis.hget, key("snap", room), "seq")
        if legacy is not None and int(legacy) < seq:
            self._call("snapshot", self.redis.delete, key("snap", room))
            dropped += 1
        return int(dropped)

    def get_meta(self, room: str, name: str) -> bytes | None:
        value = self._call("read", self.redis.hget, key("meta", room), name)
        return None if value is None else _bytes(value)

    def set_meta(
        self, room: str, name: str, value: bytes | None, *, only_new: bool = False
    ) -> bool:
        if self._call("read", self.redis.hexists, ROOMS, room) == 0:
            raise StorageError(f"room {room!r} does not exist")
        if value is None:
            self._call("write", self.redis.hdel, key("meta", room), name)
            return True
        if only_new:
            return bool(self._call("write", self.redis.hsetnx, key("meta", room), name, value))
        self._call("write", self.redis.hset, key("meta", room), name, value)
        return True

    def scan_meta(self, room: str, prefix: str) -> list[tuple[str, bytes]]:
        items = self._call("read", self.redis.hgetall, key("meta", room))
        decoded = ((name.decode("utf-8"), _bytes(value)) for name, value in items.items())
        return sorted(pair for pair in decoded if pair[0].startswith(prefix))

    def add_to_meta(self, room: str, name: str, amount: int) -> int:
        if self._call("read", self.redis.hexists, ROOMS, room) == 0:
            raise StorageError(f"room {room!r} does not exist")
        return int(self._call("write", self.redis.hincrby, key("meta", room), name, amount))

    def delete_room(self, room: str) -> bool:
        removed = self._call("write", self.redis.hdel, ROOMS, room)
        kinds = ("log", "seq", "bytes", "snaps", "snap", "meta")
        self._call("write", self.redis.delete, *(key(kind, room) for kind in kinds))
        return bool(removed)

    def put_room(self, dump: RoomDump) -> None:
        """Write a room another store held, with its seqs, snapshots and metadata, in one
        MULTI/EXEC (an import of a backup). The room must be new: the transaction watches
        its seq counter, so a room created meanwhile (by any process) is refused too."""
        room = validate_room_name(dump.name)
        seq_key = key("seq", room)
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.watch(seq_key)
                if pipe.hexists(ROOMS, room) or pipe.exists(seq_key):
                    raise StorageError(f"room {room!r} already exists")
                pipe.multi()
                pipe.set(seq_key, dump.last_seq)
                pipe.set(key("bytes", room), dump.log_bytes)
                for seq, record in dump.log:
                    pipe.xadd(key("log", room), {"r": record, "n": self.node}, id=f"0-{seq}")
                if dump.snapshots:
                    pipe.zadd(key("snaps", room), {record: seq for seq, record in dump.snapshots})
                if dump.meta:
                    pipe.hset(key("meta", room), mapping=dict(dump.meta))
                pipe.hset(ROOMS, room, repr(dump.created))
                pipe.execute()
        except WatchError as exc:
            raise StorageError(f"room {room!r} was created while it was imported") from exc
        except RedisError as exc:
            raise StorageError(f"Redis import of room {room!r} failed: {exc}") from exc

    def dump_room(self, room: str) -> RoomDump | None:
        """Everything stored for `room`, read in one MULTI/EXEC, so it is one consistent
        point of the room: the stream up to the seq counter, and the snapshots and
        metadata as they were then (None: no such room)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(ROOMS, room)
        pipe.get(key("seq", room))
        pipe.get(key("bytes", room))
        pipe.xrange(key("log", room), "-", "+")
        pipe.zrange(key("snaps", room), 0, -1, withscores=True)
        pipe.hmget(key("snap", room), "seq", "r")
        pipe.hgetall(key("meta", room))
        created, last_seq, size, entries, snaps, legacy, meta = self._call("dump", pipe.execute)
        if created is None:
            return None
        snapshots = [(int(score), _bytes(record)) for record, score in snaps]
        if legacy[0] is not None:
            snapshots.append((int(legacy[0]), _bytes(legacy[1])))
        return RoomDump(
            room,
            float(created),
            int(last_seq or 0),
            int(size or 0),
            [(seq_of(entry_id), _bytes(fields[b"r"])) for entry_id, fields in entries],
            snapshots,
            {name.decode("utf-8"): _bytes(value) for name, value in meta.items()},
        )

    def close(self) -> None:
        self.redis.close()
