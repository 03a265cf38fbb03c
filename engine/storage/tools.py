"""Whole-store operations behind `performer verify | export | import | compact | migrate`,
written once on the DocStore, so they work the same on LMDB and on Redis."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import cbor2
from pycrdt import Doc

from engine.errors import EngineError, StorageError
from engine.storage.docstore import Append, DocStore
from engine.storage.records import UpdateRecord, pack, unpack

IMPORT_CHUNK = 1000
MIGRATED_MARK = "migrated-from"  # metadata in the target: how far a migration copied
LABEL_PREFIX = "label:"


@dataclass
class VerifyReport:
    rooms: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def doc_from(updates: list[bytes]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def contains(doc: Doc[Any], other: Doc[Any]) -> bool:
    """True when applying `other`'s whole state to `doc` changes nothing."""
    changed: list[bool] = []
    subscription = doc.observe(lambda _event: changed.append(True))
    doc.apply_update(other.get_update())
    doc.unobserve(subscription)
    return not changed


def same_document(first: list[bytes], second: list[bytes]) -> bool:
    """Whether two lists of updates build the same document (each contains the other)."""
    a, b = doc_from(first), doc_from(second)
    return contains(a, b) and contains(b, a)


def verify(store: DocStore) -> VerifyReport:
    """Decode every record (log and snapshots, including ones loading would skip) and
    rebuild every room twice, from its snapshot + tail and from the full log (where the
    log is whole), and check both give the same document."""
    report = VerifyReport()
    for info in store.rooms():
        report.rooms += 1
        room = info.name
        try:
            report.problems += store.check_records(room)
            loaded = store.load(room)
            report.records += len(loaded.updates)
            if loaded.snapshot_seq and store.log.first_seq(room) == 1:
                replay = [r.update for r in store.records(room)]
                if not same_document(loaded.updates, replay):
                    report.problems.append(
                        f"room {room!r}: snapshot + tail differs from full log replay"
                    )
            if loaded.last_seq != info.last_seq:
                report.problems.append(
                    f"room {room!r}: log ends at {loaded.last_seq}, counter says {info.last_seq}"
                )
        except (EngineError, ValueError) as exc:
            report.problems.append(f"room {room!r}: {exc}")
    return report


def compact_all(store: DocStore, room: str | None = None) -> list[tuple[str, bool]]:
    """Snapshot now (rebuilt from the store) the given room or every room."""
    names = [room] if room else [info.name for info in store.rooms()]
    return [(name, store.compact(name, force=True) is not None) for name in names]


def _whole_log(store: DocStore, room: str) -> tuple[bytes | None, list[UpdateRecord]]:
    """What an export holds: the snapshot the surviving log starts from (if trimmed)
    and every surviving log record."""
    loaded = store.load(room)
    first = store.log.first_seq(room)
    if first == 1:
        return None, store.records(room)
    base = loaded.updates[0] if loaded.snapshot_seq else None
    return base, store.records(room, loaded.snapshot_seq)


def export_room(store: DocStore, room: str) -> bytes:
    """A self-contained, checksummed file with the room's state, log and version labels."""
    info = store.require(room)
    base, records = _whole_log(store, room)
    entries = [{"ts": r.ts, "user": r.user, "u": r.update} for r in records]
    if base is not None:
        entries.insert(0, {"ts": info.created, "user": None, "u": base})
    labels = {name: value for name, value in store.scan_meta(room, LABEL_PREFIX)}
    return pack({"kind": "performer-room", "room": room, "entries": entries, "meta": labels})


def read_export(data: bytes, room: str | None = None) -> tuple[str, list[Append], dict[str, bytes]]:
    """The room name, the appends and the metadata an export file holds."""
    try:
        fields = unpack(data)
    except cbor2.CBORDecodeError as exc:
        raise StorageError(f"not an export file: {exc}") from exc
    if fields.get("kind") != "performer-room":
        raise StorageError("not a performer room export")
    name = room or str(fields["room"])
    appends = [Append(name, bytes(e["u"]), e.get("user")) for e in fields["entries"]]
    return name, appends, {str(k): bytes(v) for k, v in fields.get("meta", {}).items()}


def _chunks(appends: list[Append]) -> Iterator[list[Append]]:
    for start in range(0, len(appends), IMPORT_CHUNK):
        yield appends[start : start + IMPORT_CHUNK]


def import_room(store: DocStore, data: bytes, room: str | None = None) -> tuple[str, int]:
    """Append an exported room's log to `store` (under `room` or its own name).

    Importing the same file twice is harmless: Yjs updates are idempotent. Labels keep
    their names but not their seqs' meaning if the room already had a log (documented).
    """
    name, appends, meta = read_export(data, room)
    for chunk in _chunks(appends):
        store.append_many(chunk)
    for key, value in meta.items():
        if appends:
            store.set_meta(name, key, value, only_new=True)
    return name, len(appends)


def migrate(source: DocStore, target: DocStore) -> list[tuple[str, int]]:
    """Copy every room of `source` into `target`; re-running copies only what is new.

    Each room's copy position is kept in the target's metadata, so an interrupted or
    repeated migration resumes; the updates keep their users (new seqs and times).
    """
    return [(info.name, _migrate_room(source, target, info.name)) for info in source.rooms()]


def _migrate_room(source: DocStore, target: DocStore, room: str) -> int:
    done_raw = target.get_meta(room, MIGRATED_MARK) if target.info(room) else None
    done = int(done_raw or b"0")
    if done == 0:
        base, records = _whole_log(source, room)
    else:
        base, records = None, source.records(room, done)
    appends = [Append(room, base)] if base is not None else []
    appends += [Append(room, r.update, r.user, r.clients) for r in records]
    for chunk in _chunks(appends):
        target.append_many(chunk)
    last = source.require(room).last_seq
    if target.info(room) is not None:
        target.set_meta(room, MIGRATED_MARK, str(last).encode())
    return len(appends)
