"""Online backups: a consistent copy of a live store, as an LMDB data directory.

Whatever the source, a backup is a directory that `performer serve --data OUT` serves and
`performer verify --data OUT` checks, plus `backup.json`: when it was taken, from what,
and for each room the last seq it covers. It is built beside its destination and renamed
into place when complete, so a directory with that name is always a whole backup.

- LMDB: LMDB's own copy (`mdb_env_copy2` with compaction) from one read transaction, so
  it holds exactly what was committed when the copy began, while the server keeps
  writing. The copy carries the journal (kv_log) as it was; opening the copy replays it,
  and the backup folds it into the per-room log before it is renamed into place.
- Redis: each room read in one MULTI/EXEC (`RedisLogStore.dump_room`): consistent per
  room, at the stream position recorded in the manifest; rooms are read one after another.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import StorageError
from engine.storage.kv_log import KVLogStore
from engine.storage.lmdb_kv import LmdbKV, copy_env, open_readonly

MANIFEST = "backup.json"
FORMAT = "performer-backup"


@dataclass(frozen=True, slots=True)
class BackupResult:
    """A finished backup: where, what it covers, what it cost."""

    path: Path
    rooms: dict[str, int]  # room -> the last seq the backup holds
    bytes: int
    seconds: float
    taken_at: float  # when the copy began (epoch seconds)


def backup_lmdb(
    data_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, kv: LmdbKV | None = None
) -> BackupResult:
    """Back up the LMDB store at `data_dir` (or the open `kv`, inside the server) to `out`.

    Raises:
        StorageError: `out` is not empty, the source is not a store, or the copy failed.
    """

    def copy(partial: Path) -> None:
        if kv is not None:
            kv.copy_to(partial)
            return
        env = open_readonly(data_dir)
        try:
            copy_env(env, partial)
        finally:
            env.close()

    return _build(out, f"lmdb:{Path(data_dir).resolve()}", copy)


def backup_redis(url: str, out: str | os.PathLike[str]) -> BackupResult:
    """Back up every room of the Redis store at `url` into an LMDB data directory."""
    from engine.storage.redis_log import RedisLogStore

    def copy(partial: Path) -> None:
        source = RedisLogStore(url)
        target = KVLogStore(LmdbKV(partial))
        try:
            for room in source.rooms():
                dump = source.dump_room(room)
                if dump is not None:  # deleted since the listing
                    target.put_room(dump)
        finally:
            target.close()
            source.close()

    return _build(out, f"redis:{_without_password(url)}", copy)


def _build(out: str | os.PathLike[str], source: str, copy: Callable[[Path], None]) -> BackupResult:
    """Copy into a sibling directory, fold and describe it there, then rename it to `out`."""
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StorageError(f"backup destination {target} exists and is not empty")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{target.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    started, taken_at = time.monotonic(), time.time()
    try:
        copy(partial)
        rooms = _settle(partial)
        manifest = {"format": FORMAT, "version": 1, "source": source, "taken_at": taken_at,
                    "rooms": rooms}  # fmt: skip
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        _fsync_dir_files(partial)
        if target.exists():
            target.rmdir()
        partial.rename(target)
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in target.iterdir() if f.is_file())
    return BackupResult(target, rooms, size, time.monotonic() - started, taken_at)


def _settle(path: Path) -> dict[str, int]:
    """Fold the copied journal into the per-room log; each room's last seq."""
    store = KVLogStore(LmdbKV(path))
    try:
        store.fold()
        rooms = {}
        for room in store.rooms():
            info = store.info(room)
            if info is not None:
                rooms[room] = info.last_seq
        return rooms
    finally:
        store.close()


def read_manifest(path: str | os.PathLike[str]) -> dict[str, object]:
    """The manifest of the backup at `path`."""
    try:
        data = json.loads((Path(path) / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise StorageError(f"{path} is not a backup: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StorageError(f"{path} is not a backup")
    return data


def _without_password(url: str) -> str:
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1) if "://" in url else ("", url)
    return f"{scheme}://{rest.rsplit('@', 1)[1]}" if scheme else rest.rsplit("@", 1)[1]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir_files(path: Path) -> None:
    for item in path.iterdir():
        if item.is_file():
            _fsync(item)
    _fsync(path)
