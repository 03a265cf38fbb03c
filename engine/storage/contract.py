"""The log-store contract: the one thing a backend must do for the DocStore.

A log store keeps, per room, an append-only log of opaque records numbered 1, 2, 3, ...
(the room's seq), a few snapshots (opaque records tagged with the seq they cover), and a
small per-room key/value space for metadata (delivery cursors, version labels). It never
interprets a record: packing, checksums, gap checks, load with snapshot fallback, history
and compaction policy live once, in `DocStore`, above every implementation.

Implementations: `KVLogStore` over any `KV` (embedded LMDB, or memory in tests) and
`RedisLogStore` (Redis Streams, for several server processes). One contract suite
(tests/engine/test_log_contract.py) runs against all three.

Calls are synchronous; the server runs them off its event loop, writes on one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from engine.storage.heads import StoredHead
    from engine.storage.room_dump import RoomDump

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """What the store counts for a room as it appends.

    Args:
        log_bytes: bytes of every record ever appended (trimming does not lower it), so
            "bytes since the last snapshot" is a subtraction, not a scan.
    """

    name: str
    created: float
    last_seq: int
    log_bytes: int


class LogStore(Protocol):
    """Per-room sequenced logs, snapshots with compare-and-set, metadata, trimming."""

    def append(self, entries: Sequence[tuple[str, bytes]], now: float) -> list[int]:
        """Append (room, record) pairs in one atomic, durable step; returns their seqs.

        A room seen for the first time is created (with `now` as its creation time).
        On failure nothing is written (raises StorageError).
        """
        ...

    def read(
        self, room: str, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        """Log records with after < seq <= upto, ascending; what trimming left of them."""
        ...

    def read_heads(
        self, room: str, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> list[StoredHead]:
        """What `read` returns, each record's head decoded in place of its bytes (see
        engine/storage/heads.py): the one read that looks into records, so that a
        history page costs the fields it lists, not copies of the updates."""
        ...

    def read_views(
        self,
        room: str,
        take: Callable[[int, memoryview], T],
        after: int = 0,
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, int, T]]:
        """`read`, each record handed to `take` with its seq as a view (valid only during
        the call, as for `KV.scan_views`): (seq, the record's bytes, what `take` gave).
        Where the store's memory can be read in place (LMDB), no record is copied first."""
        ...

    def first_seq(self, room: str) -> int | None:
        """The oldest seq still in the log (None: the log is empty or trimmed away)."""
        ...

    def info(self, room: str) -> RoomInfo | None:
        """The room's counters, or None if it was never written."""
        ...

    def rooms(self) -> list[str]:
        """Every stored room's name, sorted."""
        ...

    def newest_snapshot_seq(self, room: str) -> int:
        """The seq of the newest stored snapshot, readable or not (0: none), without
        reading it: what a compare-and-set on snapshots expects."""
        ...

    def snapshots(
        self, room: str, upto: int | None = None, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        """Stored snapshots with seq <= upto, newest first (at most `limit`: each is a
        whole document, so a load reads the newest alone unless it is unreadable)."""
        ...

    def decode_snapshots(
        self,
        room: str,
        decode: Callable[[bytes | memoryview], T],
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, T]]:
        """`snapshots`, each handed to `decode`, as a view of the store's memory where it
        has one (LMDB), so a snapshot the size of its room is copied once, by `decode`.
        `decode` must not raise: a snapshot that does not decode is for the caller to
        skip, the others still come back."""
        ...

    def put_snapshot(
        self, room: str, seq: int, record: bytes, *, expect: int, keep: int, trim_log: bool
    ) -> bool:
        """Store a snapshot covering 1..seq, if the newest stored one is still `expect`
        (0: none). In the same atomic step: drop all but the `keep` newest snapshots
        (0 keeps all) and, with `trim_log`, the log entries <= seq. False if the check
        failed (another compactor won); nothing is written then.
        """
        ...

    def drop_snapshots_before(self, room: str, seq: int) -> int:
        """Delete the room's snapshots older than `seq` (retention, after the snapshot at
        the window's edge is written); returns how many went."""
        ...

    def get_meta(self, room: str, name: str) -> bytes | None: ...

    def set_meta(
        self, room: str, name: str, value: bytes | None, *, only_new: bool = False
    ) -> bool:
        """Set (None: delete) one metadata value of a stored room; with `only_new`,
        only if it is not set yet (returns False then)."""
        ...

    def scan_meta(self, room: str, prefix: str) -> list[tuple[str, bytes]]:
        """Metadata entries whose name starts with `prefix`, sorted by name."""
        ...

    def add_to_meta(self, room: str, name: str, amount: int) -> int:
        """Add `amount` to a counter kept as one metadata value (ASCII digits; absent
        counts as 0), atomically even when processes share the store; the new total."""
        ...

    def delete_room(self, room: str) -> bool:
        """Remove the room and everything stored for it; False if it did not exist."""
        ...

    def put_room(self, dump: RoomDump) -> None:
        """Write a room another store held, whole, with its seqs, snapshots and metadata
        (backups, recovery, imports); StorageError if the room exists."""
        ...

    def close(self) -> None: ...
