"""DocStore: what a room is made of, written once over any `LogStore`.

It packs and checks records (CRC + versioned CBOR), loads a room as its newest readable
snapshot plus the log after it (falling back to an older snapshot when one is torn),
answers history and "state at seq", decides when to snapshot, and keeps per-room metadata.
It never builds a document: snapshots are handed in by the caller (the room actor encodes
its live document), and "state at seq" and offline compaction use a `rebuild` function the
caller injects (`engine.document.rebuild`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pycrdt import get_state

from engine.errors import CorruptRecord, HistoryFolded, RoomNotFound, StorageError
from engine.storage.compaction import CompactionPolicy, Retention, should_compact
from engine.storage.contract import LogStore, RoomInfo
from engine.storage.heads import StoredHead
from engine.storage.record_views import record_or_error
from engine.storage.records import (
    Snapshot,
    UpdateRecord,
    pack,
    pack_updates,
    unpack,
)
from engine.yjs import EMPTY_UPDATE, update_clients

log = logging.getLogger(__name__)

Rebuild = Callable[[list[bytes]], bytes]
BUDGET_BATCH = 16  # most records read at once for a byte-bounded page
_READ_ERRORS = (StorageError, KeyError, TypeError, ValueError)
READ_RETRIES = 8  # reads of snapshot + log that a concurrent trim may cut short in a row
KEPT_PREFIX = "kept:"  # metadata: a named version's state, kept when the log before it goes


def kept_key(seq: int) -> str:
    return f"{KEPT_PREFIX}{seq:020d}"


@dataclass(frozen=True, slots=True)
class Append:
    """One update to append to one room's log."""

    room: str
    update: bytes
    user: str | None = None
    clients: tuple[int, ...] | None = None  # authoring client ids, if already known
    restore_of: int | None = None
    rejected: dict[str, Any] | None = None  # what a rule undid of it, in the same record


@dataclass(frozen=True, slots=True)
class LoadedRoom:
    """What a room is made of: apply `updates` in order to rebuild it."""

    name: str
    updates: list[bytes]
    last_seq: int
    snapshot_seq: int
    snapshot_whole: bool = False  # see Snapshot.whole


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    seq: int
    ts: float
    user: str | None
    bytes: int
    clients: tuple[int, ...]
    restore_of: int | None = None
    rejected: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SnapshotMark:
    """The newest snapshot of a room, as far as the policy needs to know."""

    seq: int = 0
    size: int = 0
    log_bytes: int = 0


def _decode_snapshot(value: bytes | memoryview) -> Snapshot | Exception:
    """A stored snapshot, or why it does not read (the caller skips it for an older one)."""
    try:
        return Snapshot.from_map(unpack(value))
    except _READ_ERRORS as exc:
        return exc


def _no_decode(_value: bytes | memoryview) -> None:
    return None


def _record(room: str, seq: int, value: bytes) -> UpdateRecord:
    try:
        return UpdateRecord.from_map(unpack(value), seq)
    except _READ_ERRORS as exc:
        raise CorruptRecord(room, "log record", seq, str(exc)) from exc


_P = TypeVar("_P")


def _checked(room: str, seq: int, value: _P | Exception) -> _P:
    if isinstance(value, Exception):
        raise CorruptRecord(room, "log record", seq, str(value)) from value
    return value


def _history_entry(room: str, stored: StoredHead) -> HistoryEntry:
    head = stored.head
    if isinstance(head, Exception):
        raise CorruptRecord(room, "log record", stored.seq, str(head)) from head
    seq = stored.seq
    return HistoryEntry(
        seq, head.ts, head.user, head.size, head.clients, head.restore_of, head.rejected
    )


