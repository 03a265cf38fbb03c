"""History retention in the background (`serve --history-days N` / `--history-bytes N` /
`--history-room PATTERN:WINDOW`).

Every `history_fold_seconds` the folder looks at each room and, where the window asks for
it, folds the entries past its edge (engine/storage/retention.py): the fold is planned
(the log read, the edge state rebuilt) on a reader thread, and written on the writer
thread in a few short transactions, so a room's commits never wait for a rebuild; a big
room's states are built in the compute worker process, as its snapshots are, so the event
loop never waits for them either. Each room's window is its most specific
`--history-room` pattern's, else the server's. With Redis, one process folds each room at
a time (the fan-out's lease, as for deliveries). A fold that fails is logged and retried
on the next round; it never loses an entry (see the engine module for why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from engine.document import rebuild
from engine.storage import Retention
from engine.storage.retention import (
    Deferred,
    FoldInputs,
    HistoryWindow,
    apply_fold,
    fold_may_be_due,
    fold_states,
    plan_from,
    read_fold,
)
from server.config import Config
from server.metrics import Metrics
from server.rooms.fanout import Fanout
from server.rooms.store import RoomStore

log = logging.getLogger(__name__)

LEASE_SECONDS = 60.0


class Windows:
    """Each room's history window: its most specific `--history-room` pattern's, else
    the server's (`--history-days` / `--history-bytes`)."""

    def __init__(self, retention: Retention, min_entries: int) -> None:
        self.retention = retention
        self.min_entries = min_entries

    @classmethod
    def of(cls, config: Config) -> Windows | None:
        """None when no room can have a window (nothing to fold, ever)."""
        if not config.retention.windowed:
            return None
        return cls(config.retention, config.history_fold_min_entries)

    def __call__(self, room: str) -> HistoryWindow | None:
        bounds = self.retention.window_of(room)
        return None if bounds is None else HistoryWindow(*bounds, self.min_entries)


class HistoryFolder:
    """Folds every room's history past its window, round after round."""

    def __init__(
        self, windows: Windows, store: RoomStore, fanout: Fanout, metrics: Metrics,
        every: float,
    ) -> None:  # fmt: skip
        self.windows = windows
        self.store = store
        self.fanout = fanout
        self.metrics = metrics
        self.every = every
        self._task: asyncio.Task[None] | None = None
        self._edge_bytes: dict[str, int] = {}  # room -> a byte window's edge (fold_may_be_due)

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
                await self.fold_round()
            except Exception:
                log.exception("history retention: a round failed; the next one tries again")

    async def fold_round(self) -> int:
        """One look at every room; how many were folded."""
        folded = 0
        for info in await self.store.rooms():
            window = self.windows(info.name)
            if window is None:
                continue
            due = await self.store.read(fold_may_be_due, self.store.docs, info.name, window,
                                        time.time(), self._edge_bytes.get(info.name))  # fmt: skip
            if due and await self.fold(info.name):
                folded += 1
        return folded

    async def fold(self, room: str) -> bool:
        """Fold `room` now if its window asks for it; True if a fold was written."""
        window = self.windows(room)
        if window is None or not await self.fanout.lease(f"fold:{room}", LEASE_SECONDS):
            return False
        docs = self.store.docs
        now = time.time()
        try:
            inputs = await self.store.read(read_fold, docs, room, window, now)
            if isinstance(inputs, Deferred):
                self._edge_bytes[room] = inputs.edge_bytes
            if not isinstance(inputs, FoldInputs):
                return False
            plan = plan_from(inputs, await self._states(inputs), now)
            done = await self.store.write(apply_fold, docs, plan)
        except Exception as exc:
            log.warning("history retention: folding room %r failed: %s", room, exc)
            return False
        if done:
            self._edge_bytes[room] = plan.snapshot.log_bytes
            self.metrics.history_folds.inc()
            self.metrics.history_folded_entries.inc(plan.summary.count)
        return done

    async def _states(self, inputs: FoldInputs) -> dict[int, tuple[bytes, bytes]]:
        """The states the fold keeps, built where the room's snapshots are: a big room's
        in the compute worker (pycrdt holds the GIL for a whole call, so in a thread it
        would stall the event loop, and every room, for as long as it runs)."""
        args = (inputs.base, inputs.tail, inputs.marks, rebuild)
        compute = self.store.compute
        if compute is not None and inputs.stored_bytes >= self.store.big_room_bytes:
            return await compute.run(fold_states, *args)
        return await self.store.read(fold_states, *args)
