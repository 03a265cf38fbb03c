"""The smallest storage boundary the DocStore needs: a few named, sorted key spaces.

Keys and values are bytes; scans come back in ascending byte order, so a store whose keys
are fixed-width big-endian integers replays in numeric order. `write` is one atomic batch:
either every put and delete happens or none does (and, for durable stores, it is on disk
when `write` returns).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

DATABASES = ("rooms", "meta", "log", "snapshots", "journal")

T = TypeVar("T")
Put = tuple[str, bytes, bytes]
Delete = tuple[str, bytes]


class KV(Protocol):
    """A sorted key-value store with named databases and atomic batches."""

    def get(self, db: str, key: bytes) -> bytes | None:
        """The value at `key`, or None."""
        ...

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
        """Pairs whose key starts with `prefix`, ascending (or descending with `reverse`).

        `start` is inclusive: ascending scans begin at the first key >= start, descending
        scans at the last key <= start. With `keys_only` every value is b"" (nothing is
        read or copied: snapshots of big rooms are tens of megabytes each).
        """
        ...

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
        """`scan`, handing each key and a view of its value to `read` instead of copying
        the value first: the view is the store's own memory (LMDB's map) and is valid only
        during the call, so `read` must copy what it keeps. A big room's snapshot is then
        copied once (decoding it), not twice."""
        ...

    def write(self, puts: Sequence[Put], deletes: Sequence[Delete] = ()) -> None:
        """Apply every put and delete in one atomic, durable transaction."""
        ...

    def close(self) -> None: ...


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key with `prefix` (None if there is none)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
