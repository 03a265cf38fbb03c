"""How many bytes of change-feed and history pages one caller may take per second.

Two pages at a time per caller (server/page_reads.py) still let a reader fetch megabyte
pages back to back: two read tokens paging a room of large updates kept most of a core
busy moving bytes, and every other room's edits waited behind it. Each caller (the same
key the page places use: a user, else a token, else the room) has a token bucket of
`Limits.page_bytes_per_second`, holding at most one full page (`Limits.page_bytes`).
Every page's bytes (JSON bodies, SSE catch-up events) are charged once they are known,
each JSON page for at least a `Limits.pages_per_second`th of the rate: a page costs more than
its bytes (a request parsed, authorized, read on a thread and answered), and a reader
asking for hundreds of tiny history pages a second was never held back by the byte rate
(in the abuse harness, 8 % of the server's interpreter time). A page is only started
while the caller owes nothing.

A caller owing less than a second's worth (`PACE_SECONDS`) is paused on the server for
that long and then served: `Retry-After` counts whole seconds, so answering 503 to a
reader just past its rate would hold a polite client back a whole second for every page
and make the real limit far lower than the one configured. A caller owing more gets 503
with `Retry-After` in whole seconds until it owes nothing, rounded up: come back then
and the page starts at once. The buckets are per process: with N processes behind a
balancer a caller may take up to N times the rate.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.errors import Busy
from server.config import Limits

PACE_SECONDS = 1.0  # a caller owing less is paused on the server instead of refused


@dataclass(slots=True)
class _Bucket:
    tokens: float  # bytes the caller may still take; negative: owed
    stamp: float  # when `tokens` was last brought up to date


class PageRate:
    """The buckets, by caller. `rate` 0 turns the limit off; `min_charge`: what the
    smallest page counts for."""

    subject = "bytes of change or history pages per second per caller"

    def __init__(
        self,
        rate: int,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        min_charge: int = 0,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.min_charge = min_charge
        self.buckets: dict[str, _Bucket] = {}
        self.refused = 0  # pages answered 503 (server/metrics.py exports the counts)
        self.paused = 0  # pages started after a pause (a stream's included)
        self._swept_at = 0

    @classmethod
    def of(cls, limits: Limits) -> PageRate:
        """The page rate `limits` set: each page counts for at least a
        `pages_per_second`th of `page_bytes_per_second`."""
        per_page = limits.pages_per_second
        rate = limits.page_bytes_per_second
        return cls(rate, limits.page_bytes, min_charge=rate // per_page if per_page else 0)

    def owed_seconds(self, caller: str) -> float:
        """How long until `caller` owes nothing (0: it may start a page now)."""
        bucket = self._refilled(caller)
        if bucket is None or bucket.tokens >= 0:
            return 0.0
        return -bucket.tokens / self.rate

    async def admit(self, caller: str) -> None:
        """Return once `caller` may start a page: at once within its rate, after a pause
        of under `PACE_SECONDS` just past it.

        Raises:
            Busy: it owes more than `PACE_SECONDS` of its rate; Retry-After says when
                it owes nothing.
        """
        wait = self.owed_seconds(caller)
        if wait <= 0:
            return
        if wait > PACE_SECONDS:
            self.refused += 1
            raise Busy(
                f"past {self.rate} {self.subject}",
                math.ceil(wait),
            )
        self.paused += 1
        await asyncio.sleep(wait)

    async def pace(self, caller: str) -> None:
        """Wait, however long, until `caller` owes nothing: between the pages of a
        stream already answered, where a 503 can no longer be sent."""
        wait = self.owed_seconds(caller)
        if wait > 0:
            self.paused += 1
            await asyncio.sleep(wait)

    def charge_page(self, caller: str, size: int) -> None:
        """`charge` a JSON page of `size` bytes: at least `min_charge` (an SSE catch-up's
        events are charged their bytes; its stream counts against `streams_per_caller`)."""
        self.charge(caller, max(size, self.min_charge))

    def charge(self, caller: str, size: int) -> None:
        """Count `size` bytes sent (or about to be) to `caller`."""
        if not self.rate:
            return
        bucket = self._refilled(caller)
        if bucket is None:
            bucket = self.buckets[caller] = _Bucket(float(self.burst), self.clock())
        bucket.tokens -= size
        if len(self.buckets) > 2 * self._swept_at + 64:
            self._sweep()

    def _refilled(self, caller: str) -> _Bucket | None:
        """The caller's bucket brought up to now (None: full, or the limit is off)."""
        bucket = self.buckets.get(caller)
        if bucket is None or not self.rate:
            return None
        now = self.clock()
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.rate)
        bucket.stamp = now
        return bucket

    def _sweep(self) -> None:
        """Forget full buckets (a full bucket is no bucket): many callers who each took
        a page once must not be remembered forever."""
        for caller in list(self.buckets):
            bucket = self._refilled(caller)
            if bucket is not None and bucket.tokens >= self.burst:
                del self.buckets[caller]
        self._swept_at = len(self.buckets)
