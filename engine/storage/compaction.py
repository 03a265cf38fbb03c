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
class RoomWindow:
    """The history window of the rooms a pattern names (`serve --history-room`).

    Args:
        pattern: a room name, or a prefix ending in `*` (as in tokens and rules files).
        seconds, bytes: the window; neither set keeps every entry of those rooms, whatever
            the server's window says.
    """

    pattern: str
    seconds: float | None = None
    bytes: int | None = None

    def matches(self, room: str) -> bool:
        if self.pattern.endswith("*"):
            return room.startswith(self.pattern[:-1])
        return room == self.pattern

    @property
    def specificity(self) -> tuple[bool, int]:
        """An exact name wins over any prefix, a longer prefix over a shorter one."""
        return not self.pattern.endswith("*"), len(self.pattern)


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
        rooms: windows of their own for the rooms their patterns name; the most specific
            pattern naming a room wins over the others and over the server's window.
    """

    keep_log: bool = True
    keep_snapshots: int = 2
    history_seconds: float | None = None
    history_bytes: int | None = None
    rooms: tuple[RoomWindow, ...] = ()

    @property
    def windowed(self) -> bool:
        """Some room may have a history window: the server's, or a pattern's."""
        bounds = [(self.history_seconds, self.history_bytes)]
        bounds += [(w.seconds, w.bytes) for w in self.rooms]
        return any(seconds is not None or size is not None for seconds, size in bounds)

    def window_of(self, room: str) -> tuple[float | None, int | None] | None:
        """The room's history window as (seconds, bytes); None: keep everything."""
        named = [w for w in self.rooms if w.matches(room)]
        if named:
            best = max(named, key=lambda w: w.specificity)
            seconds, size = best.seconds, best.bytes
        else:
            seconds, size = self.history_seconds, self.history_bytes
        return None if seconds is None and size is None else (seconds, size)

    def keep_snapshots_of(self, room: str) -> int:
        """Under a window compaction keeps every snapshot (0), since the one at the
        window's edge must outlive newer ones (the fold deletes those before the edge)."""
        return 0 if self.window_of(room) is not None else self.keep_snapshots


def should_compact(
    updates_since: int, bytes_since: int, snapshot_bytes: int, policy: CompactionPolicy
) -> bool:
    """True when the tail since the last snapshot is long or heavy enough to fold."""
    if updates_since <= 0:
        return False
    if updates_since >= policy.every_updates:
        return True
    return bytes_since >= max(snapshot_bytes, policy.min_bytes)
