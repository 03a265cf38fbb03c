"""Group commit: every update that arrives while one commit is in flight goes into the
next transaction, so N concurrent writers cost one fsync (or one Redis round trip), not N.

For LMDB, all storage writes (appends, compaction, deletes) run on ONE writer thread,
which is what the DocStore requires and what keeps LMDB's single-writer lock uncontended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from engine.errors import StorageError
from engine.storage import Append
from server.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Job:
    appends: list[Append]
    future: asyncio.Future[list[int]] = field(repr=False)


WriteBatch = Callable[[list[Append]], Awaitable[list[int]]]


def writer_thread() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")


class GroupCommitter:
    """Batches appends from every room into one durable write per round.

    Args:
        write: durably appends a batch and returns one seq per append, in order.
    """

    def __init__(self, write: WriteBatch, metrics: Metrics) -> None:
        self._write = write
        self.metrics = metrics
        self._jobs: list[_Job] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def commit(self, appends: list[Append]) -> list[int]:
        """Append durably; returns one seq per append once the transaction is on disk.

        Raises:
            StorageError: the transaction failed; nothing of this batch was written.
        """
        if self._closing:
            raise StorageError("store is closing")
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(appends, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while not (self._closing and not self._jobs):
            await self._wakeup.wait()
            self._wakeup.clear()
            jobs, self._jobs = self._jobs, []
            if not jobs:
                continue
            batch = [append for job in jobs for append in job.appends]
            started = time.perf_counter()
            try:
                seqs = await self._write(batch)
            except Exception as exc:
                log.exception("commit of %d updates failed", len(batch))
                error = exc if isinstance(exc, StorageError) else StorageError(str(exc))
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
                self.metrics.commit_failures.inc()
                continue
            self.metrics.observe_commit(
                time.perf_counter() - started, len(batch), sum(len(a.update) for a in batch)
            )
            offset = 0
            for job in jobs:
                count = len(job.appends)
                if not job.future.done():
                    job.future.set_result(seqs[offset : offset + count])
                offset += count

    async def close(self) -> None:
        """Finish the commits already queued."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
