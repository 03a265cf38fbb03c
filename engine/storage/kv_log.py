"""The log-store contract on a sorted KV: embedded LMDB for real, memory in tests.

Key layout (integers big-endian, so byte order is numeric order)::

    rooms      name (UTF-8)               -> room id (u64)
    meta       room id                    -> RoomMeta (name, created, last_seq, log_bytes)
    meta       room id || 0x00 || name    -> a metadata value (cursors, labels)
    meta       b"next-room-id"            -> u64
    log        room id || seq             -> record, or a run of records ending at seq
    journal    entry number (u64)         -> one recent append of any rooms, whole
    snapshots  room id || seq             -> record

Names map to fixed-width ids, so `doc1` never scans into `doc10` and a name never becomes
a path. One append writes one log value per room (formats in `log_values`).

The journal: a B-tree write costs a page per leaf it touches, and an append of updates
from seven rooms touches seven log leaves, their branches, and the metadata's; at typing
pace, where almost every commit is a handful of rooms, those pages (not the records) were
most of a commit's cost (`python -m benchmarks.engine_storage`, one update in each of 7
rooms per commit: 49-52 us of CPU per record before the journal, 32-37 with it). So an
append of several rooms goes to the journal, one value at its end; every
`journal_entries` appends (or `journal_bytes`), the append that crosses the line moves the
whole journal, and itself, into the per-room log in its transaction, where each room's
leaf is written once for many commits. An append of one room (nothing of it journaled)
costs the same pages either way and goes straight to its log; so does, with the whole
journal, an append too big to gain from it. Room counters of journaled rooms live in
memory meanwhile and are written with the fold. Readers see the log and the journal
together: this process keeps the journal's entries per room in memory, and a store opened
later replays them.

Writes must come from one thread at a time (the server has one writer thread):
the compare-and-set checks read, then write, in the same thread. Reads may come from any
thread: they take the journal's view before the log's, so an append folded in between is
seen twice (and counted once), never missed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from engine.errors import StorageError
from engine.names import validate_room_name
from engine.storage.contract import RoomInfo
from engine.storage.heads import StoredHead, head_of
from engine.storage.kv import KV, Delete, Put
from engine.storage.log_values import (
    U64,
    JournalItem,
    flatten,
    key_seq,
    log_key,
    log_value,
    pack_journal,
    unpack_journal,
    value_entries,
    value_views,
)
from engine.storage.records import RoomMeta, pack, unpack
from engine.storage.room_dump import RoomDump

T = TypeVar("T")
_NEXT_ROOM_ID = b"next-room-id"
_META_SEP = b"\x00"
JOURNAL_ENTRIES = 256
JOURNAL_BYTES = 1 << 20
JOURNAL_APPEND_BYTES = 64 * 1024  # a bigger append fills its own pages: straight to the log
RUN_RECORDS = 256  # records per log value when a whole room is written at once (put_room)


@dataclass(frozen=True)
class _Journal:
    """The journal's content as readers see it: replaced whole, never changed in place."""

    keys: tuple[bytes, ...] = ()
    by_room: dict[int, tuple[JournalItem, ...]] = field(default_factory=dict)
    size: int = 0  # bytes of its stored entries

    def plus(self, key: bytes, items: Sequence[JournalItem], size: int) -> _Journal:
        by_room = dict(self.by_room)
        for item in items:
            by_room[item.room_id] = by_room.get(item.room_id, ()) + (item,)
        return _Journal((*self.keys, key), by_room, self.size + size)

    def items(self) -> list[JournalItem]:
        return [item for items in self.by_room.values() for item in items]


