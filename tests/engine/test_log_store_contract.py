"""The LogStore contract below the DocStore, on memory, LMDB and a real redis-server.

The DocStore tests reach most of it; these pin what they leave loose: a room's counters
as first written, snapshots kept and dropped by seq, metadata set, replaced and refused,
a room deleted by a store that never read it, and a room moved whole between stores
(backups, recovery, imports) with its seqs, trimmed start, snapshots and metadata.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.errors import StorageError
from engine.storage import KVLogStore, LmdbKV, MemoryKV
from engine.storage.kv_log import RUN_RECORDS
from engine.storage.log_values import key_seq, value_entries
from engine.storage.redis_log import RedisLogStore
from engine.storage.room_dump import RoomDump

Store = KVLogStore | RedisLogStore  # both also dump and put whole rooms
Opener = Callable[[], Store]


@pytest.fixture(params=["memory", "lmdb", "redis"])
def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a fresh store object on the same data each call (a reopened process);
    each one opened before is closed first, as LMDB allows one environment per path."""
    memory = MemoryKV()
    url = request.getfixturevalue("redis_server").url if request.param == "redis" else None
    opened: list[Store] = []

    def open_one() -> Store:
        for earlier in opened:
            earlier.close()
        opened.clear()
        log: Store
        if request.param == "memory":
            log = KVLogStore(memory)
        elif request.param == "lmdb":
            log = KVLogStore(LmdbKV(tmp_path / "kv"))
        else:
            assert url is not None
            log = RedisLogStore(url)
        opened.append(log)
        return log

    yield open_one
    for last in opened:
        last.close()


def test_a_rooms_counters_keep_its_name_and_creation_time(open_log: Opener) -> None:
    log = open_log()
    log.append([("doc", b"one"), ("other", b"x")], 100.0)
    log.append([("doc", b"three")], 200.0)
    _has_the_counters_of_its_first_append(log)
    _has_the_counters_of_its_first_append(open_log())


def _has_the_counters_of_its_first_append(store: Store) -> None:
    info = store.info("doc")
    assert info is not None
    assert (info.name, info.created, info.last_seq, info.log_bytes) == ("doc", 100.0, 2, 8)
    assert store.info("nowhere") is None
    assert store.rooms() == ["doc", "other"]


