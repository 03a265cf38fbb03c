"""CPU-heavy pure functions (a restore diff, a JSON view) run in a worker process.

pycrdt holds Python's global lock for the whole of a library call, so the same work in a
thread would still stall the event loop, and every room with it, for as long as it runs
(seconds for a 10 MB room). The functions take and return bytes and plain values, so a
process costs only the copying. The pool starts on first use, with `spawn`: forking a
process that holds LMDB handles and threads is not safe.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
PARENT_CHECK_SECONDS = 1.0


def start_worker(parent: int, nice: int = 0) -> None:
    """A worker's start: lower its CPU priority by `nice` (request work such as JSON
    views and restores must not take the cores from the rooms' event loop; on a small
    machine one busy worker is half of it), and watch the parent."""
    if nice:
        os.nice(nice)
    watch_parent(parent)


def watch_parent(parent: int) -> None:
    """Exit when the server is gone: a worker of a killed server (kill -9, out of memory)
    is never told to stop by its pool and would sit there holding its memory."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


class Compute:
    def __init__(self, workers: int = 1, *, nice: int = 0) -> None:
        self.workers = workers
        self.nice = nice
        self._pool: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        """Whether a worker process is up (the first call, or the first after a kill,
        starts one: a second or more of imports)."""
        return self._pool is not None

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Raises what `func` raised; a worker that died (killed, out of memory) raises
        BrokenProcessPool for the calls it had, and the next call gets a fresh pool."""
        pool = self._pool
        if pool is None:
            context = multiprocessing.get_context("spawn")
            pool = self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=start_worker,
                initargs=(os.getpid(), self.nice),
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, func, *args)
        except BrokenProcessPool:
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise

    def kill(self) -> None:
        """Stop the work in hand now: kill the worker process (its calls fail with
        BrokenProcessPool); the next call starts a fresh one. pycrdt cannot be
        interrupted inside a call, so this is how a job past its time budget ends."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes: dict[int, Any] = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
