"""Group commit: every update that arrives while one commit is in flight goes into the
next transaction, so N concurrent writers cost one fsync, not N.

All storage writes (appends, compaction, deletes) run on ONE writer thread, which is
what the DocStore requires and what keeps LMDB's single-writer lock uncontended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from engine.errors import StorageError
from engine.storage import Append, DocStore
from server.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class _Job:
    appends: list[Append]
    future: asyncio.Future[list[int]] = field(repr=False)


class GroupCommitter:
    """Batches appends from every room into one durable `append_many` per round."""

    def __init__(self, store: DocStore, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-writer")
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

    async def run_in_writer(self, func: Callable[..., T], *args: Any) -> T:
        """Run other storage writes (compaction, deletion) in order with the commits."""
        return await asyncio.get_running_loop().run_in_executor(self._writer, func, *args)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not (self._closing and not self._jobs):
            await self._wakeup.wait()
            self._wakeup.clear()
            jobs, self._jobs = self._jobs, []
            if not jobs:
                continue
            batch = [append for job in jobs for append in job.appends]
            started = time.perf_counter()
            try:
                seqs = await loop.run_in_executor(self._writer, self.store.append_many, batch)
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
        """Finish the commits already queued, then stop the writer thread."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._writer.shutdown(wait=True)
