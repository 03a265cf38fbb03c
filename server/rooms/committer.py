"""Group commit: every update that arrives while one commit is in flight goes into the
next transaction, so N concurrent writers cost one fsync (or one Redis round trip), not N.

All storage writes (appends, compaction, deletes, metadata) run on ONE writer thread,
which is what the DocStore requires and what keeps LMDB's single-writer lock uncontended.
The thread takes everything queued since its last round, runs it in submission order,
and folds runs of consecutive commits into one `write` call; the results of each write
go back to the event loop in one callback, so a commit costs the loop one wake-up however
many rooms it covered (no executor, no per-job thread hop).

The writer thread hands the GIL back and forth with the event loop on every LMDB call
(py-lmdb releases it around each put and around the commit's fsync). Python's default
switch interval lets a busy loop keep the GIL for 5 ms before the writer gets it back, so
a commit of a few puts waited tens of milliseconds behind a busy loop; the writer sets a
shorter interval when it starts (`GIL_SWITCH_SECONDS`).

When the last write carried commits of several rooms and ended moments ago, the writer
waits `LINGER_SECONDS` before taking the next round (the way PostgreSQL's commit_delay
waits only when sibling transactions are active): many rooms at typing pace then share a
transaction and its fsyncs instead of paying for one each. Measured with 100 rooms x 3
typists: 2.7 -> 5.3 updates per commit, server CPU per edit -18%, p50 +2 ms, p99 no
worse. A lone room, or one busy room (whose actor has one commit in flight at a time),
never waits.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.errors import StorageError
from engine.storage import Append
from server.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

GIL_SWITCH_SECONDS = 0.0005
LINGER_SECONDS = 0.002

WriteBatch = Callable[[list[Append]], list[int]]


@dataclass(slots=True)
class _Commit:
    appends: list[Append]
    future: asyncio.Future[list[int]] = field(repr=False)


@dataclass(slots=True)
class _Call:
    func: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any] = field(repr=False)


_STOP = object()


class WriterThread:
    """Runs storage writes in order on one thread; consecutive commits share a write.

    Args:
        write: durably appends a batch and returns one seq per append, in order
            (called on the writer thread).
    """

    def __init__(self, write: WriteBatch, metrics: Metrics, linger: float = LINGER_SECONDS) -> None:
        self._write = write
        self.linger = linger
        self.metrics = metrics
        self._queue: queue.SimpleQueue[_Commit | _Call | object] = queue.SimpleQueue()
        self._closing = False
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if sys.getswitchinterval() > GIL_SWITCH_SECONDS:
            sys.setswitchinterval(GIL_SWITCH_SECONDS)
        self._thread = threading.Thread(target=self._main, name="store-writer", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ event loop side

    async def commit(self, appends: list[Append]) -> list[int]:
        """Append durably; returns one seq per append once the transaction is on disk.

        Raises:
            StorageError: the transaction failed; nothing of this batch was written.
        """
        if self._closing:
            raise StorageError("store is closing")
        future: asyncio.Future[list[int]] = self._future()
        self._put(_Commit(appends, future))
        return await future

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run any other write on the writer thread, in order with the commits."""
        if self._stopped:
            raise StorageError("store is closed")
        future: asyncio.Future[T] = self._future()
        self._put(_Call(func, args, future))
        return await future

    def _future(self) -> asyncio.Future[Any]:
        if self._loop is None:
            raise StorageError("the store's writer is not running")
        return self._loop.create_future()

    def _put(self, item: _Commit | _Call | object) -> None:
        self._queue.put(item)  # C-level: no Python lock dance on the event loop

    async def close(self) -> None:
        """Finish everything already queued, then stop the thread."""
        if self._thread is None or self._closing:
            return
        self._closing = True
        done: asyncio.Future[None] = self._future()
        self._put(_Call(lambda: None, (), done))
        self._put(_STOP)
        await done
        self._stopped = True
        await asyncio.to_thread(self._thread.join)

    # ------------------------------------------------------------------ writer thread

    def _main(self) -> None:
        last_write, siblings = 0.0, 0
        while True:
            items = [self._queue.get()]
            if siblings > 1 and time.monotonic() - last_write < self.linger:
                time.sleep(self.linger)  # rooms are committing together: gather more
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            start = 0
            while start < len(items):
                item = items[start]
                if item is _STOP:
                    return
                if isinstance(item, _Call):
                    self._run_call(item)
                    start += 1
                    continue
                end = start
                while end < len(items) and isinstance(items[end], _Commit):
                    end += 1
                self._run_commits(items[start:end])  # type: ignore[arg-type]
                last_write, siblings = time.monotonic(), end - start
                start = end

    def _run_call(self, call: _Call) -> None:
        try:
            result = call.func(*call.args)
        except Exception as exc:  # handed to the awaiting coroutine
            self._deliver([(call.future, exc, False)])
            return
        self._deliver([(call.future, result, True)])

    def _run_commits(self, jobs: list[_Commit]) -> None:
        if len(jobs) == 1:
            batch = jobs[0].appends
        else:
            batch = [append for job in jobs for append in job.appends]
        started = time.perf_counter()
        try:
            seqs = self._write(batch)
        except Exception as exc:
            log.exception("commit of %d updates failed", len(batch))
            error = exc if isinstance(exc, StorageError) else StorageError(str(exc))
            self.metrics.commit_failures.inc()
            self._deliver([(job.future, error, False) for job in jobs])
            return
        self.metrics.observe_commit(
            time.perf_counter() - started, len(batch), sum(len(a.update) for a in batch)
        )
        results: list[tuple[asyncio.Future[Any], Any, bool]] = []
        offset = 0
        for job in jobs:
            count = len(job.appends)
            results.append((job.future, seqs[offset : offset + count], True))
            offset += count
        self._deliver(results)

    def _deliver(self, results: list[tuple[asyncio.Future[Any], Any, bool]]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(_settle, results)
        except RuntimeError:  # the loop closed meanwhile: nobody is waiting any more
            pass


def _settle(results: list[tuple[asyncio.Future[Any], Any, bool]]) -> None:
    for future, value, ok in results:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
