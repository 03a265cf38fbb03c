"""Bounded compute for requests (JSON views, restores): nobody's work starves anybody's.

One caller used to be able to fill the one worker with as much work as it liked (even a
read-only token), and that work ran on after the caller had gone. Here each job must be
admitted first, and is refused with `Busy` (503 + Retry-After) when:

  * its caller (a user or token; an open server's anonymous callers are not counted)
    already has `per_caller` jobs queued or running;
  * its room already has `per_room`;
  * `queue` jobs already wait for a worker.

An admitted job waits for a free worker, and is dropped there if its caller disconnects.
A running job whose caller disconnects, or that runs past `budget_seconds`, has its
worker process killed and replaced (pycrdt cannot be interrupted inside a call any
other way). Results keyed by the caller (room, its creation time, seq, types) are kept
in a byte-bounded LRU cache, so the same view asked for twenty times is computed once.

Big rooms' snapshots use their own pool (server/compute.py), never this lane's
workers, so they never wait behind a request's queue. The lane's workers run at a lower
CPU priority (`nice`): a flood of views may slow other views, not the rooms.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from engine.errors import Busy, Unavailable
from server.compute import Compute
from server.config import ComputeLimits

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2  # how often a waiting job looks whether its caller is still there
MAX_RETRY_AFTER = 60


class ResultCache:
    """Byte-bounded LRU of results (bytes) by key."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()

    def get(self, key: Hashable) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Hashable, value: bytes) -> None:
        if len(value) > self.max_bytes // 4:
            return  # one huge result would push out everything else
        old = self._items.pop(key, None)
        self.size += len(value) - (len(old) if old is not None else 0)
        self._items[key] = value
        while self.size > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)

    def forget(self, room: str) -> None:
        """Drop a room's results (it was deleted; a new room of that name differs)."""
        for key in [k for k in self._items if isinstance(k, tuple) and k and k[0] == room]:
            self.size -= len(self._items.pop(key))


class CallerGone(Exception):
    """The caller disconnected; its work was dropped (nobody is left to answer)."""


