"""The embedded default store: LMDB, one file per data directory, fsync on every commit.

LMDB gives readers a consistent snapshot without blocking the single writer, and a commit
is durable when it returns (`sync=True`). The map grows by doubling when a write finds it
full, so `map_size` is a starting point, not a cap.

`writemap` stays off although it makes commits cheaper (p90 0.27 ms vs 4 ms for one
record here): with it, a full disk surfaces as SIGBUS on a page write and kills the
process, where without it the commit fails with an error the server survives.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import lmdb

from engine.errors import StorageError
from engine.storage.kv import DATABASES, Delete, Put, prefix_end

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_MAP_SIZE = 256 * 1024 * 1024
MAX_MAP_SIZE = 1 << 40


class LmdbKV:
    """KV on an LMDB environment with one named database per key space.

    Args:
        path: a directory; created if missing.
        map_size: initial map size in bytes (py-lmdb's own default is only 10 MiB).
        sync: fsync on commit. Only benchmarks that say so turn it off.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, map_size: int = DEFAULT_MAP_SIZE, sync: bool = True
    ) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        existing = self.path / "data.mdb"
        if existing.exists():  # reopen with room to grow, not full at the file's size
            map_size = max(map_size, 2 * existing.stat().st_size)
        try:
            self._env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=len(DATABASES) + 1,
                sync=sync,
                metasync=sync,
                max_readers=256,
                readahead=False,
            )
            self._env.reader_check()  # clear stale readers left by a crashed process
            self._dbs = {name: self._env.open_db(name.encode()) for name in DATABASES}
        except lmdb.Error as exc:
            raise StorageError(f"cannot open LMDB at {path}: {exc}") from exc

    def get(self, db: str, key: bytes) -> bytes | None:
        try:
            with self._env.begin(db=self._dbs[db]) as txn:
                value = txn.get(key)
        except lmdb.Error as exc:
            raise StorageError(f"read failed: {exc}") from exc
        return None if value is None else bytes(value)

    def scan(
        self,
        db: str,
        prefix: bytes,
        *,
        start: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
        keys_only: bool = False,
    ) -> list[tuple[bytes, bytes]]:
        if keys_only:
            return self._scan(db, prefix, start, reverse, limit, _key_only, values=False)
        return self._scan(db, prefix, start, reverse, limit, _copied)

    def scan_views(
        self,
        db: str,
        prefix: bytes,
        read: Callable[[bytes, memoryview], T],
        *,
        start: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[T]:
        return self._scan(db, prefix, start, reverse, limit, read, buffers=True)

    def _scan(
        self,
        db: str,
        prefix: bytes,
        start: bytes | None,
        reverse: bool,
        limit: int | None,
        take: Callable[[bytes, Any], T],
        *,
        values: bool = True,
        buffers: bool = False,
    ) -> list[T]:
        out: list[T] = []
        try:
            # With buffers, values are views of the map, valid until the transaction ends.
            txn: Any = self._env.begin(db=self._dbs[db], buffers=buffers)  # type: ignore[call-overload]
            with txn:
                cursor = txn.cursor()
                if reverse:
                    if not self._position_last_at_or_below(cursor, prefix, start):
                        return out
                    iterator: Iterator[Any] = (
                        cursor.iterprev() if values else cursor.iterprev(values=False)
                    )
                else:
                    if not cursor.set_range(max(prefix, start or b"")):
                        return out
                    iterator = cursor.iternext() if values else cursor.iternext(values=False)
                for item in iterator:
                    key, value = item if values else (item, b"")
                    if key[: len(prefix)] != prefix:
                        break
                    out.append(take(bytes(key), value))
                    if limit is not None and len(out) >= limit:
                        break
        except lmdb.Error as exc:
            raise StorageError(f"scan failed: {exc}") from exc
        return out

    @staticmethod
    def _position_last_at_or_below(cursor: lmdb.Cursor, prefix: bytes, start: bytes | None) -> bool:
        """Put the cursor on the last key <= start (or the last key with `prefix`)."""
        if start is not None and cursor.set_range(start):
            return bool(cursor.key() == start or cursor.prev())
        if start is None:
            end = prefix_end(prefix)
            if end is not None and cursor.set_range(end):
                return bool(cursor.prev())
        return bool(cursor.last())

    def write(self, puts: Sequence[Put], deletes: Sequence[Delete] = ()) -> None:
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    for db, key in deletes:
                        txn.delete(key, db=self._dbs[db])
                    for db, key, value in puts:
                        txn.put(key, value, db=self._dbs[db])
                return
            except lmdb.MapFullError:
                self._grow()
            except lmdb.Error as exc:
                raise StorageError(f"commit failed: {exc}") from exc

    def _grow(self) -> None:
        size = self._env.info()["map_size"] * 2
        if size > MAX_MAP_SIZE:
            raise StorageError("LMDB map is full and at its maximum size")
        log.warning("LMDB map full at %s; growing to %d bytes", self.path, size)
        self._env.set_mapsize(size)

    def stats(self) -> dict[str, int]:
        info = self._env.info()
        return {
            "map_size": info["map_size"],
            "last_pgno": info["last_pgno"],
            "page_size": self._env.stat()["psize"],
        }

    def copy_to(self, path: str | os.PathLike[str]) -> None:
        """A compacted, consistent copy of the whole environment into the empty directory
        `path`: LMDB copies from one read transaction, so writers carry on meanwhile and
        the copy holds exactly what was committed when it began."""
        copy_env(self._env, path)

    def close(self) -> None:
        self._env.close()


def copy_env(env: lmdb.Environment, path: str | os.PathLike[str]) -> None:
    """`env.copy` with compaction; a map the writer grew meanwhile is adopted and the
    copy retried (another process's growth surfaces as MapResizedError)."""
    for _ in range(3):
        try:
            env.copy(str(path), compact=True)
            return
        except lmdb.MapResizedError:
            env.set_mapsize(0)  # adopt the size the writer set
        except lmdb.Error as exc:
            raise StorageError(f"copying LMDB to {path} failed: {exc}") from exc
    raise StorageError(f"copying LMDB to {path} failed: the map kept growing")


def open_readonly(path: str | os.PathLike[str]) -> lmdb.Environment:
    """An existing environment opened to read only, safe beside the server that writes
    it (it never sets the map size, which a writer in another process would notice)."""
    if not (Path(path) / "data.mdb").exists():
        raise StorageError(f"no LMDB data directory at {path}")
    try:
        return lmdb.open(
            str(path), readonly=True, max_dbs=len(DATABASES) + 1, max_readers=256, readahead=False
        )
    except lmdb.Error as exc:
        raise StorageError(f"cannot open LMDB at {path}: {exc}") from exc


def _copied(key: bytes, value: Any) -> tuple[bytes, bytes]:
    return key, bytes(value)


def _key_only(key: bytes, value: Any) -> tuple[bytes, bytes]:
    return key, b""
