"""History retention in the background (`serve --history-days N` / `--history-bytes N`).

Every `history_fold_seconds` the folder looks at each room and, where the window asks for
it, folds the entries past its edge (engine/storage/retention.py): the fold is planned
(the log read, the edge state rebuilt) on a reader thread, and written on the writer
thread in a few short transactions, so a room's commits never wait for a rebuild. With
Redis, one process folds each room at a time (the fan-out's lease, as for deliveries).
A fold that fails is logged and retried on the next round; it never loses an entry (see
the engine module for why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from engine.errors import EngineError
from engine.storage.retention import HistoryWindow, apply_fold, fold_may_be_due, plan_fold
from server.config import Config
from server.metrics import Metrics
from server.rooms.fanout import Fanout
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0


def window_of(config: Config) -> HistoryWindow | None:
    retention = config.retention
    if not retention.windowed:
        return None
    return HistoryWindow(retention.history_seconds, retention.history_bytes,
                         config.history_fold_min_entries)  # fmt: skip


class HistoryFolder:
    """Folds every room's history past the window, round after round."""

    def __init__(
        self, window: HistoryWindow, store: RoomStore, fanout: Fanout, metrics: Metrics,
        every: float,
    ) -> None:  # fmt: skip
        self.window = window
        self.store = store
        self.fanout = fanout
        self.metrics = metrics
        self.every = every
        self._task: asyncio.Task[None] | None = None
        self._edge_bytes: dict[str, int] = {}  # room -> log_bytes at its last fold's edge

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            try:
                for info in await self.store.rooms():
                    due = await self.store.read(fold_may_be_due, self.store.docs, info.name,
                                                self.window, time.time(),
                                                self._edge_bytes.get(info.name))  # fmt: skip
                    if due:
                        await self.fold(info.name)
            except EngineError as exc:
                log.warning("history retention: listing rooms failed: %s", exc)

    async def fold(self, room: str) -> bool:
        """Fold `room` now if the window asks for it; True if a fold was written."""
        if not await self.fanout.lease(f"fold:{room}", LEASE_SECONDS):
            return False
        docs = self.store.docs
        try:
            plan = await self.store.read(plan_fold, docs, room, self.window, time.time())
            if plan is None:
                return False
            done = await self.store.write(apply_fold, docs, plan)
        except EngineError as exc:
            log.warning("history retention: folding room %r failed: %s", room, exc)
            return False
        if done:
            self._edge_bytes[room] = plan.snapshot.log_bytes
            self.metrics.history_folds.inc()
            self.metrics.history_folded_entries.inc(plan.summary.count)
        return done
