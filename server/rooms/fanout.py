"""The fan-out seam: hearing about commits and presence from other server processes.

`LocalFanout` is the embedded default: one process owns the store, there is nobody else
to hear from, and every lease is ours. `RedisFanout` (redis_fanout.py) follows the Redis
streams of this process's loaded rooms and shares presence over pub/sub. Storage is a
separate seam (server/rooms/store.py): the actor never knows which one it has.
"""

from __future__ import annotations

from typing import Protocol

from server.rooms.presence import PresenceRelay


class RemoteSink(Protocol):
    """A loaded room, as the fan-out sees it: where other processes' news goes."""

    def remote_updates(self, updates: list[bytes], last_seq: int) -> None:
        """Durable updates committed by another process (apply and relay locally)."""
        ...

    def remote_awareness(self, payload: bytes) -> None:
        """An awareness update from another process's clients."""
        ...

    @property
    def presence(self) -> PresenceRelay:
        """The room's presence: its clients' states (for another process that asks)
        and its stateless relay."""
        ...


class Fanout(Protocol):
    shared: bool  # several processes append to the same rooms

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def follow(self, room: str, last_seq: int, sink: RemoteSink) -> None: ...

    def unfollow(self, room: str) -> None: ...

    def publish_awareness(self, room: str, payload: bytes) -> None: ...

    def publish_stateless(self, room: str, payload: str) -> None:
        """A Hocuspocus stateless message, for the room's clients on other processes."""
        ...

    async def lease(self, name: str, seconds: float) -> bool:
        """Hold (or renew) the named lease for `seconds`: True while this process owns
        it. Used so one process delivers each room's hooks and webhooks."""
        ...


class LocalFanout:
    """One process, one store: nothing to follow, every lease is ours."""

    shared = False

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def follow(self, room: str, last_seq: int, sink: RemoteSink) -> None:
        pass

    def unfollow(self, room: str) -> None:
        pass

    def publish_awareness(self, room: str, payload: bytes) -> None:
        pass

    def publish_stateless(self, room: str, payload: str) -> None:
        pass

    async def lease(self, name: str, seconds: float) -> bool:
        return True
