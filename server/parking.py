"""When a failed delivery is tried again, and what is kept of one that never got through.

Receivers go down for a deploy, a restart, an afternoon. The retry schedule follows what
Stripe- and Svix-style receivers expect: attempts spread over about a day, seconds apart
at first and hours apart at the end, each delay jittered by +-20% so rooms that failed
together do not all retry in the same instant. A room whose batch is still refused after
the last attempt is parked (kept in the store, never dropped); a probe resumes it.

    attempt   2    3     4     5      6       7       8     9     10    11    12
    delay     1s   5s    30s   2min   10min   30min   1h    2h    4h    6h    8h
    total     1s   6s    36s   2.6min 12.6min 42.6min 1.7h  3.7h  7.7h  13.7h 21.7h
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

RETRY_SCHEDULE: tuple[float, ...] = (
    1.0, 5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 21600.0, 28800.0,
)  # fmt: skip
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1  # the first attempt, then one per delay
JITTER = 0.2


def retry_delay(attempt: int, first: float = RETRY_SCHEDULE[0]) -> float:
    """The wait after failed attempt number `attempt` (1-based). `first` rescales the
    whole schedule (its first delay becomes `first`, the others keep their proportions),
    which is how tests and impatient operators shorten it. Past the table: its last."""
    step = RETRY_SCHEDULE[min(max(attempt, 1), len(RETRY_SCHEDULE)) - 1]
    scaled = step * first / RETRY_SCHEDULE[0]
    return scaled * random.uniform(1 - JITTER, 1 + JITTER)


@dataclass(frozen=True, slots=True)
class Parked:
    """A room whose deliveries stopped after the whole schedule failed (kept in the store).
    `error` is the last attempt's failure, as the consumer wrote it (no credentials)."""

    room: str
    from_seq: int
    to_seq: int
    attempts: int
    error: str

    def encode(self) -> bytes:
        return json.dumps(
            {"from_seq": self.from_seq, "to_seq": self.to_seq, "attempts": self.attempts,
             "error": self.error}
        ).encode()  # fmt: skip

    @classmethod
    def decode(cls, room: str, raw: bytes) -> Parked:
        data = json.loads(raw)
        return cls(room, int(data["from_seq"]), int(data["to_seq"]), int(data["attempts"]),
                   str(data["error"]))  # fmt: skip
