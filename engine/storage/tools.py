"""Whole-store operations behind `performer verify | export | import | compact`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cbor2
from pycrdt import Doc

from engine.errors import EngineError, StorageError
from engine.storage.docstore import Append, DocStore
from engine.storage.records import UpdateRecord, pack, unpack

IMPORT_CHUNK = 1000


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
    rebuild every room twice, from its snapshot + tail and from the full log, and check
    both give the same document."""
    report = VerifyReport()
    for meta in store.rooms():
        report.rooms += 1
        room = meta.name
        try:
            report.problems += store.check_records(room)
            loaded = store.load(room)
            report.records += len(loaded.updates)
            from_snapshot = doc_from(loaded.updates)
            if meta.snapshot_seq and store.retention.keep_log:
                replay = doc_from([r.update for r in store.log_records(room)])
                if not (contains(from_snapshot, replay) and contains(replay, from_snapshot)):
                    report.problems.append(
                        f"room {room!r}: snapshot + tail differs from full log replay"
                    )
            if loaded.last_seq != meta.last_seq:
                report.problems.append(
                    f"room {room!r}: log ends at {loaded.last_seq}, metadata says {meta.last_seq}"
                )
        except (EngineError, ValueError) as exc:
            report.problems.append(f"room {room!r}: {exc}")
    return report


def export_room(store: DocStore, room: str) -> bytes:
    """A self-contained, checksummed file with the room's state and its whole log."""
    meta = store.meta(room)
    if meta is None:
        raise StorageError(f"room {room!r} does not exist")
    loaded = store.load(room)
    base = loaded.updates[0] if loaded.snapshot_seq else None
    log = store.log_records(room, after=0 if store.retention.keep_log else loaded.snapshot_seq)
    return export_file(room, meta.created, base, log)


def export_file(room: str, created: float, base: bytes | None, log: list[UpdateRecord]) -> bytes:
    """The export format: the log's entries, led by the snapshot when the log was trimmed."""
    entries = [{"ts": r.ts, "user": r.user, "u": r.update} for r in log]
    if base is not None and (not log or log[0].seq > 1):
        entries.insert(0, {"ts": created, "user": None, "u": base})
    return pack({"kind": "performer-room", "room": room, "entries": entries})


def read_export(data: bytes, room: str | None = None) -> tuple[str, list[Append]]:
    """The room name and the appends an export file holds."""
    try:
        fields = unpack(data)
    except cbor2.CBORDecodeError as exc:
        raise StorageError(f"not an export file: {exc}") from exc
    if fields.get("kind") != "performer-room":
        raise StorageError("not a performer room export")
    name = room or str(fields["room"])
    return name, [Append(name, bytes(e["u"]), e.get("user")) for e in fields["entries"]]


def import_room(store: DocStore, data: bytes, room: str | None = None) -> tuple[str, int]:
    """Append an exported room's log to `store` (under `room` or its own name).

    Importing the same file twice is harmless: Yjs updates are idempotent.
    """
    name, appends = read_export(data, room)
    for start in range(0, len(appends), IMPORT_CHUNK):
        store.append_many(appends[start : start + IMPORT_CHUNK])
    return name, len(appends)
