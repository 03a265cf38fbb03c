"""Scheduled backups from the server itself (`serve --backup-dir DIR --backup-every S
--backup-keep N`).

Every `every` seconds (and once at startup, so a wrong directory shows at once) the
server writes a backup (engine/storage/backup.py) to `DIR/performer-backup-<UTC time>`,
then deletes all but the `keep` newest. The copy runs in a thread: on LMDB it is one read
transaction of the server's own environment, so commits carry on meanwhile; on Redis it
reads room by room. Metrics say when the last one succeeded, its size and how long it
took; a failure is one ERROR line naming the directory and the cause, and the next
attempt comes on schedule. Processes sharing a Redis store take turns: a lease held for
most of an interval lets one of them back up per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from pathlib import Path

from engine.errors import EngineError
from engine.storage.backup import BackupResult, backup_lmdb, backup_redis
from engine.storage.kv_log import KVLogStore
from engine.storage.lmdb_kv import LmdbKV
from server.config import Config
from server.metrics import Metrics
from server.rooms.fanout import Fanout
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)

PREFIX = "performer-backup-"


class ScheduledBackups:
    """The backup loop of one server; `run_once` is what each tick does."""

    def __init__(
        self, config: Config, store: RoomStore, metrics: Metrics, fanout: Fanout | None = None
    ) -> None:
        assert config.backup_dir is not None
        self.directory: Path = config.backup_dir
        self.every = config.backup_every_seconds
        self.keep = config.backup_keep
        self.config = config
        self.store = store
        self.metrics = metrics
        self.fanout = fanout
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            # With Redis, one process of those sharing the store takes each backup.
            if self.fanout is None or await self.fanout.lease("backup", self.every * 0.9):
                await self.run_once()
            await asyncio.sleep(self.every)

    async def run_once(self) -> BackupResult | None:
        """One backup and the pruning after it; None (logged, counted) if it failed."""
        out = self.directory / (PREFIX + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        try:
            result = await asyncio.to_thread(self._backup, out)
            await asyncio.to_thread(self._prune)
        except (EngineError, OSError) as exc:
            self.metrics.backup_failures.inc()
            log.error("backup to %s failed: %s", out, exc)
            return None
        self.metrics.backup_last_success.set(time.time())
        self.metrics.backup_bytes.set(result.bytes)
        self.metrics.backup_seconds.set(result.seconds)
        log.info("backup of %d rooms (%d bytes, %.2f s) written to %s",
                 len(result.rooms), result.bytes, result.seconds, result.path)  # fmt: skip
        return result

    def _backup(self, out: Path) -> BackupResult:
        out = _unique(out)
        if self.config.redis_url:
            return backup_redis(self.config.redis_url, out)
        log_store = self.store.docs.log
        assert isinstance(log_store, KVLogStore) and isinstance(log_store.kv, LmdbKV)
        return backup_lmdb(self.config.data_dir, out, kv=log_store.kv)

    def _prune(self) -> None:
        """Delete all but the `keep` newest backups (names sort by time)."""
        backups = sorted(p for p in self.directory.glob(PREFIX + "*") if p.is_dir())
        for old in backups[: max(0, len(backups) - self.keep)]:
            shutil.rmtree(old, ignore_errors=True)


def _unique(out: Path) -> Path:
    """Two backups within one second (a short interval) get distinct names."""
    candidate, n = out, 1
    while candidate.exists():
        candidate = out.with_name(f"{out.name}-{n}")
        n += 1
    return candidate
