"""DocStore reads at their edges, on memory, LMDB and a real redis-server: byte-bounded
pages, the oldest position a trimmed log can still rebuild, named versions kept past a
fold, trims landing in the middle of reads, torn snapshots, missing entries, and the
descriptions of damaged records."""

from __future__ import annotations

import re
from typing import Any

import pytest

from engine.document import rebuild
from engine.errors import CorruptRecord, HistoryFolded, StorageError
from engine.storage import (
    Append,
    DocStore,
    LogStore,
    Retention,
)
from engine.storage.docstore import BUDGET_BATCH, READ_RETRIES, LoadedRoom, kept_key
from engine.storage.records import Snapshot, pack, pack_updates
from engine.storage.room_dump import RoomDump
from tests.engine.helpers import content, typing_updates
from tests.engine.test_docstore import tear_snapshot


@pytest.fixture
def log(every_log: LogStore) -> LogStore:
    return every_log


def _docs(log: LogStore, **options: Any) -> DocStore:
    return DocStore(log, rebuild=rebuild, clock=lambda: 5.0, **options)


def _fill(docs: DocStore, room: str, sizes: list[int]) -> list[int]:
    """Records whose updates have these sizes (opaque bytes: clients given, never parsed);
    returns each stored record's size."""
    docs.append_many([Append(room, b"u" * size, clients=()) for size in sizes])
    return [len(value) for _, value in docs.log.read(room)]


def _smallest_page(sizes: list[int], after: int, upto: int, limit: int, budget: int) -> list[int]:
    """The seqs a page must hold: from after + 1, until its bytes reach the budget."""
    seqs: list[int] = []
    used = 0
    for seq in range(after + 1, min(upto, len(sizes)) + 1):
        if used >= budget or len(seqs) >= limit:
            break
        seqs.append(seq)
        used += sizes[seq - 1]
    return seqs


def test_a_byte_bounded_page_ends_where_its_records_reach_the_budget(log: LogStore) -> None:
    docs = _docs(log)
    sizes = _fill(docs, "doc", [40] * 60)
    one = sizes[0]
    for after, upto, limit, budget in [
        (0, 60, 100, one * 7),
        (0, 60, 100, one * 7 + 1),
        (5, 60, 100, one * 20),
        (5, 60, 4, one * 20),
        (10, 15, 100, one * 20),
        (50, 60, 100, one * 30),
        (0, 60, 100, 1),
    ]:
        page = docs.entries("doc", after, upto, limit, max_bytes=budget)
        expected = _smallest_page(sizes, after, upto, limit, budget)
        assert [record.seq for record in page] == expected, (after, upto, limit, budget)
        history = docs.history("doc", after, limit, max_bytes=budget)
        assert [entry.seq for entry in history] == _smallest_page(sizes, after, 60, limit, budget)
    assert [r.seq for r in docs.entries("doc", 3, 9, 4)] == [4, 5, 6, 7]
    assert [r.seq for r in docs.entries("doc", 3, 5)] == [4, 5]
    assert [r.seq for r in docs.entries("doc", 55)] == [56, 57, 58, 59, 60]


def test_a_page_overshoots_its_budget_by_at_most_one_batch(log: LogStore) -> None:
    """Batches grow on small records; one batch, never more, may run into big ones."""
    docs = _docs(log)
    sizes = _fill(docs, "doc", [10] * 63 + [3000] * 100)
    budget = sum(sizes[:63]) + 2 * sizes[63]
    page = docs.entries("doc", max_bytes=budget)
    smallest = _smallest_page(sizes, 0, len(sizes), len(sizes), budget)
    assert [r.seq for r in page[: len(smallest)]] == smallest
    assert len(page) < len(smallest) + BUDGET_BATCH
    assert [r.seq for r in docs.entries("doc", max_bytes=1)] == [1]  # always one record