class KVLogStore:
    """`LogStore` on a `KV`; see the module docstring for the key layout."""

    def __init__(
        self, kv: KV, *, journal_entries: int = JOURNAL_ENTRIES, journal_bytes: int = JOURNAL_BYTES
    ) -> None:
        self.kv = kv
        self.journal_entries = journal_entries
        self.journal_bytes = journal_bytes
        self._ids: dict[str, int] = {}
        self._metas: dict[int, RoomMeta] = {}
        self._journal = _Journal()
        self._next_entry = 1
        self._appended = False
        self._replay_journal()

    def _replay_journal(self) -> None:
        """Counters and per-room views of appends not folded yet (from an earlier run)."""
        for key, raw in self.kv.scan("journal", b""):
            items = unpack_journal(key, raw)
            self._journal = self._journal.plus(key, items, len(raw))
            for item in items:
                meta = self._meta(item.room_id)
                if item.last > meta.last_seq:
                    self._metas[item.room_id] = RoomMeta(
                        meta.name, meta.created, item.last, meta.log_bytes + item.size
                    )
            self._next_entry = int(U64.unpack(key)[0]) + 1

    # ------------------------------------------------------------------ rooms

    def _room_id(self, room: str) -> int | None:
        cached = self._ids.get(room)
        if cached is not None:
            return cached
        raw = self.kv.get("rooms", room.encode("utf-8"))
        if raw is None:
            return None
        self._ids[room] = U64.unpack(raw)[0]
        return self._ids[room]

    def _meta(self, room_id: int) -> RoomMeta:
        meta = self._metas.get(room_id)
        if meta is None:
            raw = self.kv.get("meta", U64.pack(room_id))
            if raw is None:
                raise StorageError(f"room id {room_id} has no metadata")
            meta = self._metas[room_id] = RoomMeta.from_map(unpack(raw))
        return meta

    def info(self, room: str) -> RoomInfo | None:
        room_id = self._room_id(room)
        if room_id is None:
            return None
        meta = self._meta(room_id)
        return RoomInfo(meta.name, meta.created, meta.last_seq, meta.log_bytes)

    def rooms(self) -> list[str]:
        return sorted(name.decode("utf-8") for name, _ in self.kv.scan("rooms", b""))

    # ------------------------------------------------------------------ log

    def append(self, entries: Sequence[tuple[str, bytes]], now: float) -> list[int]:
        groups: dict[str, list[bytes]] = {}
        for room, record in entries:
            group = groups.get(room)
            if group is None:
                groups[room] = [record]
            else:
                group.append(record)
        puts: list[Put] = []
        items: list[JournalItem] = []
        metas: dict[int, RoomMeta] = {}
        new_ids: dict[str, int] = {}
        next_seq: dict[str, int] = {}
        next_id: int | None = None
        for room, records in groups.items():
            room_id = self._ids.get(room)
            if room_id is None:
                room_id = self._room_id(validate_room_name(room))
            if room_id is None:
                room_id = next_id = next_id or self._next_room_id()
                next_id += 1
                new_ids[room] = room_id
                meta = RoomMeta(name=room, created=now)
                puts.append(("rooms", room.encode("utf-8"), U64.pack(room_id)))
                puts.append(("meta", U64.pack(room_id), pack(meta.to_map())))
            else:
                meta = self._meta(room_id)
            last = meta.last_seq + len(records)
            size = sum(map(len, records))
            items.append(JournalItem(room_id, last, log_value(records), size))
            metas[room_id] = RoomMeta(meta.name, meta.created, last, meta.log_bytes + size)
            next_seq[room] = meta.last_seq + 1
        if next_id is not None:
            puts.append(("meta", _NEXT_ROOM_ID, U64.pack(next_id)))
        self._write_append(puts, items, metas)
        self._ids.update(new_ids)
        seqs: list[int] = []
        for room, _ in entries:
            seq = next_seq[room]
            seqs.append(seq)
            next_seq[room] = seq + 1
        return seqs

    def _write_append(
        self, puts: list[Put], items: list[JournalItem], metas: dict[int, RoomMeta]
    ) -> None:
        """Journal an append of several rooms; write an append of one room (that has
        nothing in the journal) straight to its log, which costs the same pages; fold the
        journal when it is full, or before an append it would have to precede."""
        self._appended = True
        journal = self._journal
        if len(items) == 1 and items[0].room_id not in journal.by_room:
            self.kv.write(puts + self._fold_puts(items, metas))
            self._metas.update(metas)
            return
        size = sum(len(item.value) for item in items)
        entry = pack_journal(items) if size < JOURNAL_APPEND_BYTES else b""
        if (
            entry
            and len(journal.keys) + 1 < self.journal_entries
            and journal.size + len(entry) < self.journal_bytes
        ):
            key = U64.pack(self._next_entry)
            self.kv.write([*puts, ("journal", key, entry)])
            self._metas.update(metas)
            self._journal = journal.plus(key, items, len(entry))
            self._next_entry += 1
            return
        rooms = {item.room_id for item in journal.items()}
        folded = {room_id: self._metas[room_id] for room_id in rooms} | metas
        self.kv.write(
            puts + self._fold_puts(journal.items() + items, folded),
            [("journal", key) for key in journal.keys],
        )
        self._metas.update(metas)
        self._journal = _Journal()

    @staticmethod
    def _fold_puts(items: list[JournalItem], metas: dict[int, RoomMeta]) -> list[Put]:
        puts: list[Put] = [("log", log_key(i.room_id, i.last), i.value) for i in items]
        return puts + [("meta", U64.pack(i), pack(m.to_map())) for i, m in metas.items()]

    def fold(self) -> None:
        """Move the journal into the per-room log now (before trimming or deleting a
        room's log, and on close)."""
        journal = self._journal
        if not journal.keys:
            return
        metas = {item.room_id: self._metas[item.room_id] for item in journal.items()}
        self.kv.write(
            self._fold_puts(journal.items(), metas), [("journal", key) for key in journal.keys]
        )
        self._journal = _Journal()

    def _next_room_id(self) -> int:
        raw = self.kv.get("meta", _NEXT_ROOM_ID)
        return 1 if raw is None else int(U64.unpack(raw)[0])

    def read(
        self, room: str, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        room_id = self._room_id(room)
        if room_id is None:
            return []
        recent = self._journal.by_room.get(room_id, ())  # before the log: see the docstring
        # Each value holds at least one entry past `after`, so `limit` values are enough.
        pairs = self.kv.scan(
            "log", U64.pack(room_id), start=log_key(room_id, after + 1), limit=limit
        )
        found = flatten(pairs)
        if recent:
            found = _with_journal(list(found), recent)
        out: list[tuple[int, bytes]] = []
        for seq, value in found:
            if seq <= after:
                continue
            if (upto is not None and seq > upto) or (limit is not None and len(out) >= limit):
                break
            out.append((seq, value))
        return out

    def read_heads(
        self, room: str, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> list[StoredHead]:
        """`read`'s entries as heads, each read from a view of the store's memory inside
        the read transaction: no update is copied."""
        taken = self.read_views(room, lambda seq, view: head_of(view), after, upto, limit)
        return [StoredHead(seq, size, head) for seq, size, head in taken]

    def read_views(
        self,
        room: str,
        take: Callable[[int, memoryview], T],
        after: int = 0,
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, int, T]]:
        """`read`, each record handed to `take` as a view of the store's memory (valid
        during the call) and runs walked in place: (seq, record bytes, what `take` gave)."""
        room_id = self._room_id(room)
        if room_id is None:
            return []
        recent = self._journal.by_room.get(room_id, ())  # before the log: see the docstring

        def take_all(last: int, value: memoryview) -> list[tuple[int, int, T]]:
            return [
                (seq, len(view), take(seq, view))
                for seq, view in value_views(last, value)
                if seq > after and (upto is None or seq <= upto)
            ]

        values = self.kv.scan_views(
            "log",
            U64.pack(room_id),
            lambda key, view: take_all(key_seq(key), view),
            start=log_key(room_id, after + 1),
            limit=limit,  # each value holds at least one entry past `after`
        )
        found = [entry for entries in values for entry in entries]
        newest = found[-1][0] if found else 0
        for item in recent:  # as `_with_journal`: an entry folded meanwhile counts once
            if item.last > newest:
                found += take_all(item.last, memoryview(item.value))
        return found[:limit]

    def first_seq(self, room: str) -> int | None:
        room_id = self._room_id(room)
        if room_id is None:
            return None
        recent = self._journal.by_room.get(room_id, ())
        # A view, not a copy: the first value may be a megabyte record or a run of them,
        # and only where it starts is wanted (history and feed pages ask each time).
        first = self.kv.scan_views(
            "log",
            U64.pack(room_id),
            lambda key, view: value_views(key_seq(key), view)[0][0],
            limit=1,
        )
        if first:
            return first[0]
        return value_entries(recent[0].last, recent[0].value)[0][0] if recent else None

    # ------------------------------------------------------------------ snapshots

    def snapshots(
        self, room: str, upto: int | None = None, limit: int | None = None
    ) -> list[tuple[int, bytes]]:
        room_id = self._room_id(room)
        if room_id is None:
            return []
        start = None if upto is None else log_key(room_id, upto)
        pairs = self.kv.scan("snapshots", U64.pack(room_id), start=start, reverse=True, limit=limit)
        return [(key_seq(key), value) for key, value in pairs]

    def newest_snapshot_seq(self, room: str) -> int:
        room_id = self._room_id(room)
        if room_id is None:
            return 0
        newest = self.kv.scan("snapshots", U64.pack(room_id), reverse=True, limit=1, keys_only=True)
        return key_seq(newest[0][0]) if newest else 0

    def decode_snapshots(
        self,
        room: str,
        decode: Callable[[bytes | memoryview], T],
        upto: int | None = None,
        limit: int | None = None,
    ) -> list[tuple[int, T]]:
        room_id = self._room_id(room)
        if room_id is None:
            return []
        start = None if upto is None else log_key(room_id, upto)
        return self.kv.scan_views(
            "snapshots",
            U64.pack(room_id),
            lambda key, view: (key_seq(key), decode(view)),
            start=start,
            reverse=True,
            limit=limit,
        )

    def put_snapshot(
        self, room: str, seq: int, record: bytes, *, expect: int, keep: int, trim_log: bool
    ) -> bool:
        room_id = self._room_id(room)
        if room_id is None:
            raise StorageError(f"room {room!r} does not exist")
        prefix = U64.pack(room_id)
        if self.newest_snapshot_seq(room) != expect:
            return False
        deletes: list[Delete] = []
        if keep:
            older = self.kv.scan(
                "snapshots", prefix, start=log_key(room_id, seq - 1), reverse=True, keys_only=True
            )
            deletes += [("snapshots", key) for key, _ in older[keep - 1 :]]
        if trim_log:
            self.fold()
            trimmed = self.kv.scan(
                "log", prefix, start=log_key(room_id, seq), reverse=True, keys_only=True
            )
            deletes += [("log", key) for key, _ in trimmed]
        self.kv.write([("snapshots", log_key(room_id, seq), record)], deletes)
        return True

    def drop_snapshots_before(self, room: str, seq: int) -> int:
        room_id = self._room_id(room)
        if room_id is None or seq <= 1:
            return 0
        older = self.kv.scan(
            "snapshots", U64.pack(room_id), start=log_key(room_id, seq - 1), reverse=True,
            keys_only=True,
        )  # fmt: skip
        if older:
            self.kv.write([], [("snapshots", key) for key, _ in older])
        return len(older)

    # ------------------------------------------------------------------ metadata

    def _meta_key(self, room: str, name: str) -> bytes:
        room_id = self._room_id(room)
        if room_id is None:
            raise StorageError(f"room {room!r} does not exist")
        return U64.pack(room_id) + _META_SEP + name.encode("utf-8")

    def get_meta(self, room: str, name: str) -> bytes | None:
        if self._room_id(room) is None:
            return None
        return self.kv.get("meta", self._meta_key(room, name))

    def set_meta(
        self, room: str, name: str, value: bytes | None, *, only_new: bool = False
    ) -> bool:
        key = self._meta_key(room, name)
        if only_new and self.kv.get("meta", key) is not None:
            return False
        if value is None:
            self.kv.write([], [("meta", key)])
        else:
            self.kv.write([("meta", key, value)])
        return True

    def scan_meta(self, room: str, prefix: str) -> list[tuple[str, bytes]]:
        if self._room_id(room) is None:
            return []
        base = self._meta_key(room, "")
        pairs = self.kv.scan("meta", base + prefix.encode("utf-8"))
        return [(key[len(base) :].decode("utf-8"), value) for key, value in pairs]

    def add_to_meta(self, room: str, name: str, amount: int) -> int:
        # one process owns an LMDB store and writes on one thread: read-then-write is atomic
        key = self._meta_key(room, name)
        total = int(self.kv.get("meta", key) or b"0") + amount
        self.kv.write([("meta", key, str(total).encode("ascii"))])
        return total

    def delete_room(self, room: str) -> bool:
        room_id = self._room_id(room)
        if room_id is None:
            return False
        self.fold()
        prefix = U64.pack(room_id)
        deletes: list[Delete] = [("rooms", room.encode("utf-8"))]
        for db in ("meta", "log", "snapshots"):
            deletes += [(db, key) for key, _ in self.kv.scan(db, prefix, keys_only=True)]
        self.kv.write([], deletes)
        self._ids.pop(room, None)
        self._metas.pop(room_id, None)
        return True

    def put_room(self, dump: RoomDump) -> None:
        """Write a room another store held, with its seqs, snapshots and metadata, in one
        transaction (backups of Redis, recovery from an archive). The room must be new."""
        room = validate_room_name(dump.name)
        if self._room_id(room) is not None:
            raise StorageError(f"room {room!r} already exists")
        room_id = self._next_room_id()
        prefix = U64.pack(room_id)
        meta = RoomMeta(room, dump.created, dump.last_seq, dump.log_bytes)
        puts: list[Put] = [
            ("rooms", room.encode("utf-8"), prefix),
            ("meta", prefix, pack(meta.to_map())),
            ("meta", _NEXT_ROOM_ID, U64.pack(room_id + 1)),
        ]
        puts += [("log", log_key(room_id, last), log_value(run)) for last, run in _runs(dump.log)]
        puts += [("snapshots", log_key(room_id, seq), value) for seq, value in dump.snapshots]
        puts += [("meta", prefix + _META_SEP + k.encode(), v) for k, v in dump.meta.items()]
        self.kv.write(puts)
        self._ids[room] = room_id
        self._metas[room_id] = meta

    def dump_room(self, room: str) -> RoomDump | None:
        """Everything stored for `room` (None: no such room); consistent when no write
        runs meanwhile (the writer thread's own calls, or a store nobody else writes)."""
        info = self.info(room)
        if info is None:
            return None
        return RoomDump(
            room,
            info.created,
            info.last_seq,
            info.log_bytes,
            self.read(room),
            self.snapshots(room),
            dict(self.scan_meta(room, "")),
        )

    def close(self) -> None:
        if self._appended:
            self.fold()
        self.kv.close()


def _runs(log: list[tuple[int, bytes]]) -> list[tuple[int, list[bytes]]]:
    """Consecutive records grouped into runs of at most RUN_RECORDS, keyed by last seq."""
    runs: list[tuple[int, list[bytes]]] = []
    for seq, record in log:
        if runs and runs[-1][0] == seq - 1 and len(runs[-1][1]) < RUN_RECORDS:
            runs[-1][1].append(record)
            runs[-1] = (seq, runs[-1][1])
        else:
            runs.append((seq, [record]))
    return runs


def _with_journal(
    logged: list[tuple[int, bytes]], recent: tuple[JournalItem, ...]
) -> list[tuple[int, bytes]]:
    """The log's entries and the journal's, by seq; an entry in both (folded while this
    read ran) once."""
    newest = logged[-1][0] if logged else 0
    for item in recent:
        if item.last > newest:
            logged += value_entries(item.last, item.value)  # folds move whole items
    return logged