def _within(
    read: Callable[[int, int], Sequence[_P]],
    measure: Callable[[_P], tuple[int, int]],
    after: int,
    limit: int | None,
    max_bytes: int,
) -> Iterator[_P]:
    """What `read(after, count)` gives, read in small batches sized by the largest
    entry seen so far (`measure`: its seq and stored bytes), so a page overshoots its
    budget by at most one batch of entries (BUDGET_BATCH)."""
    used = count = largest = 0
    batch = 1
    while used < max_bytes and (limit is None or count < limit):
        want = batch if limit is None else min(batch, limit - count)
        items = read(after, want)
        for item in items:
            after, size = measure(item)
            used += size
            largest = max(largest, size)
            count += 1
            yield item
        if len(items) < want:
            return
        batch = max(1, min(BUDGET_BATCH, 2 * batch, (max_bytes - used) // max(largest, 1)))


class DocStore:
    """Rooms' logs and snapshots on a `LogStore`, with history and time travel.

    Args:
        log: where the records live (`KVLogStore` on LMDB or memory, `RedisLogStore`).
        clock: seconds since the epoch, injected so tests control time. Only the audit
            trail uses it; ordering always comes from per-room sequence numbers.
        rebuild: folds updates into one (a document's encoded state); needed only by
            `state_at` and by `compact` without a snapshot handed in.
    """

    def __init__(
        self,
        log: LogStore,
        *,
        clock: Callable[[], float] = time.time,
        policy: CompactionPolicy | None = None,
        retention: Retention | None = None,
        rebuild: Rebuild | None = None,
    ) -> None:
        self.log = log
        self.clock = clock
        self.policy = policy or CompactionPolicy()
        self.retention = retention or Retention()
        self._rebuild = rebuild
        self._marks: dict[str, SnapshotMark] = {}

    # ------------------------------------------------------------------ writes

    def append(self, room: str, update: bytes, user: str | None = None) -> int:
        """Append one update durably; returns its seq."""
        return self.append_many([Append(room, update, user)])[0]

    def append_many(self, batch: Sequence[Append]) -> list[int]:
        """Append updates of any rooms in one atomic, durable step (group commit).

        Returns the seq given to each update, in batch order; on failure nothing is written.
        """
        now = self.clock()
        records = pack_updates(
            now,
            [
                (
                    item.user,
                    item.clients if item.clients is not None else update_clients(item.update),
                    item.update,
                    item.restore_of,
                )
                for item in batch
            ],
        )
        for at, item in enumerate(batch):
            if item.rejected is not None:  # rare: the general encoder, not the fast path
                clients = item.clients
                if clients is None:
                    clients = update_clients(item.update)
                fields = UpdateRecord(0, now, item.user, clients, item.update, item.restore_of,
                                      item.rejected)  # fmt: skip
                records[at] = pack(fields.to_map())
        rooms = [item.room for item in batch]
        return self.log.append(list(zip(rooms, records, strict=True)), now)

    # ------------------------------------------------------------------ reads

    def info(self, room: str) -> RoomInfo | None:
        return self.log.info(room)

    def require(self, room: str) -> RoomInfo:
        info = self.log.info(room)
        if info is None:
            raise RoomNotFound(f"room {room!r} does not exist")
        return info

    def rooms(self) -> list[RoomInfo]:
        """Every stored room's counters."""
        infos = (self.log.info(name) for name in self.log.rooms())
        return [info for info in infos if info is not None]

    def load(self, room: str) -> LoadedRoom:
        """Newest readable snapshot + the log after it.

        A torn or corrupt snapshot is skipped for the one before it (or the full log);
        never an empty document in place of a broken one.

        Raises:
            CorruptRecord: a log record in the needed range is unreadable or missing (the
                log was trimmed past every readable snapshot).
        """
        info = self.log.info(room)
        if info is None:
            return LoadedRoom(room, [], 0, 0)
        snapshot, tail = self._snapshot_and_records(room, None)
        base = snapshot.seq if snapshot else 0
        updates = ([snapshot.update] if snapshot else []) + [r.update for r in tail]
        whole = snapshot.whole if snapshot else False
        return LoadedRoom(room, updates, tail[-1].seq if tail else base, base, whole)

    def _snapshot_at_or_before(self, room: str, seq: int | None) -> Snapshot | None:
        """The newest readable snapshot; older ones are read only if it is not (each is a
        whole document: tens of megabytes for a big room)."""
        newest = self.log.decode_snapshots(room, _decode_snapshot, seq, limit=1)
        found = self._first_readable(room, seq, newest)
        if found is None and newest:
            older = self.log.decode_snapshots(room, _decode_snapshot, seq)[1:]
            found = self._first_readable(room, seq, older)
        return found

    def _first_readable(
        self, room: str, seq: int | None, snapshots: list[tuple[int, Snapshot | Exception]]
    ) -> Snapshot | None:
        for snap_seq, snapshot in snapshots:
            if isinstance(snapshot, Exception):
                log.warning(
                    "room %r: skipping unreadable snapshot at seq %d: %s", room, snap_seq, snapshot
                )
                continue
            if seq is None:
                self._marks[room] = SnapshotMark(
                    snapshot.seq, len(snapshot.update), snapshot.log_bytes
                )
            return snapshot
        return None

    def records(self, room: str, after: int = 0, upto: int | None = None) -> list[UpdateRecord]:
        """Log records after `after` (up to `upto`), checking that none is missing."""
        out = []
        expected = after + 1
        for seq, value in self.log.read(room, after, upto):
            if seq != expected:
                raise CorruptRecord(room, "log", expected, "entry is missing (trimmed or lost)")
            out.append(_record(room, seq, value))
            expected += 1
        if upto is not None and expected <= upto:
            raise CorruptRecord(room, "log", expected, "entry is missing (trimmed or lost)")
        return out

    def entries(
        self,
        room: str,
        after: int = 0,
        upto: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[UpdateRecord]:
        """What the log still holds after `after` (retention may have trimmed its start).

        With `max_bytes`, the list ends once its records reach that many bytes (always at
        least one record): a page of big updates costs its budget, not `limit` of them.
        """
        return [record for _, record in self.entries_as(room, record_or_error, after, upto,
                                                            limit, max_bytes)]  # fmt: skip

    def entries_as(
        self,
        room: str,
        take: Callable[[int, memoryview], _P | Exception],
        after: int = 0,
        upto: int | None = None,
        limit: int | None = None,
        max_bytes: int | None = None,
    ) -> list[tuple[int, _P]]:
        """`entries`, each record handed to `take` with its seq as a view of the stored
        bytes (valid only during the call) instead of decoded: a change-feed page is
        encoded straight from the store's memory. What `take` returns as an exception
        is raised as the record's `CorruptRecord` (once it is known to be on the page)."""
        if max_bytes is None:
            taken: Iterable[tuple[int, int, _P | Exception]] = self.log.read_views(
                room, take, after, upto, limit
            )
        else:
            taken = _within(
                lambda start, want: self.log.read_views(room, take, start, upto, want),
                lambda entry: (entry[0], entry[1]),
                after,
                limit,
                max_bytes,
            )
        return [(seq, _checked(room, seq, value)) for seq, _, value in taken]

    def history(
        self, room: str, after: int = 0, limit: int = 100, max_bytes: int | None = None
    ) -> list[HistoryEntry]:
        """The audit trail: who changed the room when, and how much (what retention kept).
        `max_bytes` bounds the log records read for it, as for `entries` (counting whole
        records, so pages end where they would), though only their heads are read: the
        updates are never copied out of the store (engine/storage/heads.py)."""
        self.require(room)
        if max_bytes is None:
            heads: Iterable[StoredHead] = self.log.read_heads(room, after, None, limit)
        else:
            heads = _within(
                lambda start, want: self.log.read_heads(room, start, None, want),
                lambda head: (head.seq, head.size),
                after,
                limit,
                max_bytes,
            )
        return [_history_entry(room, stored) for stored in heads]

    def state_at(self, room: str, seq: int) -> bytes:
        """The room as it was right after log entry `seq`, as one Yjs update.

        Raises:
            HistoryFolded: `seq` is before the oldest position the log still holds (and
                no named version's state was kept for it).
            CorruptRecord: the log no longer holds what that state needs.
        """
        updates = self.updates_at(room, seq)
        if not updates:
            return EMPTY_UPDATE
        return updates[0] if len(updates) == 1 else self._rebuilt(updates)

    def updates_at(self, room: str, seq: int) -> list[bytes]:
        """What `state_at` merges, unmerged: the stored updates (a snapshot, then log
        entries) that make the room as it was after `seq`. Merging is CPU work; a
        server hands this list to a worker process rather than merge in its own.

        Raises:
            HistoryFolded, CorruptRecord: as `state_at`.
        """
        return self.updates_and_whole_at(room, seq)[0]

    def updates_and_whole_at(self, room: str, seq: int) -> tuple[list[bytes], bool]:
        """`updates_at`, and whether the first of them is a snapshot stored as whole
        (`Snapshot.whole`: it loads without the scan, as a room's load does).

        Raises:
            HistoryFolded, CorruptRecord: as `state_at`.
        """
        info = self.require(room)
        seq = min(seq, info.last_seq)
        if seq <= 0:
            return [], False
        oldest = self.oldest_position(room)
        if seq < oldest:
            kept = self.log.get_meta(room, kept_key(seq))
            if kept is None:
                raise HistoryFolded(room, seq, oldest)
            folded = Snapshot.from_map(unpack(kept))
            return [folded.update], folded.whole
        try:
            snapshot, tail = self._snapshot_and_records(room, seq)
        except CorruptRecord:
            if self.oldest_position(room) == oldest:
                raise
            return self.updates_and_whole_at(room, seq)  # folded since `oldest` was read
        if snapshot is None:
            return [r.update for r in tail], False
        return [snapshot.update, *(r.update for r in tail)], snapshot.whole

    def pieces_at(self, room: str, seq: int) -> tuple[Snapshot | None, list[UpdateRecord]]:
        """What `state_at(seq)` rebuilds from: the newest readable snapshot at or before
        `seq` and the log records after it up to `seq` (for a caller that rebuilds in
        another process: pycrdt holds the GIL for a whole call)."""
        return self._snapshot_and_records(room, seq)

    def _snapshot_and_records(
        self, room: str, upto: int | None
    ) -> tuple[Snapshot | None, list[UpdateRecord]]:
        """The newest readable snapshot (at or before `upto`) and the log records after it.

        The two are read one after the other, not in one view, so a trim (a compaction with
        `keep_log=False`, a retention fold) can land in between: the log then starts past
        the snapshot just read, or ends before entries that snapshot lacks. A trim moves the
        log's first entry or writes a newer snapshot, in one step, so a read during which
        neither moved is consistent; one during which one did is read again, and only a gap
        seen by a consistent read is a damaged log (CorruptRecord).
        """
        attempt = 1
        while True:
            before = self._trim_mark(room)
            snapshot = self._snapshot_at_or_before(room, upto)
            base = snapshot.seq if snapshot else 0
            try:
                tail = self.records(room, base, upto)
            except CorruptRecord:
                if attempt >= READ_RETRIES or self._trim_mark(room) == before:
                    raise
            else:
                if attempt >= READ_RETRIES or self._trim_mark(room) == before:
                    return snapshot, tail
            attempt += 1

    def _trim_mark(self, room: str) -> tuple[int | None, int]:
        """What every trim of a room's log changes: its first entry or newest snapshot."""
        return self.log.first_seq(room), self.log.newest_snapshot_seq(room)

    def oldest_position(self, room: str) -> int:
        """The earliest seq whose state the store can still rebuild exactly (0: all of
        them): where the log was trimmed, the oldest snapshot the surviving log continues
        (a trim keeps a log value holding several seqs whole, so the log may start a
        little before that snapshot)."""
        first = self.log.first_seq(room)
        if first == 1:
            return 0
        if first is None:
            return self.log.newest_snapshot_seq(room)
        seqs = [seq for seq, _ in self.log.decode_snapshots(room, _no_decode)]
        continued = [seq for seq in seqs if seq >= first - 1]
        return min(continued) if continued else first - 1

    def rebuild_updates(self, updates: list[bytes]) -> bytes:
        """Fold updates into one with the injected rebuild (StorageError without one)."""
        return self._rebuilt(updates)

    def _rebuilt(self, updates: list[bytes]) -> bytes:
        if self._rebuild is None:
            raise StorageError("this DocStore was opened without a rebuild function")
        return self._rebuild(updates)

    def check_records(self, room: str) -> list[str]:
        """Decode every log and snapshot record of a room; a description per bad one."""
        problems = []
        for seq, value in self.log.read(room):
            try:
                _record(room, seq, value)
            except CorruptRecord as exc:
                problems.append(str(exc))
        for seq, value in self.log.snapshots(room):
            try:
                Snapshot.from_map(unpack(value))
            except _READ_ERRORS as exc:
                problems.append(f"room {room!r}: snapshot at seq {seq}: {exc}")
        return problems

    # ------------------------------------------------------------------ compaction

    def snapshot_due(self, room: str) -> bool:
        """Whether the policy asks for a snapshot now (cheap: counters only)."""
        info = self.log.info(room)
        if info is None:
            return False
        mark = self._marks.get(room)
        if mark is None:
            self._snapshot_at_or_before(room, None)
            mark = self._marks.setdefault(room, SnapshotMark())
        return should_compact(
            info.last_seq - mark.seq, info.log_bytes - mark.log_bytes, mark.size, self.policy
        )

    def compact(
        self,
        room: str,
        *,
        state: tuple[int, bytes] | None = None,
        force: bool = False,
        whole: bool = False,
    ) -> Snapshot | None:
        """Write a snapshot if the policy says so (or `force`).

        Args:
            state: (seq, encoded document) the caller holds for exactly log entries
                1..seq (the room actor's live document); without it the snapshot is
                rebuilt from the stored snapshot and log tail.
            whole: the caller knows every struct of `state` integrated (Snapshot.whole).

        The write is a compare-and-set on the newest snapshot: if another compactor wrote
        one meanwhile, its snapshot wins and this returns None. Retention (older
        snapshots, and with `keep_log=False` the covered log) is applied in the same step.
        """
        info = self.require(room)
        expect = self._newest_snapshot_seq(room)
        if not force and not self.snapshot_due(room):
            return None
        if state is None:
            loaded = self.load(room)
            if loaded.last_seq == loaded.snapshot_seq:
                return None
            state = (loaded.last_seq, self._rebuilt(loaded.updates))
            whole = False
            info = self.require(room)
        seq, encoded = state
        if seq <= expect:
            return None
        log_bytes = info.log_bytes  # at most what the snapshot covers: errs towards sooner
        snapshot = Snapshot(seq, self.clock(), encoded, get_state(encoded), log_bytes, whole)
        won = self.log.put_snapshot(
            room,
            seq,
            pack(snapshot.to_map()),
            expect=expect,
            keep=self.retention.keep_snapshots_of(room),
            trim_log=not self.retention.keep_log,
        )
        if not won:
            self._marks.pop(room, None)
            return None
        self._marks[room] = SnapshotMark(seq, len(encoded), log_bytes)
        return snapshot

    def _newest_snapshot_seq(self, room: str) -> int:
        return self.log.newest_snapshot_seq(room)

    # ------------------------------------------------------------------ metadata

    def get_meta(self, room: str, name: str) -> bytes | None:
        return self.log.get_meta(room, name)

    def set_meta(
        self, room: str, name: str, value: bytes | None, *, only_new: bool = False
    ) -> bool:
        return self.log.set_meta(room, name, value, only_new=only_new)

    def scan_meta(self, room: str, prefix: str) -> list[tuple[str, bytes]]:
        return self.log.scan_meta(room, prefix)

    def add_to_meta(self, room: str, name: str, amount: int) -> int:
        return self.log.add_to_meta(room, name, amount)

    def delete_room(self, room: str) -> bool:
        """Remove a room and everything stored for it."""
        self._marks.pop(room, None)
        return self.log.delete_room(room)

    def close(self) -> None:
        self.log.close()
