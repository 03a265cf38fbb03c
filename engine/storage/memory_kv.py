"""An in-memory KV for tests of the layers above storage (the actor, the DocStore)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import TypeVar

from engine.storage.kv import DATABASES, Delete, Put

T = TypeVar("T")


class MemoryKV:
    """Sorted dicts in memory; `write` is atomic because it validates before mutating."""

    def __init__(self) -> None:
        self._data: dict[str, dict[bytes, bytes]] = {name: {} for name in DATABASES}
        self._keys: dict[str, list[bytes]] = {name: [] for name in DATABASES}
        self.closed = False

    def get(self, db: str, key: bytes) -> bytes | None:
        return self._data[db].get(key)

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
        keys = self._keys[db]
        data = self._data[db]
        out: list[tuple[bytes, bytes]] = []
        if reverse:
            index = bisect.bisect_right(keys, start) - 1 if start is not None else len(keys) - 1
            while index >= 0 and (limit is None or len(out) < limit):
                key = keys[index]
                if key.startswith(prefix):
                    out.append((key, b"" if keys_only else data[key]))
                elif key < prefix:
                    break
                index -= 1
            return out
        index = bisect.bisect_left(keys, max(prefix, start or b""))
        while index < len(keys) and (limit is None or len(out) < limit):
            key = keys[index]
            if not key.startswith(prefix):
                break
            out.append((key, b"" if keys_only else data[key]))
            index += 1
        return out

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
        pairs = self.scan(db, prefix, start=start, reverse=reverse, limit=limit)
        return [read(key, memoryview(value)) for key, value in pairs]

    def write(self, puts: Sequence[Put], deletes: Sequence[Delete] = ()) -> None:
        unknown = {db for db, *_ in (*puts, *deletes)} - self._data.keys()
        if unknown:
            raise KeyError(f"unknown databases {sorted(unknown)}")
        for db, key in deletes:
            if self._data[db].pop(key, None) is not None:
                keys = self._keys[db]
                del keys[bisect.bisect_left(keys, key)]
        for db, key, value in puts:
            if key not in self._data[db]:
                bisect.insort(self._keys[db], key)
            self._data[db][key] = value

    def close(self) -> None:
        self.closed = True