def test_snapshots_keep_the_newest_by_seq_and_drop_before_a_seq(open_log: Opener) -> None:
    log = open_log()
    log.append([("doc", b"r%d" % n) for n in range(1, 10)], 1.0)
    assert log.newest_snapshot_seq("doc") == 0 and log.newest_snapshot_seq("nowhere") == 0
    for seq in range(1, 6):  # one snapshot a seq, two kept: each put drops the third
        assert log.put_snapshot("doc", seq, b"s%d" % seq, expect=seq - 1, keep=2, trim_log=False)
    assert log.snapshots("doc") == [(5, b"s5"), (4, b"s4")]
    assert not log.put_snapshot("doc", 6, b"late", expect=4, keep=2, trim_log=False)
    assert log.newest_snapshot_seq("doc") == 5
    for seq in (6, 8, 9):  # keep=0 keeps every one
        assert log.put_snapshot("doc", seq, b"s%d" % seq, expect=log.newest_snapshot_seq("doc"),
                                keep=0, trim_log=False)  # fmt: skip
    assert [seq for seq, _ in log.snapshots("doc", upto=8)] == [8, 6, 5, 4]
    assert log.drop_snapshots_before("doc", 6) == 2
    assert [seq for seq, _ in log.snapshots("doc")] == [9, 8, 6]
    assert log.drop_snapshots_before("doc", 6) == 0
    assert log.drop_snapshots_before("doc", 1) == 0
    log.append([("early", b"r1"), ("early", b"r2"), ("early", b"r3")], 1.0)
    for seq in (1, 3):
        assert log.put_snapshot("early", seq, b"e%d" % seq, expect=seq // 3, keep=0, trim_log=False)
    assert log.drop_snapshots_before("early", 2) == 1  # the one at seq 1 goes
    assert log.snapshots("early") == [(3, b"e3")]
    assert log.drop_snapshots_before("nowhere", 5) == 0
    assert [seq for seq, _ in open_log().snapshots("doc")] == [9, 8, 6]


def test_metadata_is_replaced_kept_only_new_deleted_and_counted(open_log: Opener) -> None:
    log = open_log()
    log.append([("doc", b"r")], 1.0)
    assert log.set_meta("doc", "label:a", b"1")
    assert log.set_meta("doc", "label:a", b"2")  # replaced: only_new is off by default
    assert not log.set_meta("doc", "label:a", b"3", only_new=True)
    assert log.set_meta("doc", "label:b", b"b", only_new=True)
    assert log.set_meta("doc", "cursor", b"c")
    assert log.get_meta("doc", "label:a") == b"2"
    assert log.scan_meta("doc", "label:") == [("label:a", b"2"), ("label:b", b"b")]
    assert log.set_meta("doc", "label:b", None)
    assert log.get_meta("doc", "label:b") is None
    assert log.add_to_meta("doc", "hits", 3) == 3 and log.add_to_meta("doc", "hits", 4) == 7
    assert log.get_meta("nowhere", "cursor") is None and log.scan_meta("nowhere", "") == []
    with pytest.raises(StorageError):
        log.set_meta("nowhere", "cursor", b"c")
    again = open_log()
    assert again.scan_meta("doc", "") == [("cursor", b"c"), ("hits", b"7"), ("label:a", b"2")]


def test_a_store_that_never_read_a_room_deletes_it_whole(open_log: Opener) -> None:
    log = open_log()
    log.append([("doc", b"a"), ("keep", b"k")], 1.0)
    log.append([("doc", b"b")], 1.0)
    assert log.put_snapshot("doc", 1, b"s", expect=0, keep=0, trim_log=False)
    log.set_meta("doc", "label", b"v")
    fresh = open_log()  # nothing of doc cached in this one
    assert fresh.delete_room("doc")
    assert not fresh.delete_room("doc")
    assert fresh.info("doc") is None and fresh.read("doc") == [] and fresh.snapshots("doc") == []
    assert fresh.rooms() == ["keep"]
    assert fresh.append([("doc", b"new")], 2.0) == [1]  # a new room under the old name
    again = open_log()
    assert again.read("doc") == [(1, b"new")] and again.get_meta("doc", "label") is None
    assert again.read("keep") == [(1, b"k")]


def _dump() -> RoomDump:
    """A room as a store held it: log trimmed below seq 4, one seq missing at 300, more
    entries than one run holds, two snapshots and metadata."""
    log = [(seq, b"r%d" % seq) for seq in range(4, 2 * RUN_RECORDS + 100) if seq != 300]
    return RoomDump(
        name="moved",
        created=123.5,
        last_seq=log[-1][0],
        log_bytes=9999,
        log=log,
        snapshots=[(3, b"snap3"), (200, b"snap200")],
        meta={"label:v1": b"200", "cursor": b"7"},
    )


def test_a_room_moves_whole_between_stores(open_log: Opener) -> None:
    dump = _dump()
    log = open_log()
    log.append([("here", b"h")], 1.0)
    log.put_room(dump)
    with pytest.raises(StorageError):
        log.put_room(dataclasses.replace(dump, log=[]))
    _holds_the_moved_room(log, dump)
    _holds_the_moved_room(open_log(), dump)
    moved = open_log()
    copy = moved.dump_room("moved")
    assert copy is not None and moved.dump_room("nowhere") is None
    assert dataclasses.replace(copy, snapshots=sorted(copy.snapshots)) == dump
    assert moved.append([("moved", b"next"), ("here", b"h2")], 2.0) == [dump.last_seq + 1, 2]
    assert moved.append([("newer", b"n")], 3.0) == [1]  # a room made after the move
    assert moved.read("newer") == [(1, b"n")] and moved.read("moved")[-1] == (612, b"next")


def _holds_the_moved_room(store: Store, dump: RoomDump) -> None:
    assert store.read("moved") == dump.log
    assert store.read("moved", after=298, upto=301) == [(299, b"r299"), (301, b"r301")]
    assert store.first_seq("moved") == 4
    info = store.info("moved")
    assert info is not None
    assert (info.name, info.created, info.last_seq, info.log_bytes) == (
        "moved",
        123.5,
        dump.last_seq,
        9999,
    )
    assert store.snapshots("moved") == [(200, b"snap200"), (3, b"snap3")]
    assert store.newest_snapshot_seq("moved") == 200
    assert store.scan_meta("moved", "") == sorted(dump.meta.items())
    assert store.read("here") == [(1, b"h")]  # the room beside it is untouched


def test_a_moved_rooms_log_is_stored_in_runs_of_consecutive_seqs() -> None:
    """put_room writes consecutive records as runs of at most RUN_RECORDS, each keyed by
    its last seq, so a big room is a few values; a missing seq starts a new run."""
    kv = MemoryKV()
    log = KVLogStore(kv)
    log.append([("before", b"x")], 1.0)
    log.put_room(_dump())
    values = [value_entries(key_seq(key), value) for key, value in kv.scan("log", b"")]
    runs = [[seq for seq, _ in value] for value in values if value[0][1].startswith(b"r")]
    assert [(run[0], run[-1]) for run in runs] == [(4, 259), (260, 299), (301, 556), (557, 611)]
    assert all(run == list(range(run[0], run[-1] + 1)) for run in runs)
