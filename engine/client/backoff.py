"""Reconnect delays: exponential, capped, with jitter so clients do not stampede."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """The delay for attempt n is drawn from [d/2, d] with d = min(maximum, initial * 2^n).

    Args:
        initial: the ceiling of the first delay, in seconds.
        maximum: no delay is longer than this.
    """

    initial: float = 0.25
    maximum: float = 10.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.maximum, self.initial * 2.0 ** min(attempt, 32))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)
