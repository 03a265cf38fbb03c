"""When to write a snapshot, and what to keep after it: pure policy, no I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    """Snapshot every `every_updates` log entries, or sooner once the log since the last
    snapshot outgrows the snapshot itself (and `min_bytes`), so loading a room replays a
    bounded tail whatever the edit pattern.
    """

    every_updates: int = 1000
    min_bytes: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class Retention:
    """What compaction may delete.

    Args:
        keep_log: keep every log entry (the default: the log is the audit trail and the
            source of time travel). False trims entries a snapshot covers.
        keep_snapshots: how many snapshots to keep per room; 0 keeps all. Two by default:
            the newest and one to fall back on if the newest is ever torn. Older ones only
            speed up time travel (the log rebuilds any past state), and keeping every one
            would grow the store quadratically in a long-lived room.
        history_seconds, history_bytes: the history window (None: unbounded); see
            `engine/storage/retention.py`.
    """

    keep_log: bool = True
    keep_snapshots: int = 2
    history_seconds: float | None = None
    history_bytes: int | None = None

    @property
    def windowed(self) -> bool:
        """A history window is set: entries older than it are folded (retention.py), and
        compaction keeps every snapshot, since the one at the window's edge must outlive
        newer ones (the fold deletes those before the edge)."""
        return self.history_seconds is not None or self.history_bytes is not None


def should_compact(
    updates_since: int, bytes_since: int, snapshot_bytes: int, policy: CompactionPolicy
) -> bool:
    """True when the tail since the last snapshot is long or heavy enough to fold."""
    if updates_since <= 0:
        return False
    if updates_since >= policy.every_updates:
        return True
    return bytes_since >= max(snapshot_bytes, policy.min_bytes)
