"""Fixtures of the engine tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.storage import KVLogStore, LmdbKV, LogStore, MemoryKV
from engine.storage.redis_log import RedisLogStore


@pytest.fixture(params=["memory", "lmdb", "redis"])
def every_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    """A fresh log store of each kind: in memory, LMDB on disk, a real redis-server."""
    store: LogStore
    if request.param == "memory":
        store = KVLogStore(MemoryKV())
    elif request.param == "lmdb":
        store = KVLogStore(LmdbKV(tmp_path / "kv"))
    else:
        store = RedisLogStore(request.getfixturevalue("redis_server").url)
    yield store
    store.close()
