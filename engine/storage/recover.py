"""Point-in-time recovery: a data directory rebuilt from an archive alone.

`recover(target, out, to_time=T)` rebuilds every room as it was at time T (entries with
ts <= T; rooms created after T, or deleted by T, are left out); `to_seq=(ROOM, N)`
rebuilds ROOM up to seq N (the newest room of that name, even a deleted one) and every
other room whole; with neither, every room the archive holds that was not deleted. Each
room keeps
its seqs, the archived snapshots up to its cut, its named versions up to its cut, and its
creation time, so `?at=` on the recovered store answers as the original did. Delivery
cursors are not archived: hooks and webhooks of a server started on the result deliver
every entry again (at least once, as always).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cbor2
from pycrdt import get_state

from engine.errors import StorageError
from engine.storage.archive import (
    ArchiveTarget,
    Manifest,
    decode_segment,
    generations,
    read_checked,
)
from engine.storage.kv_log import KVLogStore
from engine.storage.lmdb_kv import LmdbKV
from engine.storage.records import Snapshot, UpdateRecord, pack
from engine.storage.room_dump import RoomDump
from engine.storage.tools import LABEL_PREFIX


def recover(
    target: ArchiveTarget,
    out: str | os.PathLike[str],
    *,
    to_time: float | None = None,
    to_seq: tuple[str, int] | None = None,
) -> dict[str, int]:
    """Rebuild a data directory at `out` (new or empty); each room's last seq there."""
    path = Path(out)
    if path.exists() and any(path.iterdir()):
        raise StorageError(f"recovery destination {path} exists and is not empty")
    manifests = _rooms_at(generations(target), to_time, to_seq)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.parent / f".{path.name}.partial"  # renamed into place when whole
    shutil.rmtree(partial, ignore_errors=True)
    store = KVLogStore(LmdbKV(partial))
    recovered: dict[str, int] = {}
    try:
        for manifest in manifests:
            room = manifest.room
            upto = to_seq[1] if to_seq is not None and to_seq[0] == room else None
            dump = room_at(target, manifest, to_time=to_time, upto=upto)
            if dump is not None:
                store.put_room(dump)
                recovered[room] = dump.last_seq
        store.close()
    except BaseException:
        store.close()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if path.exists():
        path.rmdir()
    partial.rename(path)
    return recovered


def _rooms_at(
    manifests: list[Manifest], to_time: float | None, to_seq: tuple[str, int] | None
) -> list[Manifest]:
    """The room each name had at `to_time` (None: now): one created by then and not
    deleted by then. `--to-seq ROOM:N` takes the newest room of that name, deleted or
    not (bringing back a deleted room at a seq)."""
    chosen: dict[str, Manifest] = {}
    for manifest in manifests:  # oldest first: a later room of a name wins
        if to_seq is not None and manifest.room == to_seq[0]:
            chosen[manifest.room] = manifest
        elif to_time is None and manifest.deleted is None:
            chosen[manifest.room] = manifest
        elif (
            to_time is not None
            and manifest.created <= to_time
            and (manifest.deleted is None or manifest.deleted > to_time)
        ):
            chosen[manifest.room] = manifest
    if to_seq is not None and to_seq[0] not in chosen:
        raise StorageError(f"the archive has no room {to_seq[0]!r}")
    return list(chosen.values())


def room_at(
    target: ArchiveTarget, manifest: Manifest, *, to_time: float | None, upto: int | None
) -> RoomDump | None:
    """One room cut at a time or a seq (None: the room did not exist yet at `to_time`)."""
    room = manifest.room
    if to_time is not None and manifest.created > to_time:
        return None
    records = _records(target, manifest)
    snapshots = _snapshots(target, manifest)
    base = _base(records, snapshots)
    kept = [r for r in records if r.seq > base]
    cut = len(kept)
    for i, record in enumerate(kept):
        if (upto is not None and record.seq > upto) or (
            to_time is not None and record.ts > to_time
        ):
            cut = i
            break
    if cut == 0 and base > 0 and cut < len(kept):
        raise StorageError(f"the archive holds room {room!r} only from seq {base} on")
    kept = kept[:cut]
    last = kept[-1].seq if kept else base
    if upto is not None and upto > last:
        raise StorageError(f"the archive of room {room!r} ends at seq {last}, before {upto}")
    start = kept[0].seq - 1 if kept else last
    log = [(r.seq, _packed(r)) for r in kept]
    snaps = [(seq, _snapshot_record(seq, ts, u)) for seq, (ts, u) in snapshots.items()
             if seq <= last and seq >= min(start, last)]  # fmt: skip
    if start > 0 and start not in snapshots:
        raise StorageError(f"the archive of room {room!r} has no snapshot at seq {start}")
    labels = {f"{LABEL_PREFIX}{name}": str(seq).encode()
              for name, seq in manifest.labels.items() if seq <= last}  # fmt: skip
    size = sum(len(value) for _, value in log)
    return RoomDump(room, manifest.created, last, size, log, snaps, labels)


def _records(target: ArchiveTarget, manifest: Manifest) -> list[UpdateRecord]:
    """Every archived entry once (a segment written twice after a crash overlaps)."""
    by_seq: dict[int, UpdateRecord] = {}
    for item in sorted(manifest.segments, key=lambda s: (s["first"], s["last"])):
        for record in decode_segment(read_checked(target, manifest, item)):
            by_seq.setdefault(record.seq, record)
    return [by_seq[seq] for seq in sorted(by_seq)]


def _snapshots(target: ArchiveTarget, manifest: Manifest) -> dict[int, tuple[float, bytes]]:
    out = {}
    for item in manifest.snapshots:
        data = cbor2.loads(read_checked(target, manifest, item))
        out[int(data["seq"])] = (float(data["ts"]), bytes(data["u"]))
    return out


def _base(records: list[UpdateRecord], snapshots: dict[int, tuple[float, bytes]]) -> int:
    """Where the archived log continues from: 0, or the snapshot before its first gap-free
    run (the archive began after the log's start was folded)."""
    expected = 1
    base = 0
    for record in records:
        if record.seq != expected:
            if record.seq - 1 not in snapshots:
                raise StorageError(f"archived log has a gap before seq {record.seq}")
            base = record.seq - 1
        expected = record.seq + 1
    return base


def _packed(record: UpdateRecord) -> bytes:
    return pack(UpdateRecord(0, record.ts, record.user, record.clients, record.update,
                             record.restore_of, record.rejected).to_map())  # fmt: skip


def _snapshot_record(seq: int, ts: float, update: bytes) -> bytes:
    return pack(Snapshot(seq, ts, update, get_state(update)).to_map())