class ComputeLane:
    """Admission, fair waiting, time budgets and a cache around a few worker processes."""

    def __init__(self, limits: ComputeLimits | None = None) -> None:
        self.limits = limits or ComputeLimits()
        self.cache = ResultCache(self.limits.cache_bytes)
        self._workers = [Compute(nice=self.limits.nice) for _ in range(self.limits.workers)]
        self._idle = list(self._workers)
        self._free = asyncio.Semaphore(self.limits.workers)
        self._callers: dict[str, int] = {}
        self._rooms: dict[str, int] = {}
        self.waiting = 0
        self.running = 0
        self.restarts = 0
        self.jobs = 0  # jobs handed to a worker
        self.refused: dict[str, int] = {"caller": 0, "room": 0, "queue": 0}  # Busy, by limit
        self.timed_out = 0  # jobs stopped past their budget
        self.abandoned = 0  # jobs dropped or stopped because their caller left
        self._recent_seconds = 1.0  # a running estimate of one job's time

    async def run(
        self,
        func: Callable[..., Any],
        *args: Any,
        caller: str | None,
        room: str,
        gone: Callable[[], bool] = lambda: False,
    ) -> Any:
        """`func(*args)` in a worker, if admitted.

        Raises:
            Busy: a limit is reached (nothing was queued).
            Unavailable: the job ran past its budget (its worker was replaced).
            CallerGone: `gone()` turned true first (the work was dropped).
        """
        with self.admit(caller, room):
            return await self.execute(func, *args, gone=gone)

    async def execute(
        self, func: Callable[..., Any], *args: Any, gone: Callable[[], bool] = lambda: False
    ) -> Any:
        """`run` for a job already admitted (see `admit`)."""
        worker = await self._worker(gone)
        try:
            return await self._run_on(worker, func, args, gone)
        finally:
            self._idle.append(worker)
            self._free.release()

    @contextmanager
    def admit(self, caller: str | None, room: str) -> Iterator[None]:
        """Count a job against its caller and room for as long as the block runs, or
        raise Busy: callers admit before reading what the job needs (a room's state at
        a seq is itself work), then `execute` inside."""
        with self.admit_caller(caller), self.admit_room(room):
            yield

    @contextmanager
    def admit_caller(self, caller: str | None) -> Iterator[None]:
        """Count a request against its caller only. A cached view is counted here too:
        it costs no worker, but answering it is event-loop time (auth, the store's
        lookup, sending the body), and one token asking for cached views without pause
        took that time from every room. Its room is not counted: many users reading one
        popular view must not refuse each other."""
        limits = self.limits
        if caller is not None and self._callers.get(caller, 0) >= limits.per_caller:
            raise self._refuse("caller", f"at most {limits.per_caller} views or restores at a "
                               "time per caller")  # fmt: skip
        if caller is not None:
            self._callers[caller] = self._callers.get(caller, 0) + 1
        try:
            yield
        finally:
            if caller is not None:
                _decrement(self._callers, caller)

    @contextmanager
    def admit_room(self, room: str) -> Iterator[None]:
        """Count a job that needs a worker against its room and the queue (see `admit`)."""
        limits = self.limits
        if self._rooms.get(room, 0) >= limits.per_room:
            raise self._refuse("room", f"at most {limits.per_room} views or restores at a "
                               "time per room")  # fmt: skip
        if self._free.locked() and self.waiting >= limits.queue:
            raise self._refuse("queue", "the server's compute queue is full")
        self._rooms[room] = self._rooms.get(room, 0) + 1
        try:
            yield
        finally:
            _decrement(self._rooms, room)

    def _refuse(self, limit: str, reason: str) -> Busy:
        self.refused[limit] += 1
        return Busy(reason, self._retry_after())

    def _retry_after(self) -> int:
        backlog = (self.waiting + self.running) * self._recent_seconds / self.limits.workers
        return max(1, min(MAX_RETRY_AFTER, math.ceil(backlog)))

    async def _worker(self, gone: Callable[[], bool]) -> Compute:
        """A free worker, in arrival order; a caller that leaves meanwhile gives up its place."""
        self.waiting += 1
        try:
            while True:
                try:
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._free.acquire()
                    break
                except TimeoutError:
                    if gone():
                        self.abandoned += 1
                        raise CallerGone() from None
        finally:
            self.waiting -= 1
        return self._idle.pop()

    async def _run_on(
        self,
        worker: Compute,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        gone: Callable[[], bool],
    ) -> Any:
        if not worker.started:
            await worker.run(int)  # a fresh process's start-up is not the job's time
        started = time.monotonic()
        self.jobs += 1
        job = asyncio.ensure_future(worker.run(func, *args))
        self.running += 1
        try:
            while True:
                try:
                    done, _ = await asyncio.wait({job}, timeout=POLL_SECONDS)
                except asyncio.CancelledError:  # the handler was cancelled: caller gone
                    if not job.done():
                        self.abandoned += 1
                        self._restart(worker, "its request was cancelled")
                    raise
                if done:
                    elapsed = time.monotonic() - started
                    self._recent_seconds = 0.8 * self._recent_seconds + 0.2 * elapsed
                    return job.result()
                if gone():
                    self.abandoned += 1
                    self._restart(worker, "its caller left")
                    raise CallerGone()
                if time.monotonic() - started > self.limits.budget_seconds:
                    self.timed_out += 1
                    self._restart(worker, f"it ran past {self.limits.budget_seconds:g} s")
                    raise Unavailable(
                        f"the work took longer than {self.limits.budget_seconds:g} s and was "
                        "stopped"
                    )
        finally:
            self.running -= 1
            if not job.done():
                job.cancel()  # the worker's BrokenProcessPool is expected and not news

    def _restart(self, worker: Compute, why: str) -> None:
        log.warning("compute worker killed and replaced: %s", why)
        self.restarts += 1
        worker.kill()

    def close(self) -> None:
        for worker in self._workers:
            worker.close()


def _decrement(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 1) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)
