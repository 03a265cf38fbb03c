"""Which window a room gets (`--history-room` patterns over the server's window), and the
cheap pre-check that keeps a room with too few entries past its edge from being read
whole round after round. On every log store (memory, LMDB, a real redis-server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pycrdt import Text

from engine.storage import LogStore, Retention, RoomWindow
from engine.storage.retention import (
    Deferred,
    FoldInputs,
    HistoryWindow,
    fold_may_be_due,
    fold_room,
    plan_fold,
    read_fold,
)
from engine.storage.tools import verify
from tests.engine.helpers import content, recording_doc
from tests.engine.test_retention import log_store, store_on

__all__ = ["log_store"]  # the fixture, shared with test_retention.py

DAY = 86400.0


def test_the_most_specific_pattern_gives_a_room_its_window() -> None:
    retention = Retention(
        history_seconds=30 * DAY,
        rooms=(
            RoomWindow("notes-*", bytes=1000),
            RoomWindow("notes-legal-*"),  # keep everything
            RoomWindow("notes-legal-draft", seconds=DAY),
            RoomWindow("scratch*", seconds=60.0, bytes=500),
        ),
    )
    assert retention.window_of("lobby") == (30 * DAY, None)  # the server's
    assert retention.window_of("notes-a") == (None, 1000)
    assert retention.window_of("notes-legal-2024") is None  # a longer prefix wins
    assert retention.window_of("notes-legal-draft") == (DAY, None)  # an exact name wins
    assert retention.window_of("scratch") == (60.0, 500)
    assert retention.keep_snapshots_of("notes-legal-2024") == 2
    assert retention.keep_snapshots_of("notes-a") == 0  # the edge snapshot must outlive newer ones
    only_patterns = Retention(rooms=(RoomWindow("tmp-*", seconds=60.0),))
    assert only_patterns.windowed
    assert only_patterns.window_of("lobby") is None
    assert not Retention(rooms=(RoomWindow("x-*"),)).windowed


def test_compaction_keeps_every_snapshot_only_where_a_window_needs_them(
    log_store: LogStore,
) -> None:
    retention = Retention(rooms=(RoomWindow("win-*", bytes=100_000),))
    store, _ = store_on(log_store, retention)
    for room in ("win-a", "plain"):
        doc, updates = recording_doc(1)
        text = doc.get("t", type=Text)
        for i in range(5):
            text += f"{i}"
            store.append(room, updates[-1])
            store.compact(room, force=True)
    assert len(store.log.snapshots("win-a")) == 5
    assert len(store.log.snapshots("plain")) == 2


def _type(store: Any, room: str, text: Text, updates: list[bytes], count: int) -> None:
    for i in range(count):
        text += f"{i % 10}"
        store.append(room, updates[-1], "ann")


def _count_reads(monkeypatch: pytest.MonkeyPatch, log: LogStore) -> Callable[[], int]:
    """How many log entries `log.read` has returned since."""
    returned = [0]
    original = log.read

    def read(*args: Any, **kwargs: Any) -> list[tuple[int, bytes]]:
        entries = original(*args, **kwargs)
        returned[0] += len(entries)
        return entries

    monkeypatch.setattr(log, "read", read)
    return lambda: returned[0]


def test_an_age_window_with_too_few_old_entries_reads_one_entry_per_check(
    log_store: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first entry is past the window but only 50 are (a fold needs 100): the check
    reads one entry and says no, each round, instead of sending the room to be read whole."""
    store, clock = store_on(log_store)
    doc, updates = recording_doc(1)
    text = doc.get("t", type=Text)
    _type(store, "notes", text, updates, 50)
    clock.now += 10_000
    _type(store, "notes", text, updates, 200)
    window = HistoryWindow(seconds=5_000.0)
    read_so_far = _count_reads(monkeypatch, store.log)

    for _round in range(3):
        assert not fold_may_be_due(store, "notes", window, clock.now, None)
    assert read_so_far() <= 3
    assert isinstance(read_fold(store, "notes", window, clock.now), Deferred), "agrees"

    clock.now += 10_000  # now every entry is past the window
    assert fold_may_be_due(store, "notes", window, clock.now, None)
    summary = fold_room(store, "notes", window, clock.now)
    assert summary is not None and summary.count == 250
    assert content(store.load("notes").updates) == content(updates)


def test_a_byte_window_with_too_few_entries_past_its_edge_waits_for_the_log_to_grow(
    log_store: LogStore,
) -> None:
    """Five big entries then small ones: only the big ones are past a small byte window,
    too few to fold. `Deferred` says how far the log must grow first; until then the check
    says no without reading, and then the fold happens."""
    store, clock = store_on(log_store)
    doc, updates = recording_doc(1)
    text = doc.get("t", type=Text)
    for i in range(5):
        text += f"{i}" * 3000
        store.append("nb", updates[-1], "ann")
    _type(store, "nb", text, updates, 20)
    window = HistoryWindow(bytes=1500, min_entries=10)

    deferred = read_fold(store, "nb", window, clock.now)
    assert isinstance(deferred, Deferred)
    assert plan_fold(store, "nb", window, clock.now) is None
    assert not fold_may_be_due(store, "nb", window, clock.now, deferred.edge_bytes)
    _type(store, "nb", text, updates, 5)
    assert not fold_may_be_due(store, "nb", window, clock.now, deferred.edge_bytes)
    assert not isinstance(read_fold(store, "nb", window, clock.now), FoldInputs), "agrees"

    _type(store, "nb", text, updates, 80)
    assert fold_may_be_due(store, "nb", window, clock.now, deferred.edge_bytes)
    summary = fold_room(store, "nb", window, clock.now)
    assert summary is not None and summary.count >= 10
    assert content(store.load("nb").updates) == content(updates)
    assert verify(store).ok
