"""Fan-out between server processes sharing Redis: one XREAD loop follows the streams of
the rooms this process has loaded and hands other processes' commits to the rooms;
presence goes over pub/sub. Our own entries are skipped (we relayed them already); a
gap (the stream trimmed past our position) reloads snapshot + tail, never runs on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from engine.errors import StorageError
from engine.storage import LoadedRoom
from engine.storage.records import UpdateRecord, unpack
from engine.storage.redis_keys import PREFIX, key, seq_of
from server.rooms.fanout import RemoteSink

log = logging.getLogger(__name__)

FOLLOW_BLOCK_MS = 200


@dataclass
class _Follow:
    last: int
    sink: RemoteSink


_RELEASE_OR_RENEW = """
local owner = redis.call('GET', KEYS[1])
if owner == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if owner == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class RedisFanout:
    """Args: node: this process's id (the one its log store writes with each entry);
    load: reloads a room after a gap."""

    shared = True

    def __init__(self, url: str, node: bytes, load: Callable[[str], Awaitable[LoadedRoom]]) -> None:
        self._redis: Any = redis.Redis.from_url(url)
        self._reader: Any = redis.Redis.from_url(url)  # XREAD BLOCK needs its own connection
        self._pubsub: Any = self._redis.pubsub()
        self._lease = self._redis.register_script(_RELEASE_OR_RENEW)
        self.node = node
        self._load = load
        self._followed: dict[str, _Follow] = {}
        self._wakeup = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []
        self._closing = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(self._follow_loop(), name="redis-follow"),
            loop.create_task(self._presence_loop(), name="redis-presence"),
        ]

    async def close(self) -> None:
        self._closing = True
        self._wakeup.set()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)
        await self._pubsub.aclose()
        await self._reader.aclose()
        await self._redis.aclose()

    async def lease(self, name: str, seconds: float) -> bool:
        """Take or renew a lease held in Redis (SET NX PX, renewed by its owner only)."""
        try:
            owned = await self._lease(
                keys=[key("lease", name)], args=[self.node, int(seconds * 1000)]
            )
        except RedisError as exc:
            log.warning("lease %r: %s", name, exc)
            return False
        return bool(owned)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def follow(self, room: str, last_seq: int, sink: RemoteSink) -> None:
        self._followed[room] = _Follow(last_seq, sink)
        self._wakeup.set()
        self._spawn(self._pubsub.subscribe(key("aw", room)))

    def unfollow(self, room: str) -> None:
        if self._followed.pop(room, None) is not None:
            self._spawn(self._pubsub.unsubscribe(key("aw", room)))

    async def _follow_loop(self) -> None:
        """One XREAD over every loaded room's stream, from each one's last seen seq."""
        while not self._closing:
            if not self._followed:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            streams: dict[Any, Any] = {
                key("log", room): f"0-{follow.last}" for room, follow in self._followed.items()
            }
            try:
                result = await self._reader.xread(streams, count=1000, block=FOLLOW_BLOCK_MS)
            except RedisError as exc:
                log.warning("following rooms failed, retrying: %s", exc)
                await asyncio.sleep(0.5)
                continue
            for stream, entries in result or []:
                room = stream.decode()[len(PREFIX) + 4 :]
                try:
                    await self._deliver(room, entries)
                except (RedisError, StorageError):
                    log.exception("room %r: could not follow its stream", room)

    async def _deliver(self, room: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        follow = self._followed.get(room)
        if follow is None:
            return
        updates = []
        for entry_id, fields in entries:
            seq = seq_of(entry_id)
            if seq <= follow.last:
                continue
            if seq != follow.last + 1:
                await self._catch_up(room, follow)
                return
            follow.last = seq
            if fields.get(b"n") != self.node:
                updates.append(UpdateRecord.from_map(unpack(fields[b"r"]), seq).update)
        if updates:
            follow.sink.remote_updates(updates, follow.last)

    async def _catch_up(self, room: str, follow: _Follow) -> None:
        """The stream was trimmed past our position: reload snapshot + tail (idempotent)."""
        log.warning("room %r: gap after seq %d, reloading snapshot + tail", room, follow.last)
        loaded = await self._load(room)
        follow.last = loaded.last_seq
        follow.sink.remote_updates(loaded.updates, loaded.last_seq)

    def publish_awareness(self, room: str, payload: bytes) -> None:
        self._spawn(self._publish(key("aw", room), self.node + payload))

    async def _publish(self, channel: str, message: bytes) -> None:
        try:
            await self._redis.publish(channel, message)
        except RedisError as exc:
            log.debug("presence publish failed (presence is best effort): %s", exc)

    async def _presence_loop(self) -> None:
        node_len = len(self.node)
        while not self._closing:
            if not self._pubsub.subscribed:
                await asyncio.sleep(0.05)
                continue
            try:
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0
                )
            except RedisError as exc:
                log.warning("presence channel failed, retrying: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if message is None or message.get("type") != "message":
                continue
            data: bytes = message["data"]
            if data[:node_len] == self.node:
                continue
            room = message["channel"].decode()[len(PREFIX) + 3 :]
            follow = self._followed.get(room)
            if follow is not None:
                follow.sink.remote_awareness(data[node_len:])
