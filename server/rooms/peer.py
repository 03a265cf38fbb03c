"""What a room needs from a connection, so rooms can be tested without sockets."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from engine.errors import Close
from engine.protocol import AwarenessEntry

Frame = bytes | tuple[bytes, ...]
"""One message: its bytes, or its parts in order (a large payload kept apart, shared by
every recipient, never copied)."""


class Peer(Protocol):
    """One client in a room.

    `received_updates` counts the update-carrying messages (SyncStep2 and Update) the
    client sent, in order; the "saved" acknowledgement echoes it once they are durable.
    """

    peer_id: int
    user: str | None
    can_write: bool
    role: str | None  # from the token or the Grant: rules' `role:NAME` moderators
    wants_ack: bool
    received_updates: int
    closed: bool

    def send(self, frame: Frame) -> None:
        """Queue one frame; never blocks. A peer whose buffer is full closes itself."""
        ...

    def close(self, code: Close, detail: str | None = None) -> None:
        """Close the connection with a documented code; idempotent."""
        ...

    def take_awareness(self) -> list[AwarenessEntry]:
        """Awareness entries received since the last call, newest per client id."""
        ...


@runtime_checkable
class StatelessPeer(Protocol):
    """A client that takes Hocuspocus stateless messages (y-websocket clients do not)."""

    def send_stateless(self, payload: str) -> None: ...
