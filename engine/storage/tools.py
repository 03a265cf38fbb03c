"""Whole-store operations behind `performer verify | export | import | compact`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cbor2
from pycrdt import Doc

from engine.errors import EngineError, StorageError
from engine.storage.docstore import Append, DocStore
from engine.storage.records import pack, unpack

IMPORT_CHUNK = 1000


@dataclass
class VerifyReport:
    rooms: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _doc_from(updates: list[bytes]) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def _contains(doc: Doc[Any], other: Doc[Any]) -> bool:
    """True when applying `other`'s whole state to `doc` changes nothing."""
    changed: list[bool] = []
    subscription = doc.observe(lambda _event: changed.append(True))
    doc.apply_update(other.get_update())
    doc.unobserve(subscription)
    return not changed


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
            from_snapshot = _doc_from(loaded.updates)
            if meta.snapshot_seq and store.retention.keep_log:
                replay = _doc_from([r.update for r in store.log_records(room)])
                if not (_contains(from_snapshot, replay) and _contains(replay, from_snapshot)):
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
    entries = [{"ts": r.ts, "user": r.user, "u": r.update} for r in log]
    if log and log[0].seq > 1 and base is not None:
        entries.insert(0, {"ts": meta.created, "user": None, "u": base})
    return pack({"kind": "performer-room", "room": room, "entries": entries})


def import_room(store: DocStore, data: bytes, room: str | None = None) -> tuple[str, int]:
    """Append an exported room's log to `store` (under `room` or its own name).

    Importing the same file twice is harmless: Yjs updates are idempotent.
    """
    try:
        fields = unpack(data)
    except cbor2.CBORDecodeError as exc:
        raise StorageError(f"not an export file: {exc}") from exc
    if fields.get("kind") != "performer-room":
        raise StorageError("not a performer room export")
    name = room or str(fields["room"])
    entries = fields["entries"]
    for start in range(0, len(entries), IMPORT_CHUNK):
        chunk = entries[start : start + IMPORT_CHUNK]
        store.append_many([Append(name, bytes(e["u"]), e.get("user")) for e in chunk])
    return name, len(entries)
