"""The continuous archive's format, and where it is written (a small target interface).

An archive is a tree of immutable files plus one manifest per room, so any copy tool
(rsync, `aws s3 sync`, a mounted bucket) can carry it off-site and a copy taken at any
moment is usable up to its manifests::

    ARCHIVE/rooms/<hex of the room name's UTF-8>/
        manifest.json                    replaced atomically after the files it lists exist
        log-<first seq>-<last seq>.cbor  a sealed segment: CBOR array of entries, ascending
        snap-<seq>.cbor                  a snapshot: CBOR map {seq, ts, u}
    ARCHIVE/rooms/<hex>.<creation time in microseconds, 20 digits>/
        the same, for a room created again under a name whose first room was deleted

    entry    = {"seq": int, "ts": float, "user": str|null, "clients": [int], "u": bytes,
                ? "restore_of": int}
    manifest = {"format": "performer-archive", "version": 1, "room": str, "created": float,
                "segments": [{"file", "first", "last", "sha256"}],
                "snapshots": [{"file", "seq", "sha256"}],
                "labels": {name: seq}, ? "deleted": float}

A room deleted in the server keeps its archive: its manifest gets `deleted` (when), so
recovery to a time before that brings it back, and recovery to a later time (or to the
end) leaves it out. A room created again under that name is a new generation, archived
beside the first in a directory of its own (its seqs start again at 1).

Seqs are zero-padded to 20 digits in file names. A segment or snapshot is written (and
made durable) before the manifest names it, and the manifest before the server's cursor
moves on, so a crash at any point leaves at worst a file no manifest names yet (written
again, under the same name, when the entries are shipped again). Entries carry Yjs
updates as the clients sent them, not the store's internal records, so the format does
not change when the store's does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cbor2

from engine.errors import StorageError
from engine.storage.records import UpdateRecord

FORMAT = "performer-archive"
MANIFEST = "manifest.json"
MERGE_COUNT = 64  # small segments that trigger a merge
MERGE_ENTRIES = 4096  # a segment with fewer entries than this counts as small
KEEP_SNAPSHOTS = 3  # per room, besides the base a log starting past seq 1 continues from
DIR_NAME = re.compile(r"([0-9a-f]+)(?:\.[0-9]{20})?")
FILE_NAME = re.compile(r"(log-[0-9]{20}-[0-9]{20}|snap-[0-9]{20})\.cbor")


class ArchiveTarget(Protocol):
    """Where archive files go. Paths are relative, '/'-separated.

    An object store would implement `put` as one PUT per object (immutable names, so no
    overwrite races), `replace` as a PUT of the manifest (atomic per object), `get` as a
    GET, `rooms` as a listing of the `rooms/` prefix with '/' as delimiter, and `delete`
    as a DELETE.
    """

    def put(self, path: str, data: bytes) -> None:
        """Store an immutable file; durable when it returns."""
        ...

    def replace(self, path: str, data: bytes) -> None:
        """Store or atomically replace a file (a manifest); durable when it returns."""
        ...

    def get(self, path: str) -> bytes | None:
        """A file's content, or None if there is none."""
        ...

    def rooms(self) -> list[str]:
        """The room directories present (names as in `room_dir`)."""
        ...

    def delete(self, path: str) -> None:
        """Remove a file no manifest names any more (merged segments); absent is fine."""
        ...


