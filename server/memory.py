"""Give freed megabyte buffers back to the system (glibc's allocator, Linux).

glibc serves a big allocation with its own mmap, and frees it back to the system, only
above its mmap threshold; but after such a buffer is freed it raises the threshold to
that size (up to 32 MiB). From then on, megabyte updates, pages and events come from
heap arenas (one per thread that allocates, and the server's reads run in threads),
which keep what was freed. A burst of large pages then leaves the process hundreds of
MiB larger for good. A fixed threshold turns that adjustment off, and a cap on arenas
keeps the threads from each holding their own. Elsewhere (another libc, another OS) this
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 256 * 1024
ARENAS = 2


def return_big_buffers() -> bool:
    """Set the threshold and the arena cap for this process; whether it applied."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    applied = bool(mallopt(M_ARENA_MAX, ARENAS)) and applied
    if not applied:
        log.info("the allocator's mmap threshold could not be set")
    return applied
