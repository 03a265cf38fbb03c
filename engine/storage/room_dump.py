"""One room's stored pieces, as bytes, moved between stores whole.

A backup of a Redis store and a recovery from an archive both rebuild rooms in a fresh
LMDB data directory with the seqs, snapshots and metadata they had, which no append can
do (appends number entries from the room's last seq). A `RoomDump` is what a store reads
of one room in one consistent step, and what `KVLogStore.put_room` writes in one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RoomDump:
    """Everything stored for one room; records stay opaque (packed by the DocStore).

    Args:
        last_seq: the position the dump covers: every entry up to it is in `log` or folded
            into a snapshot in `snapshots`.
        log: (seq, record) ascending; may start after 1 where the log was trimmed.
        snapshots: (seq, record), any order.
    """

    name: str
    created: float
    last_seq: int
    log_bytes: int
    log: list[tuple[int, bytes]] = field(default_factory=list)
    snapshots: list[tuple[int, bytes]] = field(default_factory=list)
    meta: dict[str, bytes] = field(default_factory=dict)