class DirectoryTarget:
    """An archive in a local directory (or anything mounted as one)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def put(self, path: str, data: bytes) -> None:
        self._write(self.root / path, data)

    def replace(self, path: str, data: bytes) -> None:
        self._write(self.root / path, data)

    def get(self, path: str) -> bytes | None:
        try:
            return (self.root / path).read_bytes()
        except FileNotFoundError:
            return None

    def rooms(self) -> list[str]:
        base = self.root / "rooms"
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def delete(self, path: str) -> None:
        (self.root / path).unlink(missing_ok=True)

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        """Write beside, fsync, rename over, fsync the directory: whole or absent."""
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        with open(partial, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def room_dir(room: str) -> str:
    """Where the first room of a name is archived (see `generation_dir` for later ones)."""
    return "rooms/" + room.encode("utf-8").hex()


@dataclass
class Manifest:
    """One room's manifest: what of the room (one generation of a name) the archive holds."""

    room: str
    created: float
    segments: list[dict[str, Any]] = field(default_factory=list)
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    deleted: float | None = None  # when the room was deleted in the server
    where: str = ""  # its directory in the archive ("": room_dir(room)); not stored

    @property
    def dir(self) -> str:
        return self.where or room_dir(self.room)

    @property
    def last_seq(self) -> int:
        return max((s["last"] for s in self.segments), default=0)

    @property
    def newest_snapshot(self) -> int:
        return max((s["seq"] for s in self.snapshots), default=0)

    def encode(self) -> bytes:
        fields = {"format": FORMAT, "version": 1, "room": self.room, "created": self.created,
                  "segments": self.segments, "snapshots": self.snapshots,
                  "labels": self.labels}  # fmt: skip
        if self.deleted is not None:
            fields["deleted"] = self.deleted
        return json.dumps(fields, indent=1).encode()

    @classmethod
    def decode(cls, raw: bytes, where: str = "") -> Manifest:
        data = json.loads(raw)
        if data.get("format") != FORMAT:
            raise StorageError("not a performer archive manifest")
        labels = {str(k): int(v) for k, v in data["labels"].items()}
        deleted = data.get("deleted")
        return cls(str(data["room"]), float(data["created"]), list(data["segments"]),
                   list(data["snapshots"]), labels,
                   None if deleted is None else float(deleted), where)  # fmt: skip


def read_manifest(target: ArchiveTarget, room: str) -> Manifest | None:
    """The manifest of the first room archived under the name."""
    return manifest_at(target, room_dir(room))


def manifest_at(target: ArchiveTarget, where: str) -> Manifest | None:
    raw = target.get(f"{where}/{MANIFEST}")
    return None if raw is None else Manifest.decode(raw, where)


def write_manifest(target: ArchiveTarget, manifest: Manifest) -> None:
    target.replace(f"{manifest.dir}/{MANIFEST}", manifest.encode())


def generation_dir(target: ArchiveTarget, room: str, created: float) -> str:
    """Where the room of this name created at `created` is archived: the name's first
    directory, unless another room of the name (since deleted) holds it already."""
    first = read_manifest(target, room)
    if first is None or first.created == created:
        return room_dir(room)
    return f"{room_dir(room)}.{round(created * 1_000_000):020d}"


def generations(target: ArchiveTarget, room: str | None = None) -> list[Manifest]:
    """Every manifest in the archive (of one name, if given), oldest room first."""
    prefix = None if room is None else room_dir(room)[len("rooms/") :]
    found = []
    for name in target.rooms():
        shape = DIR_NAME.fullmatch(name)
        if shape is None or (prefix is not None and shape.group(1) != prefix):
            continue  # not a room directory (or another name's)
        manifest = manifest_at(target, f"rooms/{name}")
        if manifest is None:
            continue
        if room_dir(manifest.room) != f"rooms/{shape.group(1)}":
            raise StorageError(f"archive directory {name} holds a manifest of {manifest.room!r}")
        found.append(manifest)
    return sorted(found, key=lambda m: (m.room, m.created))


def mark_deleted(target: ArchiveTarget, room: str, at: float) -> list[Manifest]:
    """Record that the room(s) of this name created before `at` were deleted by `at`
    (those not marked yet); the manifests marked."""
    marked = []
    for manifest in generations(target, room):
        if manifest.deleted is None and manifest.created < at:
            manifest.deleted = at
            write_manifest(target, manifest)
            marked.append(manifest)
    return marked


def encode_segment(records: list[UpdateRecord]) -> bytes:
    entries = []
    for r in records:
        entry: dict[str, Any] = {"seq": r.seq, "ts": r.ts, "user": r.user,
                                 "clients": list(r.clients), "u": r.update}  # fmt: skip
        if r.restore_of is not None:
            entry["restore_of"] = r.restore_of
        if r.rejected is not None:
            entry["rejected"] = r.rejected
        entries.append(entry)
    return bytes(cbor2.dumps(entries))


