"""One KV per store directory per process, shared by every client that uses it.

LMDB allows one environment per file per process (a second `open` fails with
"environment already open in this process"), so every client on one `store_path` shares
one `LmdbKV`. It is counted by the replicas (server + room) held in it: the last client
to let go closes the environment. A replica's local log has a single writer, so two open
clients may not hold the same replica at once (`ReplicaInUse`). `store_path=None` gives
each client a private `MemoryKV` instead.

The registry is process-wide on purpose: that is the scope of LMDB's own rule.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.client.errors import ReplicaInUse
from engine.storage.kv import KV
from engine.storage.lmdb_kv import LmdbKV
from engine.storage.memory_kv import MemoryKV

log = logging.getLogger(__name__)

StorePath = str | os.PathLike[str] | None


@dataclass
class _Shared:
    kv: LmdbKV
    replicas: set[bytes] = field(default_factory=set)


_lock = threading.Lock()  # clients may open and close stores from several threads
_open: dict[Path, _Shared] = {}


class Lease:
    """One client's hold on a store and on one replica in it.

    Attributes:
        kv: the store; valid until `release()`.
    """

    def __init__(self, kv: KV, release: Callable[[], None]) -> None:
        self.kv = kv
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        """Let go (once; later calls do nothing)."""
        release, self._release = self._release, None
        if release is not None:
            release()


def lease(store_path: StorePath, replica: bytes, name: str) -> Lease:
    """Hold `replica` (named `name` in errors) in the store at `store_path`.

    Raises:
        ReplicaInUse: an open client in this process holds the same replica there.
        StorageError: the store cannot be opened.
    """
    if store_path is None:
        memory = MemoryKV()
        return Lease(memory, memory.close)
    path = Path(store_path)
    path.mkdir(parents=True, exist_ok=True)
    key = path.resolve()
    with _lock:
        shared = _open.get(key)
        if shared is None:
            shared = _open[key] = _Shared(_open_lmdb(key))
        if replica in shared.replicas:
            raise ReplicaInUse(f"{name} is already open in {path} by another client")
        shared.replicas.add(replica)
    return Lease(shared.kv, lambda: _release(key, replica))


def open_store_paths() -> list[Path]:
    """The store directories this process has open now (for diagnostics and tests)."""
    with _lock:
        return sorted(_open)


def _release(key: Path, replica: bytes) -> None:
    with _lock:
        shared = _open[key]
        shared.replicas.discard(replica)
        if shared.replicas:
            return
        del _open[key]
        shared.kv.close()


def _open_lmdb(path: Path) -> LmdbKV:
    kv = LmdbKV(path)
    if kv.scan("rooms", b"", limit=1):
        # Stores written before replicas were keyed by server kept them by room name in
        # the server's layout; nothing here reads that, so say so instead of staying silent.
        log.warning(
            "%s holds client data in an older layout; it is not read (edits made offline "
            "with an older version and never sent stay there unsent)",
            path,
        )
    return kv
