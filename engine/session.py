"""The client side of the y-websocket sync exchange, as a state machine with no I/O.

One `SyncSession` lives for one connection. The transport feeds it decoded messages and
sends whatever it returns, in order::

    session = SyncSession(replica, awareness)
    send(session.open())                      # SyncStep1 + our presence
    for message in connection:
        send(session.receive(message, mark=store.last_seq))
    send(session.local_update(update, mark))  # whenever the user edits

The exchange follows y-protocols' `sync.js`: each side sends its state vector (step 1),
answers the other's with the diff it lacks (step 2), and from then on streams updates.
Local edits made before we have answered the server's step 1 are not sent one by one:
the step 2 answer is computed from the whole document, so it already carries them.

A replica whose updates have waited for a missing dependency longer than a resync would
take is stuck (an update lost on the way, or a merge that overtook what it depends on):
`resync()` then returns a fresh SyncStep1, whose answer carries everything the server has
that we lack, pending updates included. The transport calls it now and then.

Durability accounting (the opt-in `Saved` acknowledgement): the server counts the
update-carrying messages this connection sent (step 2 and updates, in order) and tells
us how many are durable. The caller tags every such message with a *mark*, a position in
its own local log, chosen so that "message i is durable" means "everything up to mark i
is on the server". `confirmed_mark` is the highest mark acknowledged so far.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from pycrdt import Awareness

from engine.protocol import (
    AwarenessUpdate,
    Message,
    PermissionDeniedMessage,
    QueryAwareness,
    Saved,
    SyncStep1,
    SyncStep2,
    Update,
)

REMOTE = "remote"  # the origin given to awareness states that came from the server
MIN_RESYNC_SECONDS = 1.0  # a replica stuck at least this long (and 4 handshakes) resyncs
MAX_RESYNC_SECONDS = 60.0  # resyncs that change nothing back off up to this interval
STUCK_CHECK_SECONDS = 0.25  # how often a connection asks `resync()` whether it is stuck


class Replica(Protocol):
    """The local copy of the document, as the session needs it."""

    def state_vector(self) -> bytes:
        """What the local document has (a Yjs state vector)."""
        ...

    def diff(self, state_vector: bytes) -> bytes:
        """Everything the local document has that a peer with `state_vector` lacks."""
        ...

    def apply_remote(self, update: bytes) -> None:
        """Apply an update that came from the server (never sent back)."""
        ...

    @property
    def pending_since(self) -> float | None:
        """Since when (on the session's clock) a remote update has waited for a
        dependency; None when nothing waits."""
        ...


class Phase(Enum):
    """Where the handshake stands on this connection."""

    OPENING = "opening"  # our step 1 is out; the server's step 1 and step 2 are pending
    ANSWERED = "answered"  # we answered the server's step 1; local edits now stream
    SYNCED = "synced"  # the server's step 2 arrived too: we hold what it had


class SyncSession:
    """One connection's sync state: handshake phase, and which update messages are durable.

    Args:
        replica: the local document.
        awareness: presence to announce and to fill with remote states (optional).
        clock: monotonic seconds (the replica's `pending_since` uses the same clock).
    """

    def __init__(
        self,
        replica: Replica,
        awareness: Awareness | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.replica = replica
        self.awareness = awareness
        self.clock = clock
        self.opened_at: float | None = None
        self.handshake_seconds: float | None = None  # from our step 1 to the server's step 2
        self.resyncs = 0
        self._resync_at: float | None = None  # when a resync is due, while stuck
        self._resync_interval = MIN_RESYNC_SECONDS
        self.answered = False  # we sent our step 2
        self.synced = False  # we received the server's step 2
        self.sent_updates = 0  # update-carrying messages sent on this connection
        self.acked_updates = 0  # of those, how many the server said are durable
        self.confirmed_mark = 0
        self.denied: list[str] = []
        self._marks: deque[tuple[int, int]] = deque()  # (message number, mark)

    @property
    def phase(self) -> Phase:
        if self.synced and self.answered:
            return Phase.SYNCED
        return Phase.ANSWERED if self.answered else Phase.OPENING

    def open(self) -> list[Message]:
        """The first messages of a connection: our state vector, then our presence."""
        self.opened_at = self.clock()
        messages: list[Message] = [SyncStep1(self.replica.state_vector())]
        local = self._local_awareness()
        if local is not None:
            messages.append(local)
        return messages

    def receive(self, message: Message, mark: int) -> list[Message]:
        """Handle one message from the server; returns the replies to send, in order.

        Args:
            message: a decoded message.
            mark: the caller's local log position now; a step 2 sent in reply is
                tagged with it, since it carries everything the server lacks.
        """
        match message:
            case SyncStep1(state_vector):
                reply = SyncStep2(self.replica.diff(state_vector))
                self.answered = True
                self._count_update(mark)
                return [reply]
            case SyncStep2(update):
                self.replica.apply_remote(update)
                if not self.synced and self.opened_at is not None:
                    self.handshake_seconds = self.clock() - self.opened_at
                self.synced = True
            case Update(update):
                self.replica.apply_remote(update)
            case AwarenessUpdate(payload):
                if self.awareness is not None:
                    self.awareness.apply_awareness_update(payload, REMOTE)
            case QueryAwareness():
                local = self._local_awareness()
                return [local] if local is not None else []
            case Saved(count, _seq):
                self._acknowledge(count)
            case PermissionDeniedMessage(reason):
                self.denied.append(reason)
        return []

    def local_update(self, update: bytes, mark: int) -> list[Message]:
        """A local edit: send it now, or leave it to the step 2 answer still to come."""
        if not self.answered:
            return []
        self._count_update(mark)
        return [Update(update)]

    def resync(self) -> list[Message]:
        """A fresh SyncStep1 when the replica is stuck, else nothing (see module).

        Stuck: synced, and some remote update has waited for a dependency for longer
        than `MIN_RESYNC_SECONDS` and four handshakes. A resync after which it is still
        stuck doubles the wait before the next one (up to `MAX_RESYNC_SECONDS`): what
        waits may be missing on the server too, and asking again would not help.
        """
        since = self.replica.pending_since
        if since is None or not self.synced:
            self._resync_at = None
            self._resync_interval = self._first_interval()
            return []
        now = self.clock()
        if self._resync_at is None:
            self._resync_at = since + self._resync_interval
        if now < self._resync_at:
            return []
        self.resyncs += 1
        self._resync_interval = min(self._resync_interval * 2, MAX_RESYNC_SECONDS)
        self._resync_at = now + self._resync_interval
        return [SyncStep1(self.replica.state_vector())]

    def _first_interval(self) -> float:
        handshake = self.handshake_seconds or 0.0
        return min(max(MIN_RESYNC_SECONDS, 4 * handshake), MAX_RESYNC_SECONDS)

    def local_awareness(self, payload: bytes) -> list[Message]:
        """Our presence changed: always sent, presence is not part of the handshake."""
        return [AwarenessUpdate(payload)]

    @property
    def unacknowledged(self) -> int:
        """Update messages sent on this connection and not yet durable on the server."""
        return self.sent_updates - self.acked_updates

    def _count_update(self, mark: int) -> None:
        self.sent_updates += 1
        self._marks.append((self.sent_updates, mark))

    def _acknowledge(self, count: int) -> None:
        """Acks are cumulative; a stale or repeated one changes nothing."""
        count = min(count, self.sent_updates)
        if count <= self.acked_updates:
            return
        self.acked_updates = count
        while self._marks and self._marks[0][0] <= count:
            _number, mark = self._marks.popleft()
            self.confirmed_mark = max(self.confirmed_mark, mark)

    def _local_awareness(self) -> AwarenessUpdate | None:
        if self.awareness is None or self.awareness.get_local_state() is None:
            return None
        client_id = self.awareness.client_id
        return AwarenessUpdate(self.awareness.encode_awareness_update([client_id]))