def decode_segment(data: bytes) -> list[UpdateRecord]:
    try:
        return [
            UpdateRecord(
                int(e["seq"]),
                float(e["ts"]),
                e["user"],
                tuple(e["clients"]),
                bytes(e["u"]),
                e.get("restore_of"),
                e.get("rejected"),
            )  # fmt: skip
            for e in cbor2.loads(data)
        ]
    except (cbor2.CBORDecodeError, KeyError, TypeError, ValueError) as exc:
        raise StorageError(f"unreadable archive segment: {exc}") from exc


def add_segment(target: ArchiveTarget, manifest: Manifest, records: list[UpdateRecord]) -> None:
    """Write a sealed segment and list it in the manifest (not yet written back)."""
    first, last = records[0].seq, records[-1].seq
    name = f"log-{first:020d}-{last:020d}.cbor"
    data = encode_segment(records)
    target.put(f"{manifest.dir}/{name}", data)
    manifest.segments.append({"file": name, "first": first, "last": last,
                              "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip


def merge_small_segments(target: ArchiveTarget, manifest: Manifest) -> list[str]:
    """Once MERGE_COUNT segments below MERGE_ENTRIES entries pile up, write them as one
    segment in the manifest (not yet written back) and return the files it no longer
    names, to delete after the manifest is written. A busy room ships a segment every
    half second; without this its manifest would grow by one entry each time, forever."""
    segments = sorted(manifest.segments, key=lambda s: (s["first"], s["last"]))
    big = [i for i, s in enumerate(segments) if s["last"] - s["first"] + 1 >= MERGE_ENTRIES]
    small = segments[big[-1] + 1 :] if big else segments  # the run after the last big one
    if len(small) < MERGE_COUNT:
        return []
    by_seq: dict[int, UpdateRecord] = {}
    for item in small:
        for record in decode_segment(read_checked(target, manifest, item)):
            by_seq.setdefault(record.seq, record)
    names = {s["file"] for s in small}
    manifest.segments = [s for s in segments if s["file"] not in names]
    add_segment(target, manifest, [by_seq[seq] for seq in sorted(by_seq)])
    return sorted(names - {manifest.segments[-1]["file"]})


def prune_snapshots(manifest: Manifest, keep: int = KEEP_SNAPSHOTS) -> list[str]:
    """Take all but the newest `keep` snapshots out of the manifest (not yet written back);
    the files to delete once it is. Recovery replays the archived log from wherever it
    starts, so a snapshot only saves replay time, except where the archived log starts
    past seq 1 (the archive began after a fold): a snapshot no segment covers is the base
    the log after it continues from, and stays. One room's snapshots are whole documents:
    with every one kept, an archive would grow by one per compaction, as long as it runs."""
    covered = [(s["first"], s["last"]) for s in manifest.segments]
    bases = [s for s in manifest.snapshots if not any(a <= s["seq"] <= b for a, b in covered)]
    newest = sorted(manifest.snapshots, key=lambda s: s["seq"])[-keep:] if keep else []
    wanted = {s["file"] for s in (*bases, *newest)}
    dropped = [s["file"] for s in manifest.snapshots if s["file"] not in wanted]
    manifest.snapshots = [s for s in manifest.snapshots if s["file"] in wanted]
    return dropped


def add_snapshot(
    target: ArchiveTarget, manifest: Manifest, seq: int, ts: float, update: bytes
) -> None:
    name = f"snap-{seq:020d}.cbor"
    data = bytes(cbor2.dumps({"seq": seq, "ts": ts, "u": update}))
    target.put(f"{manifest.dir}/{name}", data)
    manifest.snapshots.append({"file": name, "seq": seq,
                               "sha256": hashlib.sha256(data).hexdigest()})  # fmt: skip


def read_checked(target: ArchiveTarget, manifest: Manifest, item: dict[str, Any]) -> bytes:
    """A listed file's bytes, checked against the manifest's digest (a manifest can only
    name files of the archive's own shapes, never a path elsewhere)."""
    room = manifest.room
    if not isinstance(item.get("file"), str) or not FILE_NAME.fullmatch(item["file"]):
        raise StorageError(f"archive of room {room!r}: manifest names a bad file {item!r}")
    data = target.get(f"{manifest.dir}/{item['file']}")
    if data is None:
        raise StorageError(f"archive of room {room!r}: {item['file']} is missing")
    if hashlib.sha256(data).hexdigest() != item["sha256"]:
        raise StorageError(f"archive of room {room!r}: {item['file']} fails its checksum")
    return data
