"""How many bytes restores may write to one room per second.

A restore is a write amplifier: a request of a few bytes (`{"seq": N}`) becomes one
forward edit as large as what changed since N, up to the whole room, committed, fsynced,
broadcast to every client and kept in the history for good, and applied to the live room
on the event loop. Restoring back and forth between two versions re-creates what the
other one deleted, so the room (and the cost of its next restore) grows each time. The
compute lane bounds how many restores run at once, not how fast their edits are written:
a few writers restoring one room in a loop held every room's event loop for tens of
milliseconds at a time (the abuse harness, `benchmarks/reliability/abuse.py`).

Each room has a token bucket of `Limits.restore_bytes_per_second`, holding
`BURST_SECONDS` of it: a restore's edit is charged once the diff is known, and a restore
starts only while its room owes nothing (a pause of under a second just past it, a 503
with `Retry-After` further past it; server/page_rate.py's rules). A single restore larger
than the bucket is still served when the room owes nothing: any room can be restored,
and its next restore waits until the room's edit is paid for. A restore that changes
nothing writes nothing and is not charged. The buckets are per process (with N processes
on Redis a room may take N times the rate).
"""

from __future__ import annotations

from server.page_rate import PageRate

BURST_SECONDS = 4  # a few restores in a row (trying versions) are never held back


class RestoreRate(PageRate):
    """The per-room buckets of restore bytes; `rate` 0 turns the limit off."""

    subject = "bytes of restores per second per room"

    def __init__(self, rate: int) -> None:
        super().__init__(rate, rate * BURST_SECONDS)
