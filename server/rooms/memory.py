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


M_MMAP_THRESHOLD = -3  # glibc mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 256 * 1024
ARENAS = 2


def _glibc(function: str) -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        found: Callable[..., int] = getattr(ctypes.CDLL(name), function)
    except (OSError, AttributeError):
        return None  # not glibc
    return found


_MALLOC_TRIM = _glibc("malloc_trim")


def return_big_buffers() -> bool:
    """Give freed megabyte buffers back to the system from now on; whether it applied.

    glibc serves a big allocation with its own mmap, and frees it back to the system,
    only above its mmap threshold; but after such a buffer is freed it raises the
    threshold to that size (up to 32 MiB). From then on, megabyte updates, pages and
    events come from heap arenas (one per thread that allocates, and the server's reads
    run in threads), which keep what was freed: a burst of large pages would leave the
    process hundreds of MiB larger for good. A fixed threshold turns that adjustment
    off, and a cap on arenas keeps each thread from holding its own. `performer serve`
    calls this at start (an embedding application decides for its own process).
    """
    mallopt = _glibc("mallopt")
    if mallopt is None:
        return False
    applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    return bool(mallopt(M_ARENA_MAX, ARENAS)) and applied


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
