"""When the DocStore writes a snapshot, on memory, LMDB and a real redis-server: the
policy counts from the room's newest snapshot (read once, then kept up to date by the
store's own compactions), a compactor that loses the race forgets what it knew, a room
with a history window keeps every snapshot, and nothing is written that is not due."""

from __future__ import annotations

from typing import Any

import pytest

from engine.document import rebuild
from engine.storage import (
    Append,
    CompactionPolicy,
    DocStore,
    LogStore,
    Retention,
)
from engine.storage.compaction import RoomWindow
from tests.engine.helpers import typing_updates

EVERY_TEN = CompactionPolicy(every_updates=10, min_bytes=1 << 30)
UPDATES = typing_updates("x" * 40)


@pytest.fixture
def log(every_log: LogStore) -> LogStore:
    return every_log


def _docs(log: LogStore, policy: CompactionPolicy = EVERY_TEN, **options: Any) -> DocStore:
    return DocStore(log, rebuild=rebuild, clock=lambda: 5.0, policy=policy, **options)


def _type(docs: DocStore, first: int, last: int) -> None:
    """Append UPDATES[first - 1 : last]: log entries first..last of room doc."""
    docs.append_many([Append("doc", update) for update in UPDATES[first - 1 : last]])


def _log_bytes(log: LogStore) -> int:
    info = log.info("doc")
    assert info is not None
    return info.log_bytes


def test_the_snapshot_policy_counts_from_the_newest_snapshot_of_the_room(log: LogStore) -> None:
    policy = CompactionPolicy(every_updates=10, min_bytes=1 << 30)
    updates = typing_updates("x" * 32)
    writer = _docs(log, policy=policy)
    writer.append_many([Append("doc", update) for update in updates[:12]])
    assert writer.compact("doc", force=True) is not None  # at seq 12
    writer.append_many([Append("doc", update) for update in updates[12:15]])
    fresh = _docs(log, policy=policy)  # no counters cached: reads the newest snapshot
    assert not fresh.snapshot_due("doc") and not fresh.snapshot_due("nowhere")
    fresh.append_many([Append("doc", update) for update in updates[15:22]])
    assert fresh.snapshot_due("doc")
    fresh.delete_room("doc")  # a new room under the old name counts from its own start
    fresh.append_many([Append("doc", update) for update in updates[:10]])
    assert fresh.snapshot_due("doc")


def test_the_policy_weighs_the_bytes_since_the_snapshot_against_its_size(log: LogStore) -> None:
    policy = CompactionPolicy(every_updates=1000, min_bytes=100)
    docs = _docs(log, policy=policy)
    docs.append_many([Append("doc", update) for update in typing_updates("x" * 300)])
    snapshot = docs.compact("doc", force=True)
    assert snapshot is not None and len(snapshot.update) > 100
    while _log_bytes(log) - snapshot.log_bytes < len(snapshot.update):
        assert not _docs(log, policy=policy).snapshot_due("doc")
        docs.append_many([Append("doc", b"u" * 10, clients=())])  # opaque: never decoded
    assert _docs(log, policy=policy).snapshot_due("doc")


def test_a_compactor_counts_from_its_own_last_snapshot(log: LogStore) -> None:
    docs = _docs(log, CompactionPolicy(every_updates=10, min_bytes=100))
    _type(docs, 1, 12)
    assert docs.compact("doc") is not None  # due: 12 entries
    _type(docs, 13, 13)
    assert not docs.snapshot_due("doc") and docs.compact("doc") is None
    _type(docs, 14, 22)
    assert docs.snapshot_due("doc")


def test_nothing_is_written_that_is_not_due_or_already_there(log: LogStore) -> None:
    docs = _docs(log)
    _type(docs, 1, 5)
    assert docs.compact("doc") is None and log.snapshots("doc") == []
    written = docs.compact("doc", force=True)
    assert written is not None and written.seq == 5
    again = docs.compact("doc", state=(5, written.update), force=True)
    assert again is None and [seq for seq, _ in log.snapshots("doc")] == [5]


def test_a_room_with_a_history_window_keeps_every_snapshot(log: LogStore) -> None:
    windowed = Retention(keep_snapshots=2, rooms=(RoomWindow("doc", seconds=3600.0),))
    docs = _docs(log, retention=windowed)
    for last in (5, 10, 15):
        _type(docs, last - 4, last)
        assert docs.compact("doc", force=True) is not None
    assert [seq for seq, _ in log.snapshots("doc")] == [15, 10, 5]


class _LosesTheRace:
    """A LogStore (a real one underneath) where another compactor writes its snapshot
    just before this one's compare-and-set."""

    def __init__(self, log: LogStore, winner: DocStore) -> None:
        self._log, self._winner = log, winner

    def put_snapshot(self, room: str, seq: int, record: bytes, **kwargs: Any) -> bool:
        assert self._winner.compact(room, force=True) is not None
        return self._log.put_snapshot(room, seq, record, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def test_a_compactor_that_loses_the_race_counts_from_the_winners_snapshot(log: LogStore) -> None:
    _type(_docs(log), 1, 8)
    loser = DocStore(_LosesTheRace(log, _docs(log)), rebuild=rebuild, policy=EVERY_TEN)
    assert not loser.snapshot_due("doc")  # counters read: no snapshot yet, 8 entries
    _type(loser, 9, 12)
    assert loser.compact("doc", force=True) is None  # the winner wrote one at 12
    _type(loser, 13, 14)
    assert not loser.snapshot_due("doc")  # 2 since the winner's, not 14 since none
    _type(loser, 15, 20)
    blind = DocStore(_LosesTheRace(log, _docs(log)), rebuild=rebuild, policy=EVERY_TEN)
    state = (20, _docs(log).state_at("doc", 20))  # never read the counters, handed a state
    assert blind.compact("doc", state=state, force=True) is None


def test_reading_the_past_leaves_the_policy_counting_from_the_newest(log: LogStore) -> None:
    docs = _docs(log, retention=Retention(keep_snapshots=0))
    _type(docs, 1, 10)
    assert docs.compact("doc", force=True) is not None
    _type(docs, 11, 20)
    assert docs.compact("doc", force=True) is not None
    _type(docs, 21, 25)
    docs.state_at("doc", 15)  # read from the snapshot at 10
    assert not docs.snapshot_due("doc")  # 5 since the one at 20
