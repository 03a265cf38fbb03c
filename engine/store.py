"""Open a DocStore on either backend, wired with the document code storage must not import."""

from __future__ import annotations

import os

from engine.document import rebuild
from engine.storage import CompactionPolicy, DocStore, KVLogStore, LmdbKV, LogStore, Retention
from engine.storage.lmdb_kv import DEFAULT_MAP_SIZE


def open_log(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    redis_url: str | None = None,
    map_size: int = DEFAULT_MAP_SIZE,
    fsync: bool = True,
    node: bytes | None = None,
) -> LogStore:
    """Embedded LMDB in `data_dir`, or Redis at `redis_url` (several processes)."""
    if redis_url:
        from engine.storage.redis_log import RedisLogStore

        return RedisLogStore(redis_url, node)
    if data_dir is None:
        raise ValueError("open_log needs data_dir or redis_url")
    return KVLogStore(LmdbKV(data_dir, map_size=map_size, sync=fsync))


def open_store(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    redis_url: str | None = None,
    policy: CompactionPolicy | None = None,
    retention: Retention | None = None,
    map_size: int = DEFAULT_MAP_SIZE,
    fsync: bool = True,
    node: bytes | None = None,
) -> DocStore:
    """A DocStore that can rebuild past states (history, time travel, offline compaction).

    Example::

        store = open_store(data_dir="./data")
        print(store.history("lobby"))
    """
    log = open_log(
        data_dir=data_dir, redis_url=redis_url, map_size=map_size, fsync=fsync, node=node
    )
    return DocStore(log, policy=policy, retention=retention, rebuild=rebuild)