def test_the_oldest_position_follows_the_trimmed_log_and_its_snapshots(log: LogStore) -> None:
    docs = _docs(log)
    assert docs.oldest_position("nowhere") == 0
    for update in typing_updates("abcdefghijkl"):
        docs.append("doc", update)
    assert docs.oldest_position("doc") == 0  # nothing trimmed
    for seq in (3, 4, 10):  # snapshots kept, the log trimmed at 4 (first entry now 5)
        assert log.put_snapshot("doc", seq, b"s%d" % seq, expect=log.newest_snapshot_seq("doc"),
                                keep=0, trim_log=seq == 4)  # fmt: skip
    assert log.first_seq("doc") == 5
    assert docs.oldest_position("doc") == 4  # the snapshot right before the log's start
    log.drop_snapshots_before("doc", 5)
    assert docs.oldest_position("doc") == 10  # the snapshot the log goes on from
    log.drop_snapshots_before("doc", 11)
    assert docs.oldest_position("doc") == 4  # no snapshot: where the log starts, less one
    assert log.put_snapshot("doc", 12, b"s12", expect=0, keep=0, trim_log=True)
    assert log.first_seq("doc") is None and docs.oldest_position("doc") == 12


def test_a_named_version_outlives_the_log_it_came_from(log: LogStore) -> None:
    docs = _docs(log, retention=Retention(keep_log=False))
    for update in typing_updates("hello world"):
        docs.append("doc", update)
    at_five = docs.state_at("doc", 5)
    docs.set_meta("doc", kept_key(5), pack(Snapshot(5, 5.0, at_five, b"", 0).to_map()))
    assert docs.compact("doc", force=True) is not None  # the log up to 11 goes
    assert docs.oldest_position("doc") == 11
    assert content([docs.state_at("doc", 5)])["t"] == "hello"
    with pytest.raises(HistoryFolded) as folded:
        docs.state_at("doc", 6)
    assert (folded.value.room, folded.value.seq, folded.value.oldest) == ("doc", 6, 11)


class _TrimsMidRead:
    """A LogStore (a real one underneath) that trims the room's log the second time its
    first entry is asked for: between the oldest position a read checked and the read."""

    def __init__(self, log: LogStore, room: str, upto: int) -> None:
        self._log, self._room, self._upto, self._calls = log, room, upto, 0

    def first_seq(self, room: str) -> int | None:
        self._calls += 1
        if self._calls == 2:
            self._log.put_snapshot(self._room, self._upto, b"s", keep=0, trim_log=True,
                                   expect=self._log.newest_snapshot_seq(self._room))  # fmt: skip
        return self._log.first_seq(room)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def test_a_fold_landing_during_a_read_of_the_past_is_history_folded(log: LogStore) -> None:
    for update in typing_updates("abcdefgh"):
        _docs(log).append("doc", update)
    racing = DocStore(_TrimsMidRead(log, "doc", 6), rebuild=rebuild)
    with pytest.raises(HistoryFolded) as folded:
        racing.state_at("doc", 3)
    assert (folded.value.room, folded.value.seq, folded.value.oldest) == ("doc", 3, 6)


def test_damaged_records_are_described_by_room_and_seq(log: LogStore) -> None:
    docs = _docs(log)
    for update in typing_updates("abc"):
        docs.append("doc", update)
    assert docs.compact("doc", force=True) is not None
    assert docs.check_records("doc") == []  # a sound room reads whole
    log.append([("doc", b"not a record")], 5.0)
    (problem,) = docs.check_records("doc")
    assert "'doc'" in problem and "seq 4" in problem
    for read in (docs.history, docs.entries):
        with pytest.raises(CorruptRecord) as corrupt:
            read("doc")
        assert (corrupt.value.room, corrupt.value.seq) == ("doc", 4)
        assert "room 'doc': corrupt log record at seq 4: " in str(corrupt.value)


