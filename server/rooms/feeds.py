"""Change-feed subscriptions: one reader of a room's log for all of its subscribers.

A thousand subscribers of one room cost one log read per commit, not a thousand: the
room's `RoomFeed` waits for the commit signal, reads the new durable entries once and
offers them to every subscriber's bounded queue. A subscriber that cannot keep up (its
queue is full, by entries or by bytes) is marked `overflowed` and its stream is ended; it
resumes with Last-Event-ID, from the log, costing nobody else anything. Where a trim
(--trim-log) took entries past the feed's position before it read them, every subscriber
is ended the same way: its resume starts from the snapshot that trim wrote, never with a
silent gap.

A deleted room's feed ends at once: its task is cancelled and its subscribers told, so a
room created and deleted over and over leaves no reader behind. A room deleted by another
process (Redis) is noticed by the feed itself within `IDLE_SECONDS`, and ends the same
way. Streams are counted per caller (a token or user), and one caller may hold only so
many.

Each entry is encoded once (by the hub's `encode`, the SSE event bytes, in a thread) and
the same bytes go to every subscriber.

A new subscriber registers first and then catches up from the log itself; entries it
then also receives live are skipped by seq, so the hand-over has no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from engine.errors import Busy, EngineError
from engine.storage.records import UpdateRecord
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)

QUEUE_ENTRIES = 10_000
QUEUE_BYTES = 16 * 1024 * 1024
STREAMS_PER_CALLER = 32
READ_LIMIT = 1000
READ_BYTES = 4 * 1024 * 1024
IDLE_SECONDS = 5.0  # a feed without commits looks this often whether its room still exists

Encoded = tuple[int, bytes]  # (seq, the entry as sent)
Encoder = Callable[[UpdateRecord], bytes]


class Subscriber:
    def __init__(
        self,
        room: str,
        limit: int = QUEUE_ENTRIES,
        limit_bytes: int = QUEUE_BYTES,
        caller: str | None = None,
    ) -> None:
        self.room = room
        self.limit = limit
        self.limit_bytes = limit_bytes
        self.caller = caller
        self.feed: RoomFeed | None = None
        self.queue: asyncio.Queue[list[Encoded]] = asyncio.Queue()
        self.queued = 0
        self.queued_bytes = 0
        self.overflowed = False
        self.deleted = False
        self.wakeup = asyncio.Event()

    def offer(self, entries: list[Encoded]) -> None:
        if self.overflowed:
            return
        size = sum(len(event) for _, event in entries)
        if self.queued + len(entries) > self.limit or self.queued_bytes + size > self.limit_bytes:
            self.overflowed = True
        else:
            self.queued += len(entries)
            self.queued_bytes += size
            self.queue.put_nowait(entries)
        self.wakeup.set()

    def cut(self) -> None:
        """End the stream as for an overflow: it resumes from the log (Last-Event-ID)."""
        self.overflowed = True
        self.wakeup.set()

    def take(self) -> list[Encoded]:
        """Everything queued so far (empty if nothing is)."""
        out: list[Encoded] = []
        while not self.queue.empty():
            out += self.queue.get_nowait()
        self.queued = self.queued_bytes = 0
        self.wakeup.clear()
        return out


class RoomFeed:
    """Reads a room's new durable entries once per commit for all its subscribers.

    A room deleted by another process sharing Redis sends this process no signal: when
    a wait ends without news, the feed asks the store whether its room still exists (as
    the room it started with: same creation time), and ends itself (`gone`) if not.
    """

    def __init__(
        self,
        room: str,
        store: RoomStore,
        position: int,
        encode: Encoder,
        created: float | None = None,
        gone: Callable[[RoomFeed], None] | None = None,
    ) -> None:
        self.room = room
        self.encode = encode
        self.store = store
        self.position = position
        self.created = created
        self.gone = gone
        self.subscribers: set[Subscriber] = set()
        self.task: asyncio.Task[None] | None = None
        self.reads = 0

    async def run(self) -> None:
        while self.subscribers:
            committed = await self.store.commits.wait(self.room, self.position, IDLE_SECONDS)
            try:
                fresh = await self._read_new()
                if not (committed and fresh) and await self._deleted():
                    if self.gone is not None:
                        self.gone(self)
                    return
            except EngineError as exc:
                log.warning("change feed of room %r: %s", self.room, exc)

    async def _deleted(self) -> bool:
        """The room is gone, or is another room of the same name (re-created since)."""
        info = await self.store.info(self.room)
        return info is None or (self.created is not None and info.created != self.created)

    async def _read_new(self) -> bool:
        """Offer the entries past the feed's position; whether there were any."""
        read = False
        while self.subscribers:
            entries = await self.store.entries(
                self.room, self.position, READ_LIMIT, max_bytes=READ_BYTES
            )
            self.reads += 1
            if not entries:
                return read
            read = True
            if entries[0].seq != self.position + 1:  # trimmed past the position meanwhile
                for subscriber in self.subscribers:
                    subscriber.cut()
            self.position = entries[-1].seq
            encoded = await asyncio.to_thread(_encode_all, self.encode, entries)
            for subscriber in list(self.subscribers):
                subscriber.offer(encoded)
        return read


