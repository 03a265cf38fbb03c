"""How many change-feed and history pages one caller may be reading at once.

A page is bounded by bytes (`Limits.page_bytes`), but a caller asking for many pages at
once multiplied that: four readers paging a room of megabyte updates held the event loop
and the store's reader threads enough to slow every other room's edits. Each caller (a
user, else a token; on an open server, each room, as the compute lane counts them) may
have `Limits.page_reads_per_caller` pages in flight; the next gets `Busy` (503 +
Retry-After). A long-poll's wait holds no place: only reading and writing a page does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from engine.errors import Busy

RETRY_AFTER_SECONDS = 1


class PageReads:
    def __init__(self, per_caller: int) -> None:
        self.per_caller = per_caller
        self.reading: dict[str, int] = {}
        self.refused = 0  # pages answered 503 (server/metrics.py exports the count)

    @contextmanager
    def admit(self, caller: str) -> Iterator[None]:
        """Count one page against `caller` for as long as the block runs.

        Raises:
            Busy: the caller already reads `per_caller` pages.
        """
        held = self.reading.get(caller, 0)
        if held >= self.per_caller:
            self.refused += 1
            raise Busy(
                f"at most {self.per_caller} change or history pages at a time per caller",
                RETRY_AFTER_SECONDS,
            )
        self.reading[caller] = held + 1
        try:
            yield
        finally:
            left = self.reading[caller] - 1
            if left:
                self.reading[caller] = left
            else:
                del self.reading[caller]
