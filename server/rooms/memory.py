"""Give memory back to the OS after rooms unload.

Freed Python objects return to CPython's and glibc's free lists, not to the OS, so a
server that unloads a thousand idle rooms would keep its peak RSS. After a burst of
unloads (debounced) we collect cycles and ask glibc to trim its heaps (`malloc_trim`).
Elsewhere (no glibc) only the collection runs.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _load_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class MemoryReleaser:
    """Runs `release_free_memory` once things have been quiet for `delay` seconds."""

    def __init__(self, delay: float = 1.0) -> None:
        self.delay = delay
        self._handle: asyncio.TimerHandle | None = None

    def soon(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = asyncio.get_running_loop().call_later(self.delay, self._run)

    def _run(self) -> None:
        self._handle = None
        release_free_memory()
        log.debug("released free memory after rooms unloaded")

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