def _encode_all(encode: Encoder, entries: list[UpdateRecord]) -> list[Encoded]:
    """Each entry encoded once for every subscriber, in a reading thread: a restore's
    commit of a few hundred kilobytes, base64-encoded on the event loop, held every
    room's edits that long (the encoder works in pieces, so the loop gets the lock back
    between them)."""
    return [(entry.seq, encode(entry)) for entry in entries]


class FeedHub:
    def __init__(
        self,
        store: RoomStore,
        encode: Encoder,
        queue_entries: int = QUEUE_ENTRIES,
        *,
        queue_bytes: int = QUEUE_BYTES,
        streams_per_caller: int = STREAMS_PER_CALLER,
    ) -> None:
        self.store = store
        self.encode = encode
        self.queue_entries = queue_entries
        self.queue_bytes = queue_bytes
        self.streams_per_caller = streams_per_caller
        self.feeds: dict[str, RoomFeed] = {}
        self.streams: dict[str, int] = {}  # open subscriptions per caller

    async def subscribe(self, room: str, caller: str | None = None) -> Subscriber:
        """A new subscriber of `room`, counted against `caller`.

        Raises:
            Busy: `caller` already holds `streams_per_caller` streams.
        """
        if caller is not None:
            if self.streams.get(caller, 0) >= self.streams_per_caller:
                raise Busy(f"at most {self.streams_per_caller} change streams per caller")
            self.streams[caller] = self.streams.get(caller, 0) + 1
        feed = self.feeds.get(room)
        if feed is None:
            info = await self.store.info(room)
            position = self.store.commits.durable(room) or (info.last_seq if info else 0)
            created = info.created if info else None
            feed = RoomFeed(room, self.store, position, self.encode, created, self._ended)
            feed = self.feeds.setdefault(room, feed)
        subscriber = Subscriber(room, self.queue_entries, self.queue_bytes, caller)
        subscriber.feed = feed
        feed.subscribers.add(subscriber)
        if feed.task is None or feed.task.done():
            feed.task = asyncio.get_running_loop().create_task(feed.run())
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Idempotent; the feed it belonged to (not whatever feed the room has now: the
        room may have been deleted and written again) ends with its last subscriber."""
        caller, subscriber.caller = subscriber.caller, None
        if caller is not None:
            left = self.streams.get(caller, 1) - 1
            if left > 0:
                self.streams[caller] = left
            else:
                self.streams.pop(caller, None)
        feed, subscriber.feed = subscriber.feed, None
        if feed is None:
            return
        feed.subscribers.discard(subscriber)
        if not feed.subscribers and self.feeds.get(feed.room) is feed:
            del self.feeds[feed.room]

    def room_deleted(self, room: str) -> None:
        """End the room's feed now: its subscribers get `deleted`, its reader stops."""
        feed = self.feeds.pop(room, None)
        if feed is None:
            return
        self._tell_deleted(feed)
        if feed.task is not None:
            feed.task.cancel()

    def _ended(self, feed: RoomFeed) -> None:
        """A feed found its room deleted elsewhere (another process): end it here too."""
        if self.feeds.get(feed.room) is feed:
            del self.feeds[feed.room]
        self._tell_deleted(feed)

    @staticmethod
    def _tell_deleted(feed: RoomFeed) -> None:
        for subscriber in list(feed.subscribers):
            subscriber.deleted = True
            subscriber.wakeup.set()
        feed.subscribers.clear()

    async def close(self) -> None:
        tasks = [f.task for f in self.feeds.values() if f.task is not None]
        for feed in list(self.feeds.values()):
            for subscriber in feed.subscribers:
                subscriber.wakeup.set()
        self.feeds.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
