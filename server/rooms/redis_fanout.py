"""Fan-out between server processes sharing Redis: one XREAD loop follows the streams of
the rooms this process has loaded and hands other processes' commits to the rooms;
presence goes over pub/sub. Our own entries are skipped (we relayed them already); a
gap (the stream trimmed past our position) reloads snapshot + tail, never runs on.

Presence (and Hocuspocus stateless messages) use one channel per loaded room. Pub/sub
keeps nothing, so a process that starts following a room asks the others for the states
of their clients there (a query, answered with an awareness message); otherwise a client
that joined elsewhere earlier stays invisible until its next renewal. Each message is
kind (1 byte) + len(node) (1 byte) + node + body.
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

AWARENESS = b"\x01"  # body: an awareness update
QUERY = b"\x02"  # body: empty; every other process answers with its clients' states
STATELESS = b"\x03"  # body: a Hocuspocus stateless payload (UTF-8), never stored


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
        # One pub/sub connection, and redis-py opens it lazily: subscribes that race make
        # one connection each and keep only the last, so they take turns (in order).
        self._subscribing = asyncio.Lock()
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
        self._spawn(self._subscribe(room))

    def unfollow(self, room: str) -> None:
        if self._followed.pop(room, None) is not None:
            self._spawn(self._unsubscribe(room))

    async def _subscribe(self, room: str) -> None:
        """Listen to the room's presence, then ask the others for what they hold."""
        async with self._subscribing:
            try:
                await self._pubsub.subscribe(key("aw", room))
            except RedisError as exc:
                log.warning("room %r: presence subscribe failed: %s", room, exc)
                return
        await self._publish(room, QUERY, b"")

    async def _unsubscribe(self, room: str) -> None:
        async with self._subscribing:
            try:
                await self._pubsub.unsubscribe(key("aw", room))
            except RedisError as exc:
                log.warning("room %r: presence unsubscribe failed: %s", room, exc)

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
        self._spawn(self._publish(room, AWARENESS, payload))

    def publish_stateless(self, room: str, payload: str) -> None:
        self._spawn(self._publish(room, STATELESS, payload.encode()))

    async def _publish(self, room: str, kind: bytes, body: bytes) -> None:
        message = kind + bytes((len(self.node),)) + self.node + body
        try:
            await self._redis.publish(key("aw", room), message)
        except RedisError as exc:
            log.debug("presence publish failed (presence is best effort): %s", exc)

    async def _presence_loop(self) -> None:
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
            if message is not None and message.get("type") == "message":
                room = message["channel"].decode()[len(PREFIX) + 3 :]
                try:
                    self._heard(room, message["data"])
                except Exception:  # one bad message must not end presence for every room
                    log.exception("room %r: a presence message could not be handled", room)

    def _heard(self, room: str, data: bytes) -> None:
        """One message from the room's channel: ours are skipped, the rest delivered."""
        follow = self._followed.get(room)
        if follow is None or len(data) < 2:
            return
        kind, node_end = data[:1], 2 + data[1]
        if len(data) < node_end or data[2:node_end] == self.node:
            return  # cut short, or ours
        body = data[node_end:]
        if kind == AWARENESS:
            follow.sink.remote_awareness(body)
        elif kind == QUERY:
            states = follow.sink.presence.local_states()
            if states is not None:
                self.publish_awareness(room, states)
        elif kind == STATELESS:
            follow.sink.presence.relay_stateless(body.decode(errors="replace"))
        else:
            log.debug("room %r: unknown presence message kind %r", room, kind)