def test_a_missing_entry_is_named_and_never_skipped(log: LogStore) -> None:
    updates = typing_updates("abcdef")
    log.put_room(RoomDump("gap", 1.0, 6, 0, [(seq, _packed(u, seq)) for seq, u in
                                               enumerate(updates, 1) if seq != 4]))  # fmt: skip
    docs = _docs(log)
    missing = "room 'gap': corrupt log at seq 4: entry is missing (trimmed or lost)"
    for read in (lambda: docs.load("gap"), lambda: docs.records("gap", 2, 5)):
        with pytest.raises(CorruptRecord, match=re.escape(missing)) as corrupt:
            read()
        assert (corrupt.value.room, corrupt.value.seq) == ("gap", 4)
    with pytest.raises(CorruptRecord, match="room 'gap': corrupt log at seq 7: entry is missing"):
        docs.records("gap", 4, 7)  # the log ends before `upto`
    assert [r.seq for r in docs.records("gap", 4, 6)] == [5, 6]
    assert [r.seq for r in docs.records("gap", upto=3)] == [1, 2, 3]


def _packed(update: bytes, seq: int) -> bytes:
    return pack_updates(float(seq), [(None, (), update, None)])[0]


def test_a_room_without_snapshot_loads_from_its_first_entry(log: LogStore) -> None:
    docs = _docs(log)
    assert docs.load("nowhere") == LoadedRoom("nowhere", [], 0, 0)
    updates = typing_updates("abc")
    for update in updates:
        docs.append("doc", update)
    assert docs.load("doc") == LoadedRoom("doc", updates, 3, 0)
    assert DocStore(log).state_at("doc", 1) == updates[0]  # one update needs no rebuild
    _fill(docs, "long", [1] * 120)
    assert [entry.seq for entry in docs.history("long")] == list(range(1, 101))


class _TrimsOnEveryRead:
    """A LogStore (a real one underneath) whose log is trimmed by a new snapshot each
    time it is read, as under a compactor that never stops."""

    def __init__(self, log: LogStore, room: str) -> None:
        self._log, self._room, self.reads = log, room, 0

    def read(self, room: str, *args: Any, **kwargs: Any) -> list[tuple[int, bytes]]:
        self.reads += 1
        seq = self._log.newest_snapshot_seq(self._room) + 1
        self._log.put_snapshot(self._room, seq, b"s%d" % seq, keep=0, trim_log=True,
                               expect=seq - 1)  # fmt: skip
        return self._log.read(room, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def test_a_read_that_keeps_losing_to_trims_gives_up_after_its_retries(log: LogStore) -> None:
    for _ in range(20):  # one append each: a trim takes them one by one
        _fill(_docs(log), "doc", [5])
    racing = _TrimsOnEveryRead(log, "doc")
    with pytest.raises(CorruptRecord):
        DocStore(racing).load("doc")
    assert racing.reads == READ_RETRIES


def test_a_torn_snapshot_falls_back_to_an_older_one_before_the_seq(log: LogStore) -> None:
    docs = _docs(log, retention=Retention(keep_snapshots=0))
    text = "abcdefghijklmnopqrst"
    for n, update in enumerate(typing_updates(text), 1):
        docs.append("doc", update)
        if n % 5 == 0:
            assert docs.compact("doc", force=True) is not None
    tear_snapshot(log, "doc", 10)
    assert content([docs.state_at("doc", 12)])["t"] == text[:12]


def test_the_pieces_of_a_past_state_and_rebuilding_them(log: LogStore) -> None:
    docs = _docs(log)
    for update in typing_updates("abcdef"):
        docs.append("doc", update)
    assert docs.compact("doc", force=True) is not None
    docs.append_many([Append("doc", update) for update in typing_updates("abcdefgh")[6:]])
    snapshot, tail = docs.pieces_at("doc", 7)  # not the last: 8 is
    assert snapshot is not None and snapshot.seq == 6 and [r.seq for r in tail] == [7]
    merged = docs.rebuild_updates([snapshot.update] + [r.update for r in tail])
    assert content([merged])["t"] == "abcdefg"
    with pytest.raises(StorageError):
        DocStore(log).rebuild_updates([snapshot.update])
