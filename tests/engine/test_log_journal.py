"""The KV log store's journal: recent appends kept whole at one end, folded in batches.

Whatever is in the journal must read, count and survive a crash exactly as if it were in
the per-room log; a read that races a fold must see every entry once.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.errors import StorageError
from engine.storage import KVLogStore, LmdbKV, MemoryKV
from engine.storage.records import UpdateRecord, pack


def _record(seq: int) -> bytes:
    return pack(UpdateRecord(0, 1.0, f"user{seq}", (seq,), b"u%d" % seq).to_map())


def _fill(log: KVLogStore, appends: int) -> dict[str, list[tuple[int, bytes]]]:
    """Appends of one to three rooms each; returns what each room must read back."""
    expected: dict[str, list[tuple[int, bytes]]] = {}
    for n in range(appends):
        rooms = [f"room{(n + k) % 5}" for k in range(1 + n % 3)]
        batch = []
        for room in rooms:
            seq = len(expected.setdefault(room, [])) + 1
            record = _record(seq)
            expected[room].append((seq, record))
            batch.append((room, record))
        log.append(batch, 1.0)
    return expected


def _journal_keys(kv: LmdbKV | MemoryKV) -> int:
    return len(kv.scan("journal", b""))


def test_appends_of_several_rooms_stay_in_the_journal_until_the_line_then_fold_whole() -> None:
    kv = MemoryKV()
    log = KVLogStore(kv, journal_entries=10)
    for n in range(9):
        log.append([("a", _record(n)), ("b", _record(n))], 1.0)
    assert _journal_keys(kv) == 9 and kv.scan("log", b"") == []
    log.append([("a", _record(9)), ("c", _record(0))], 1.0)  # the tenth folds all
    assert _journal_keys(kv) == 0
    assert len(kv.scan("log", b"")) == 9 * 2 + 2


def test_an_append_of_one_room_goes_to_the_journal_only_behind_its_own_entries() -> None:
    kv = MemoryKV()
    log = KVLogStore(kv, journal_entries=1000)
    log.append([("a", _record(1)), ("b", _record(1))], 1.0)
    log.append([("c", _record(1))], 1.0)  # nothing of c journaled: straight to its log
    assert _journal_keys(kv) == 1 and len(kv.scan("log", b"")) == 1
    log.append([("a", _record(2))], 1.0)  # a has journaled entries: it must follow them
    assert _journal_keys(kv) == 2
    assert [seq for seq, _ in log.read("a")] == [1, 2]
    assert [seq for seq, _ in log.read("c")] == [1]
    info = KVLogStore(kv).info("c")  # reopened: the counters of c were written with it
    assert info is not None and info.last_seq == 1


def test_the_byte_line_folds_too() -> None:
    kv = MemoryKV()
    log = KVLogStore(kv, journal_entries=1000, journal_bytes=2000)
    seen = []
    for _ in range(40):
        log.append([("doc", b"x" * 100), ("other", b"y")], 1.0)
        seen.append(_journal_keys(kv))
    assert max(seen) * 100 < 2000 and max(seen) > 5 and 0 in seen
    assert [seq for seq, _ in log.read("doc")] == list(range(1, 41))


def test_a_big_append_goes_to_the_log_with_the_journal() -> None:
    kv = MemoryKV()
    log = KVLogStore(kv, journal_entries=1000)
    _fill(log, 5)
    assert _journal_keys(kv) > 0
    log.append([("room1", b"x" * 70_000), ("big", b"y")], 1.0)
    assert _journal_keys(kv) == 0
    assert log.read("room1")[-1][1] == b"x" * 70_000


def test_reads_and_counters_are_the_same_wherever_the_entries_sit() -> None:
    log = KVLogStore(MemoryKV(), journal_entries=1000)
    expected = _fill(log, 30)
    for room, entries in expected.items():
        assert log.read(room) == entries
        assert log.read(room, 2, 5, 2) == [e for e in entries if 2 < e[0] <= 5][:2]
        assert log.first_seq(room) == 1
        info = log.info(room)
        assert info is not None and info.last_seq == len(entries)
        assert info.log_bytes == sum(len(record) for _, record in entries)
    log.fold()
    for room, entries in expected.items():
        assert log.read(room) == entries


def test_a_read_racing_a_fold_sees_every_entry_once() -> None:
    log = KVLogStore(MemoryKV(), journal_entries=1000)
    expected = _fill(log, 20)
    view = log._journal  # what a reader took just before the fold
    log.fold()
    log._journal = view  # ... and the log it then scans is the folded one
    for room, entries in expected.items():
        assert log.read(room) == entries
        assert log.read(room, 1, limit=3) == entries[1:4]


def test_a_store_opened_later_replays_the_journal() -> None:
    kv = MemoryKV()
    first = KVLogStore(kv, journal_entries=1000)
    expected = _fill(first, 25)
    # Not closed: as after a crash, the journal is not folded.
    again = KVLogStore(kv, journal_entries=1000)
    for room, entries in expected.items():
        assert again.read(room) == entries
        info = again.info(room)
        assert info is not None and info.last_seq == len(entries)
    assert again.append([("room0", _record(99))], 1.0) == [len(expected["room0"]) + 1]


def test_a_journal_survives_a_killed_process_on_lmdb(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os
        from engine.storage import KVLogStore, LmdbKV
        log = KVLogStore(LmdbKV({str(tmp_path)!r}), journal_entries=1000)
        for n in range(50):
            log.append([("doc", b"r%d" % n), ("other", b"o%d" % n)], 1.0)
        os._exit(0)  # no close, no fold
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    kv = LmdbKV(tmp_path)
    assert _journal_keys(kv) == 50
    log = KVLogStore(kv)
    assert log.read("doc") == [(n + 1, b"r%d" % n) for n in range(50)]
    info = log.info("other")
    assert info is not None and info.last_seq == 50
    log.append([("doc", b"r50")], 1.0)
    log.close()  # a store that appended folds on close
    kv = LmdbKV(tmp_path)
    assert _journal_keys(kv) == 0 and len(kv.scan("log", b"")) == 101
    kv.close()


def test_trimming_and_deleting_see_journaled_entries() -> None:
    log = KVLogStore(MemoryKV(), journal_entries=1000)
    _fill(log, 30)
    assert log.put_snapshot("room0", 5, b"snap", expect=0, keep=2, trim_log=True)
    assert log.first_seq("room0") == 6
    assert log.delete_room("room1")
    assert log.read("room1") == [] and log.info("room1") is None
    assert [seq for seq, _ in log.read("room0")][:1] == [6]


def test_a_damaged_journal_entry_is_an_error_at_open() -> None:
    kv = MemoryKV()
    log = KVLogStore(kv, journal_entries=1000)
    _fill(log, 3)
    ((key, value), *_) = kv.scan("journal", b"")
    kv.write([("journal", key, value[:-2] + b"\x00\x00")])
    with pytest.raises(StorageError, match="journal entry 1"):
        KVLogStore(kv)


def test_a_replayed_journal_gives_back_each_rooms_exact_counters() -> None:
    kv = MemoryKV()
    first = KVLogStore(kv, journal_entries=1000)
    first.append([("doc", b"aa"), ("other", b"b")], 10.0)
    first.append([("doc", b"ccc"), ("other", b"d")], 20.0)
    before = {room: first.info(room) for room in ("doc", "other")}
    again = KVLogStore(kv, journal_entries=1000)  # not closed: replayed from the journal
    assert {room: again.info(room) for room in ("doc", "other")} == before
    doc = before["doc"]
    assert doc is not None and (doc.name, doc.created, doc.log_bytes) == ("doc", 10.0, 5)


def test_appends_after_a_replay_never_overwrite_a_journal_entry() -> None:
    kv = MemoryKV()
    expected = _fill(KVLogStore(kv, journal_entries=1000), 12)
    again = KVLogStore(kv, journal_entries=1000)
    again.append([("room0", b"late"), ("room1", b"late")], 2.0)
    expected["room0"].append((len(expected["room0"]) + 1, b"late"))
    expected["room1"].append((len(expected["room1"]) + 1, b"late"))
    third = KVLogStore(kv, journal_entries=1000)  # crashed again: only the journal holds them
    for room, entries in expected.items():
        assert third.read(room) == entries


def test_the_first_seq_of_a_room_held_only_by_the_journal() -> None:
    log = KVLogStore(MemoryKV(), journal_entries=1000)
    log.append([("doc", b"1"), ("doc", b"2"), ("other", b"x")], 1.0)
    log.append([("doc", b"3"), ("other", b"y")], 1.0)
    assert log.first_seq("doc") == 1
    assert log.first_seq("nowhere") is None


def test_the_journal_never_holds_more_than_its_byte_line() -> None:
    kv = MemoryKV()
    log = KVLogStore(kv, journal_entries=1000, journal_bytes=2000)
    for _ in range(60):
        log.append([("doc", b"x" * 100), ("other", b"y")], 1.0)
        assert sum(len(value) for _, value in kv.scan("journal", b"")) < 2000


def test_a_store_that_only_read_closes_without_writing() -> None:
    kv = MemoryKV()
    _fill(KVLogStore(kv, journal_entries=1000), 10)
    stored = {db: kv.scan(db, b"") for db in ("journal", "log", "meta")}
    reader = KVLogStore(kv, journal_entries=1000)
    reader.read("room1")
    reader.close()  # a check or a backup opened it: the journal stays as it found it
    assert {db: kv.scan(db, b"") for db in ("journal", "log", "meta")} == stored
